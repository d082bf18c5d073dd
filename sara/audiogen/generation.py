"""Autoregressive generation of codec tokens (audiocraft ``LMModel.generate`` semantics) with a key/value cache.

Procedure: the codes to produce (``frames`` frames, the first ``T0`` given by an optional prompt) are laid out in
the full delay pattern (``frames + max_delay + 1`` steps); starting at the first step that holds frame ``T0``, each
step feeds only the newest pattern step to the transformer (its self-attention keys/values of earlier steps
are cached; the cross-attention keys/values of the text are computed once), guides, samples one token per
codebook, writes it where the pattern has no code yet (prompt tokens are kept; positions outside the pattern
get the special token), and finally the delay is reverted.

Classifier-free guidance (``cfg_coef != 1``): the batch is doubled as ``[conditional rows; null rows]``, the
null condition being zeros of the same length (audiocraft's ``ClassifierFreeGuidanceDropout(p=1)`` + the
masked T5 conditioner), and ``logits = uncond + (cond - uncond) * cfg_coef``.  Sampling follows audiocraft's
``_sample_next_token``: softmax of ``logits / temperature``, then top-p if ``top_p > 0`` else top-k if
``top_k > 0`` else the full distribution; ``greedy`` (or temperature 0) takes the argmax.

Shapes: ``B`` batch, ``K`` codebooks, ``V`` card, ``L`` text tokens, ``D`` model width.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from sara.audiogen.lm import TokenLM
from sara.audiogen.patterns import build_delay_sequence, first_step_with_frame, revert_delay_sequence
from sara.progress import report

__all__ = ["SamplingConfig", "apply_cfg", "generate_codes", "generate_extended", "sample_next_token"]

_UNKNOWN = -1  # placeholder of codes not generated yet


@dataclass(frozen=True)
class SamplingConfig:
    """How each token is chosen (audiocraft's AudioGen defaults: top-k 250, CFG 3).

    Attributes:
        cfg_coef: classifier-free guidance coefficient (1 = conditional logits only, no null rows).
        top_k: keep the k most likely tokens (0 = all); ignored when ``top_p > 0``.
        top_p: nucleus sampling mass (0 = off).
        temperature: softmax temperature (0 = greedy).
        greedy: argmax instead of sampling.
    """

    cfg_coef: float = 3.0
    top_k: int = 250
    top_p: float = 0.0
    temperature: float = 1.0
    greedy: bool = False

    def __post_init__(self) -> None:
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 <= self.top_p <= 1.0:
            raise ValueError(f"top_p must be in [0, 1], got {self.top_p}")
        if not self.temperature >= 0.0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not math.isfinite(self.cfg_coef):
            raise ValueError(f"cfg_coef must be finite, got {self.cfg_coef}")


def apply_cfg(logits: Tensor, cfg_coef: float) -> Tensor:
    """``[2B, ...]`` logits of ``[cond; null]`` rows -> ``uncond + (cond - uncond) * cfg_coef`` ``[B, ...]``."""
    cond, uncond = logits.chunk(2, dim=0)
    return uncond + (cond - uncond) * cfg_coef


def sample_next_token(logits: Tensor, sampling: SamplingConfig, generator: torch.Generator | None = None) -> Tensor:
    """Choose one token per row: ``[B, K, V]`` logits -> ``[B, K]`` long."""
    if sampling.greedy or sampling.temperature == 0.0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / sampling.temperature, dim=-1).flatten(0, -2)
    if sampling.top_p > 0.0:
        tokens = _sample_top_p(probs, sampling.top_p, generator)
    elif sampling.top_k > 0:
        tokens = _sample_top_k(probs, sampling.top_k, generator)
    else:
        tokens = torch.multinomial(probs, 1, generator=generator)[:, 0]
    return tokens.view(logits.shape[:-1])


def _sample_top_k(probs: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """Sample among the ``k`` most likely tokens of each row of ``probs [N, V]`` (ties at the k-th kept)."""
    kth = probs.topk(min(k, probs.shape[-1]), dim=-1).values[:, -1:]
    kept = probs * (probs >= kth)
    return torch.multinomial(kept / kept.sum(-1, keepdim=True), 1, generator=generator)[:, 0]


def _sample_top_p(probs: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    """Nucleus sampling: the smallest most-likely set whose mass reaches ``p`` (the top token always kept)."""
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    outside = sorted_probs.cumsum(-1) - sorted_probs > p
    kept = sorted_probs.masked_fill(outside, 0.0)
    choice = torch.multinomial(kept / kept.sum(-1, keepdim=True), 1, generator=generator)
    return order.gather(-1, choice)[:, 0]


def _memory(lm: TokenLM, states: Tensor, mask: Tensor, cfg: bool) -> list[tuple[Tensor, Tensor]]:
    """Cross-attention keys/values of the projected text, with zero null rows appended for CFG."""
    memory = lm.condition(states, mask)
    if cfg:
        memory = torch.cat([memory, torch.zeros_like(memory)], dim=0)
    return lm.transformer.memory_kv(memory)


def _initial_sequence(lm: TokenLM, batch: int, frames: int, prompt: Tensor | None,
                      device: torch.device) -> tuple[Tensor, Tensor, int]:
    """Full-pattern sequence with the prompt codes in place: ``([B, K, S], valid [K, S], first step)``."""
    codes = torch.full((batch, lm.config.n_q, frames), _UNKNOWN, dtype=torch.long, device=device)
    start_frame = 0
    if prompt is not None:
        start_frame = prompt.shape[-1]
        codes[..., :start_frame] = prompt.to(device)
    sequence, valid = build_delay_sequence(codes, lm.config.delays, lm.special_token)
    return sequence, valid, first_step_with_frame(lm.config.delays, start_frame)


@torch.no_grad()
def generate_codes(lm: TokenLM, states: Tensor, mask: Tensor, frames: int, sampling: SamplingConfig = SamplingConfig(),
                   prompt: Tensor | None = None, generator: torch.Generator | None = None, use_cache: bool = True,
                   step_logits: Callable[[Tensor], None] | None = None) -> Tensor:
    """Generate ``frames`` frames of codes conditioned on text.

    Args:
        lm: the token LM (eval mode).
        states: ``[B, L, text_dim]`` text-encoder states of the prompts.
        mask: ``[B, L]`` text mask.
        frames: total frames to return (50 per second for the 16 kHz codec), prompt included.
        sampling: token choice and guidance.
        prompt: ``[B, K, T0]`` codes to continue (``T0 < frames``), or None.
        generator: random source for sampling (None: the global RNG).
        use_cache: incremental decoding with the key/value cache; False recomputes every prefix (reference).
        step_logits: called with each step's guided logits ``[B, K, V]`` (tests, inspection).
            Every step is also reported to :func:`sara.progress.report` (phase ``"tokens"``).

    Returns:
        ``[B, K, frames]`` codes in ``[0, card)``; the prompt's frames come first, unchanged.
    """
    batch, device = states.shape[0], states.device
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if prompt is not None and not 0 <= prompt.shape[-1] < frames:
        raise ValueError(f"the prompt has {prompt.shape[-1]} frames; generation needs frames > that ({frames})")
    cfg = sampling.cfg_coef != 1.0
    memory_kv = _memory(lm, states, mask, cfg)
    sequence, valid, start = _initial_sequence(lm, batch, frames, prompt, device)
    rows = 2 * batch if cfg else batch
    cache = lm.transformer.new_cache(rows, sequence.shape[-1], device, memory_kv[0][0].dtype) if use_cache else None
    previous = 0
    for offset in range(start, sequence.shape[-1]):
        inputs = sequence[..., previous:offset] if use_cache else sequence[..., :offset]
        logits = lm.step(inputs.repeat(2, 1, 1) if cfg else inputs, memory_kv, cache)[:, :, -1]
        logits = apply_cfg(logits, sampling.cfg_coef) if cfg else logits
        if step_logits is not None:
            step_logits(logits)
        tokens = sample_next_token(logits, sampling, generator)
        tokens = torch.where(valid[None, :, offset], tokens, lm.special_token)
        current = sequence[..., offset]
        sequence[..., offset] = torch.where(current == _UNKNOWN, tokens, current)
        previous = offset
        report("tokens", offset - start + 1, sequence.shape[-1] - start)
    return revert_delay_sequence(sequence, lm.config.delays, frames)


def generate_extended(lm: TokenLM, states: Tensor, mask: Tensor, frames: int, window: int, stride: int,
                      sampling: SamplingConfig = SamplingConfig(), prompt: Tensor | None = None,
                      generator: torch.Generator | None = None, use_cache: bool = True) -> Tensor:
    """Generate more frames than the model's window (audiocraft ``_generate_tokens`` with ``extend_stride``).

    Each window of at most ``window`` frames continues the last ``window - stride`` frames of the previous one, so
    the sequence advances by ``stride`` frames per window (audiocraft AudioGen: 10 s windows, 2 s stride) and the
    positions never exceed the training length.  ``frames <= window`` is one :func:`generate_codes` call.

    Returns:
        ``[B, K, frames]`` codes (the prompt's frames first).
    """
    if not 0 < stride < window:
        raise ValueError(f"need 0 < stride ({stride}) < window ({window})")
    if frames <= window:
        return generate_codes(lm, states, mask, frames, sampling, prompt, generator, use_cache)
    pieces = [] if prompt is None else [prompt]
    offset, context = 0, prompt
    while offset + (0 if context is None else context.shape[-1]) < frames:
        known = 0 if context is None else context.shape[-1]
        chunk = generate_codes(lm, states, mask, min(frames - offset, window), sampling, context, generator,
                               use_cache)
        pieces.append(chunk[..., known:])
        context, offset = chunk[..., stride:], offset + stride
    return torch.cat(pieces, dim=-1)[..., :frames]
