"""Pre-norm causal transformer with cross-attention and a key/value cache (audiocraft's ``StreamingTransformer``
as AudioGen configures it), with audiocraft's parameter names.

Per layer (``audiocraft/modules/transformer.py`` ``StreamingTransformerLayer``, ``norm_first=True``)::

    x = x + self_attn(norm1(x))                      causal
    x = x + cross_attention(norm_cross(x), memory)   no key padding mask: padded/null positions are zeros
    x = x + linear2(gelu(linear1(norm2(x))))         GELU (erf)

Attention projections are one packed ``in_proj_weight [3D, D]`` (q, k, v rows) and ``out_proj``, the
"custom" layout audiocraft uses with ``memory_efficient: true``.  Sinusoidal positions ``cat(cos, sin)`` of
``pos / max_period ** (i / (D/2 - 1))`` are added to the input (``create_sin_embedding``).

Shapes: ``B`` batch, ``T`` new steps, ``P`` cached steps, ``L`` memory length, ``D`` width, ``H`` heads,
``Dh = D / H``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["KVCache", "MultiheadAttention", "Transformer", "TransformerLayer", "sin_embedding"]


def sin_embedding(positions: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """audiocraft's ``create_sin_embedding``: ``[..., T] positions -> [..., T, dim]`` = ``cat(cos, sin)`` of
    ``pos / max_period ** (i / (dim/2 - 1))``, ``i = 0 .. dim/2 - 1``."""
    half = dim // 2
    scale = torch.arange(half, device=positions.device, dtype=torch.float32) / (half - 1)
    phase = positions.float()[..., None] / (max_period ** scale)
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)


@dataclass
class KVCache:
    """Self-attention keys/values of the steps seen so far, pre-allocated for ``capacity`` steps.

    Attributes:
        keys: per layer ``[B, H, capacity, Dh]``.
        values: per layer ``[B, H, capacity, Dh]``.
        length: steps stored (``P``); also the position offset of the next input.
    """

    keys: list[Tensor]
    values: list[Tensor]
    length: int = 0

    @classmethod
    def allocate(cls, num_layers: int, batch: int, num_heads: int, head_dim: int, capacity: int,
                 device: torch.device, dtype: torch.dtype) -> KVCache:
        """Empty cache for ``capacity`` steps."""
        shape = (batch, num_heads, capacity, head_dim)
        return cls([torch.empty(shape, device=device, dtype=dtype) for _ in range(num_layers)],
                   [torch.empty(shape, device=device, dtype=dtype) for _ in range(num_layers)])

    @property
    def capacity(self) -> int:
        """Steps the buffers can hold."""
        return self.keys[0].shape[2] if self.keys else 0


class MultiheadAttention(nn.Module):
    """Scaled dot-product attention with audiocraft's packed projection (``in_proj_weight``, ``out_proj``).

    Args:
        dim: width D.
        num_heads: heads H.
        bias: biases on the projections (``in_proj_bias``, ``out_proj.bias``).
    """

    def __init__(self, dim: int, num_heads: int, bias: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim)) if bias else None
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        nn.init.kaiming_uniform_(self.in_proj_weight, a=math.sqrt(5))

    def _project(self, x: Tensor, part: slice) -> Tensor:
        """Rows ``part`` of the packed projection: ``[B, T, D] -> [B, T, rows]``."""
        bias = None if self.in_proj_bias is None else self.in_proj_bias[part]
        return F.linear(x, self.in_proj_weight[part], bias)

    def _heads(self, y: Tensor) -> Tensor:
        """``[B, T, H * Dh] -> [B, H, T, Dh]``."""
        return y.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def _merge(self, y: Tensor) -> Tensor:
        """``[B, H, T, Dh] -> out_proj([B, T, D])``."""
        return self.out_proj(y.transpose(1, 2).flatten(2))

    def memory_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-attention keys and values of ``memory [B, L, D]`` (computed once per generation)."""
        d = self.in_proj_weight.shape[1]
        return self._heads(self._project(memory, slice(d, 2 * d))), self._heads(self._project(memory, slice(2 * d, 3 * d)))

    def cross(self, x: Tensor, kv: tuple[Tensor, Tensor]) -> Tensor:
        """Attend from ``x [B, T, D]`` to precomputed memory ``(k, v)``, every position included."""
        d = self.in_proj_weight.shape[1]
        q = self._heads(self._project(x, slice(0, d)))
        return self._merge(F.scaled_dot_product_attention(q, kv[0], kv[1]))

    def causal(self, x: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        """Causal self-attention over ``x [B, T, D]`` after the ``P = cache.length`` cached steps.

        With a cache the new keys/values are written at ``[P, P + T)`` of layer ``layer``'s buffers (the
        caller advances ``cache.length`` once all layers ran).
        """
        q, k, v = (self._heads(t) for t in self._project(x, slice(None)).chunk(3, dim=-1))  # q, k, v row blocks
        past = 0
        if cache is not None:
            past = cache.length
            cache.keys[layer][:, :, past:past + x.shape[1]] = k
            cache.values[layer][:, :, past:past + x.shape[1]] = v
            k, v = cache.keys[layer][:, :, :past + x.shape[1]], cache.values[layer][:, :, :past + x.shape[1]]
        return self._merge(_causal_attention(q, k, v, past))


def _causal_attention(q: Tensor, k: Tensor, v: Tensor, past: int) -> Tensor:
    """Query ``i`` (absolute position ``past + i``) sees keys ``0 .. past + i``."""
    steps = q.shape[2]
    if steps == 1:
        return F.scaled_dot_product_attention(q, k, v)
    if past == 0:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    mask = torch.ones(steps, past + steps, dtype=torch.bool, device=q.device).tril(diagonal=past)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class TransformerLayer(nn.Module):
    """One pre-norm layer: causal self-attention, cross-attention, GELU feed-forward (audiocraft key names)."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, bias_attn: bool = False,
                 bias_ff: bool = False) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(dim, num_heads, bias_attn)
        self.cross_attention = MultiheadAttention(dim, num_heads, bias_attn)
        self.linear1 = nn.Linear(dim, ffn_dim, bias=bias_ff)
        self.linear2 = nn.Linear(ffn_dim, dim, bias=bias_ff)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.norm_cross = nn.LayerNorm(dim, eps=1e-5)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: Tensor, memory_kv: tuple[Tensor, Tensor], cache: KVCache | None = None,
                layer: int = 0) -> Tensor:
        """``x [B, T, D]`` -> ``[B, T, D]`` given this layer's cross-attention ``(k, v)``."""
        x = x + self.self_attn.causal(self.norm1(x), cache, layer)
        x = x + self.cross_attention.cross(self.norm_cross(x), memory_kv)
        return x + self.linear2(F.gelu(self.linear1(self.norm2(x))))


class Transformer(nn.Module):
    """Stack of :class:`TransformerLayer` with sinusoidal input positions.

    Args:
        dim: width D.
        num_heads: heads H.
        num_layers: layers.
        ffn_dim: feed-forward width.
        max_period: sinusoid period scale.
        positional_scale: factor on the positions.
        bias_attn: attention projection biases.
        bias_ff: feed-forward biases.
    """

    def __init__(self, dim: int, num_heads: int, num_layers: int, ffn_dim: int, max_period: float = 10_000.0,
                 positional_scale: float = 1.0, bias_attn: bool = False, bias_ff: bool = False) -> None:
        super().__init__()
        self.dim, self.num_heads = dim, num_heads
        self.max_period, self.positional_scale = max_period, positional_scale
        self.layers = nn.ModuleList(
            TransformerLayer(dim, num_heads, ffn_dim, bias_attn, bias_ff) for _ in range(num_layers))

    def memory_kv(self, memory: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Every layer's cross-attention ``(k, v) [B, H, L, Dh]`` of ``memory [B, L, D]``."""
        return [layer.cross_attention.memory_kv(memory) for layer in self.layers]

    def new_cache(self, batch: int, capacity: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        """An empty :class:`KVCache` for ``capacity`` steps of ``batch`` rows."""
        return KVCache.allocate(len(self.layers), batch, self.num_heads, self.dim // self.num_heads, capacity,
                                device, dtype)

    def forward(self, x: Tensor, memory_kv: list[tuple[Tensor, Tensor]], cache: KVCache | None = None) -> Tensor:
        """``x [B, T, D]`` (steps ``P .. P+T-1``, ``P = cache.length`` or 0) -> ``[B, T, D]``; advances the cache."""
        past = 0 if cache is None else cache.length
        if cache is not None and past + x.shape[1] > cache.capacity:
            raise ValueError(f"KV cache of {cache.capacity} steps cannot take {x.shape[1]} more after {past}")
        positions = torch.arange(past, past + x.shape[1], device=x.device)
        x = x + self.positional_scale * sin_embedding(positions, self.dim, self.max_period).to(x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, memory_kv[i], cache, i)
        if cache is not None:
            cache.length = past + x.shape[1]
        return x
