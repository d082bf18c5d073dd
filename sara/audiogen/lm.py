"""AudioGen's multi-stream token language model (audiocraft ``LMModel``, as ``lm_model: transformer_lm`` builds it
for AudioGen), with audiocraft's state-dict key names so ``state_dict.bin`` loads strictly:

* ``condition_provider.conditioners.description.output_proj.{weight,bias}``: text width -> model width;
* ``emb.{k}.weight [card + 1, D]``: one table per codebook, the last row is the special token; summed;
* ``transformer.layers.{i}.*`` (see :mod:`sara.audiogen.transformer`), ``out_norm.*``;
* ``linears.{k}.weight [card, D]``: one head per codebook.

The text encoder (T5) is not part of the state (audiocraft keeps it out of the checkpoint); the condition is
``output_proj(states) * mask`` (``T5Conditioner.forward``), and null (dropped) descriptions are zero rows.

Shapes: ``B`` batch, ``K`` codebooks, ``T`` frames, ``S`` steps, ``L`` text tokens, ``V = card``.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import Tensor, nn

from sara.audiogen.config import LMConfig
from sara.audiogen.patterns import build_delay_sequence, revert_delay_logits
from sara.audiogen.transformer import KVCache, Transformer
from sara.serialization import PretrainedMixin

__all__ = ["TextProjection", "TokenLM"]


class TextProjection(nn.Module):
    """``output_proj`` of audiocraft's T5 conditioner: ``Linear(text_dim, dim)`` (with bias), masked."""

    def __init__(self, text_dim: int, dim: int) -> None:
        super().__init__()
        self.output_proj = nn.Linear(text_dim, dim)

    def forward(self, states: Tensor, mask: Tensor) -> Tensor:
        """``states [B, L, text_dim]``, ``mask [B, L]`` -> ``output_proj(states) * mask`` ``[B, L, dim]``."""
        return self.output_proj(states.to(self.output_proj.weight.dtype)) * mask[..., None].to(states.dtype)


class _ConditionProvider(nn.Module):
    """Holds the conditioners under audiocraft's names (``conditioners.description``)."""

    def __init__(self, text_dim: int, dim: int) -> None:
        super().__init__()
        self.conditioners = nn.ModuleDict({"description": TextProjection(text_dim, dim)})


class TokenLM(nn.Module, PretrainedMixin):
    """Embeddings -> causal transformer with cross-attention to the text -> ``out_norm`` -> K heads.

    Args:
        config: the LM hyper-parameters.
    """

    config_class = LMConfig

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.condition_provider = _ConditionProvider(c.text_dim, c.dim)
        self.emb = nn.ModuleList(nn.Embedding(c.card + 1, c.dim) for _ in range(c.n_q))
        self.transformer = Transformer(c.dim, c.num_heads, c.num_layers, c.ffn_dim, c.max_period,
                                       c.positional_scale, c.bias_attn, c.bias_ff)
        self.out_norm = nn.LayerNorm(c.dim, eps=1e-5)
        self.linears = nn.ModuleList(nn.Linear(c.dim, c.card, bias=c.bias_proj) for _ in range(c.n_q))
        self._init_weights()

    @property
    def special_token(self) -> int:
        """Id of the special (no code) token: ``card``."""
        return self.config.card

    def _init_weights(self) -> None:
        """audiocraft's ``weight_init: gaussian``, ``depthwise_init: current``, ``zero_bias_init: true``: truncated
        normal (+-3 std) with std ``1/sqrt(fan_in)``, divided by ``sqrt(2 * (layer + 1))`` inside layer ``i``."""
        for emb in self.emb:
            _trunc_normal(emb.weight, 1 / math.sqrt(self.config.dim))
        for depth, layer in enumerate(self.transformer.layers, start=1):
            layer.apply(partial(_init_linear, depth=depth))
        for head in self.linears:
            _init_linear(head, depth=None)

    def condition(self, states: Tensor, mask: Tensor) -> Tensor:
        """Project text states: ``[B, L, text_dim]``, ``mask [B, L]`` -> cross-attention memory ``[B, L, D]``."""
        return self.condition_provider.conditioners["description"](states, mask)

    def embed(self, sequence: Tensor) -> Tensor:
        """Sum of the K codebook embeddings: ``[B, K, S] -> [B, S, D]``."""
        return sum(self.emb[k](sequence[:, k]) for k in range(self.config.n_q))  # type: ignore[return-value]

    def step(self, sequence: Tensor, memory_kv: list[tuple[Tensor, Tensor]], cache: KVCache | None = None) -> Tensor:
        """Logits for pattern steps given precomputed cross-attention keys/values.

        Args:
            sequence: ``[B, K, S]`` token ids in ``[0, card]`` (steps ``P .. P+S-1`` when a cache holds ``P``).
            memory_kv: :meth:`Transformer.memory_kv` of the condition.
            cache: self-attention cache, advanced by ``S`` steps.

        Returns:
            ``[B, K, S, V]`` logits; output at step ``s`` predicts step ``s + 1``.
        """
        out = self.out_norm(self.transformer(self.embed(sequence), memory_kv, cache))
        return torch.stack([head(out) for head in self.linears], dim=1)

    def forward(self, sequence: Tensor, states: Tensor, mask: Tensor) -> Tensor:
        """Teacher-forced logits on a pattern sequence (no cache).

        Args:
            sequence: ``[B, K, S]`` pattern tokens.
            states: ``[B, L, text_dim]`` text-encoder states (zeros for null rows).
            mask: ``[B, L]`` text mask (0 on padding and null rows).

        Returns:
            ``[B, K, S, V]`` logits.
        """
        return self.step(sequence, self.transformer.memory_kv(self.condition(states, mask)))

    def compute_predictions(self, codes: Tensor, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """audiocraft's ``compute_predictions``: logits aligned with ``codes [B, K, T]``.

        Returns:
            ``(logits [B, K, T, V], valid [B, K, T] bool)``; invalid logits (the last ``delay_k`` frames of
            codebook k) are NaN.
        """
        sequence, _ = build_delay_sequence(codes, self.config.delays, self.special_token, codes.shape[-1] + 1)
        logits, valid = revert_delay_logits(self(sequence, states, mask), self.config.delays)
        return logits, valid[None].expand(codes.shape[0], -1, -1)


def _trunc_normal(weight: Tensor, std: float) -> None:
    """audiocraft's ``gaussian`` init: normal(0, std) truncated at +-3 std."""
    nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-3 * std, b=3 * std)


def _init_linear(module: nn.Module, depth: int | None) -> None:
    """Gaussian init of an ``nn.Linear`` (std ``1/sqrt(fan_in) / sqrt(2 depth)``, zero bias).

    The packed ``in_proj_weight`` is not an ``nn.Linear`` submodule in audiocraft either (it keeps only the
    weight of a local Linear), so ``apply`` leaves it at PyTorch's default Linear init, as there.
    """
    if not isinstance(module, nn.Linear):
        return
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    std = 1 / math.sqrt(module.weight.shape[1]) / (math.sqrt(2 * depth) if depth is not None else 1.0)
    _trunc_normal(module.weight, std)
