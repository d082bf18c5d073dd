"""The "delay" codebook interleaving pattern of AudioGen / MusicGen, as index arithmetic.

audiocraft's ``DelayedPatternProvider`` (``audiocraft/modules/codebooks_patterns.py``; flatten_first 0,
empty_initial 0) lays ``K`` codebooks of ``T`` frames out as a sequence of steps: step 0 holds only special tokens
and step ``s`` holds code ``t = s - 1 - delays[k]`` of codebook ``k`` (the special token where ``t`` is out of
``[0, T)``).  The full pattern has ``T + max_delay + 1`` steps (generation); teacher forcing keeps the first
``T + 1`` ("valid") steps, and the model output at step ``t + delays[k]`` is the logit of code ``(k, t)``, defined
for ``t < T - delays[k]``.

Example, delays [0, 1, 2], T = 4, ``S`` = special::

    codes  [[1, 2, 3, 4],        sequence  [[S, 1, 2, 3, 4, S, S],
            [1, 2, 3, 4],   ->              [S, S, 1, 2, 3, 4, S],
            [1, 2, 3, 4]]                   [S, S, S, 1, 2, 3, 4]]

Shapes: ``B`` batch, ``K`` codebooks, ``T`` frames, ``S`` sequence steps, ``V`` codebook size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "build_delay_sequence",
    "delay_step_frames",
    "first_step_with_frame",
    "revert_delay_logits",
    "revert_delay_sequence",
]


def delay_step_frames(delays: Sequence[int], num_frames: int, num_steps: int,
                      device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Which frame each (codebook, step) of the pattern holds.

    Args:
        delays: ``K`` per-codebook delays.
        num_frames: frames ``T`` of the code tensor.
        num_steps: sequence steps ``S`` to describe.

    Returns:
        ``(frame [K, S] long, valid [K, S] bool)``: ``frame = s - 1 - delay_k``; ``valid`` where
        ``0 <= frame < T``.
    """
    steps = torch.arange(num_steps, device=device)[None, :]
    frame = steps - 1 - torch.as_tensor(list(delays), device=device)[:, None]
    return frame, (frame >= 0) & (frame < num_frames)


def build_delay_sequence(codes: Tensor, delays: Sequence[int], special: int,
                         num_steps: int | None = None) -> tuple[Tensor, Tensor]:
    """Interleave ``codes [B, K, T]`` into the delay-pattern sequence.

    Args:
        codes: integer codes.
        delays: ``K`` delays.
        special: the token put where the pattern holds no code (``card``).
        num_steps: ``S``; default the full pattern ``T + max(delays) + 1`` (teacher forcing uses ``T + 1``).

    Returns:
        ``(sequence [B, K, S], valid [K, S] bool)``.
    """
    _, k, t = codes.shape
    steps = t + max(delays) + 1 if num_steps is None else num_steps
    frame, valid = delay_step_frames(delays, t, steps, codes.device)
    index = frame.clamp(0, max(t - 1, 0))[None].expand(codes.shape[0], k, steps)
    gathered = codes.gather(2, index) if t > 0 else codes.new_zeros(index.shape)
    return torch.where(valid[None], gathered, torch.full_like(gathered, special)), valid


def revert_delay_sequence(sequence: Tensor, delays: Sequence[int], num_frames: int) -> Tensor:
    """Undo :func:`build_delay_sequence`: ``[B, K, S] -> codes [B, K, T]`` (code ``(k, t)`` from step
    ``t + delay_k + 1``; requires ``S >= T + max(delays) + 1``)."""
    b, k, s = sequence.shape
    if s < num_frames + max(delays) + 1:
        raise ValueError(f"a {s}-step sequence holds fewer than {num_frames} frames of every codebook")
    index = torch.arange(num_frames, device=sequence.device)[None, :] + 1
    index = index + torch.as_tensor(list(delays), device=sequence.device)[:, None]
    return sequence.gather(2, index[None].expand(b, k, num_frames))


def revert_delay_logits(logits: Tensor, delays: Sequence[int], fill: float = float("nan")) -> tuple[Tensor, Tensor]:
    """Re-align teacher-forced outputs on the frames they predict (audiocraft's ``revert_pattern_logits``).

    Args:
        logits: ``[B, K, S, V]`` outputs on an ``S = T + 1`` step sequence.
        delays: ``K`` delays.
        fill: value of the logits that have no prediction (audiocraft uses NaN).

    Returns:
        ``(logits [B, K, T, V], valid [K, T] bool)``: the logit of code ``(k, t)`` is the output at step
        ``t + delay_k``, valid for ``t + delay_k < T``.
    """
    b, k, s, v = logits.shape
    t = s - 1
    step = torch.arange(t, device=logits.device)[None, :] + torch.as_tensor(list(delays), device=logits.device)[:, None]
    valid = step < t
    index = step.clamp(max=max(s - 1, 0))[None, :, :, None].expand(b, k, t, v)
    out = logits.gather(2, index)
    return out.masked_fill(~valid[None, :, :, None], fill), valid


def first_step_with_frame(delays: Sequence[int], frame: int) -> int:
    """The first sequence step that holds frame ``frame`` of some codebook (``frame + min(delays) + 1``)."""
    return frame + min(delays) + 1
