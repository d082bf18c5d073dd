"""Building blocks of the latent DiT: embeddings, attention (with RoPE and q/k norm), MLPs, AdaLN, blocks.

Shapes: ``B`` batch, ``L`` latent tokens, ``S`` text tokens, ``D`` width, ``H`` heads, ``hd`` head dim.
Module and parameter names equal the official UDiT ones so official weights load strictly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sara.dit.config import DiTConfig

__all__ = ["AdaLN", "Attention", "DiTBlock", "FeedForward", "FinalBlock", "PositionalEmbedding",
           "RotaryEmbedding", "TimestepEmbedder", "make_norm"]


def make_norm(kind: str | None, dim: int) -> nn.Module:
    """LayerNorm (eps 1e-5, affine) or RMSNorm (eps 1e-6, weight only); ``None`` -> Identity."""
    if kind is None:
        return nn.Identity()
    if kind == "layernorm":
        return nn.LayerNorm(dim, eps=1e-5)
    if kind == "rmsnorm":
        return nn.RMSNorm(dim, eps=1e-6)
    raise ValueError(f"unknown norm {kind!r}")


def film(h: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """``h * (1 + scale) + shift`` with ``shift/scale [B, D]`` broadcast over tokens of ``h [B, L, D]``."""
    return h * (1 + scale[:, None]) + shift[:, None]


class TimestepEmbedder(nn.Module):
    """Sinusoidal (cos first, 256 features) embedding of raw timesteps in [0, 1000], then a 2-layer MLP."""

    def __init__(self, dim: int, num_features: int = 256) -> None:
        super().__init__()
        self.num_features = num_features
        self.mlp = nn.Sequential(nn.Linear(num_features, dim), nn.SiLU(), nn.Linear(dim, dim))

    @staticmethod
    def sinusoid(t: Tensor, num_features: int = 256) -> Tensor:
        """``[B] -> [B, num_features]``: ``[cos(t f_k), sin(t f_k)]``, ``f_k = exp(-ln(1e4) k / half)``."""
        half = num_features // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t.float()[:, None] * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t: Tensor) -> Tensor:
        """``t [B]`` (any dtype) -> ``[B, D]``."""
        emb = self.sinusoid(t, self.num_features)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


class _SinusoidTable(nn.Module):
    """Fixed table ``pe [1, length, D]`` with sin at even and cos at odd features (a persistent buffer)."""

    def __init__(self, length: int, dim: int) -> None:
        super().__init__()
        pos = torch.arange(length, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        pe = torch.zeros(length, dim)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)[:, : dim // 2]
        self.register_buffer("pe", pe[None])


class PositionalEmbedding(nn.Module):
    """Additive positional embedding: learned ``abs_pe [1, length, D]`` or fixed ``sinu_pe.pe``."""

    def __init__(self, method: str, length: int, dim: int) -> None:
        super().__init__()
        self.method = method
        self.length = length
        if method == "abs":
            self.abs_pe = nn.Parameter(torch.zeros(1, length, dim))
            nn.init.trunc_normal_(self.abs_pe, std=0.02, a=-0.04, b=0.04)
        elif method == "sinu":
            self.sinu_pe = _SinusoidTable(length, dim)
        else:
            raise ValueError(f"unknown positional embedding {method!r}")

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, L, D]`` with ``L <= length`` -> ``x + pe[:, :L]``."""
        if x.shape[1] > self.length:
            raise ValueError(f"sequence of {x.shape[1]} tokens exceeds the positional table ({self.length})")
        table = self.abs_pe if self.method == "abs" else self.sinu_pe.pe
        return x + table[:, : x.shape[1]].to(x.dtype)


class RotaryEmbedding(nn.Module):
    """GPT-NeoX style RoPE (halves rotated) over positions ``0..L-1``; ``inv_freq`` is persistent."""

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq)

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, H, L, hd]`` -> rotated, computed in fp32 and cast back."""
        pos = torch.arange(x.shape[-2], device=x.device, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq.float())
        emb = torch.cat([freqs, freqs], dim=-1)
        xf = x.float()
        x1, x2 = xf.chunk(2, dim=-1)
        rotated = torch.cat([-x2, x1], dim=-1)
        return (xf * emb.cos() + rotated * emb.sin()).to(x.dtype)


class Attention(nn.Module):
    """Multi-head attention: ``to_q/to_k/to_v`` -> heads -> q/k norm -> RoPE -> SDPA -> ``proj`` (bias)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool, qk_norm: str | None, rope: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.to_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.to_k = nn.Linear(dim, dim, bias=qkv_bias)
        self.to_v = nn.Linear(dim, dim, bias=qkv_bias)
        self.norm_q = make_norm(qk_norm, head_dim)
        self.norm_k = make_norm(qk_norm, head_dim)
        self.proj = nn.Linear(dim, dim)
        self.rotary = RotaryEmbedding(head_dim) if rope else None

    def _heads(self, x: Tensor) -> Tensor:
        """``[B, L, D] -> [B, H, L, hd]``."""
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, -1).transpose(1, 2)

    def keys_values(self, source: Tensor) -> tuple[Tensor, Tensor]:
        """Keys (normed, rotated) and values ``[B, H, S, hd]`` of ``source [B, S, D]``."""
        k = self.norm_k(self._heads(self.to_k(source)))
        if self.rotary is not None:
            k = self.rotary(k)
        return k, self._heads(self.to_v(source))

    def forward(self, x: Tensor, kv: tuple[Tensor, Tensor] | None = None, key_mask: Tensor | None = None) -> Tensor:
        """Attend from ``x [B, L, D]`` to ``kv`` (default: self-attention on ``x``).

        Args:
            x: queries' input.
            kv: precomputed ``(k, v)`` from :meth:`keys_values` (cross-attention cache).
            key_mask: ``[B, S]`` bool, True = attend.
        """
        q = self.norm_q(self._heads(self.to_q(x)))
        if self.rotary is not None:
            q = self.rotary(q)
        k, v = self.keys_values(x) if kv is None else kv
        mask = None if key_mask is None else key_mask[:, None, None, :].to(torch.bool)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        b, _, n, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))


class _GELUProj(nn.Module):
    """``proj`` Linear then GELU, or GEGLU (value half * gelu(gate half))."""

    def __init__(self, dim: int, inner: int, gated: bool, approximate: str) -> None:
        super().__init__()
        self.gated = gated
        self.approximate = approximate
        self.proj = nn.Linear(dim, inner * 2 if gated else inner)

    def forward(self, x: Tensor) -> Tensor:
        h = self.proj(x)
        if self.gated:
            h, gate = h.chunk(2, dim=-1)
            return h * F.gelu(gate, approximate=self.approximate)
        return F.gelu(h, approximate=self.approximate)


class FeedForward(nn.Module):
    """``net = [proj+act, Dropout(0), Linear]`` with hidden width ``int(dim * mlp_ratio)``."""

    def __init__(self, dim: int, mlp_ratio: float, act: str) -> None:
        super().__init__()
        inner = int(dim * mlp_ratio)
        approximate = "tanh" if act.endswith("approximate") else "none"
        self.net = nn.Sequential(_GELUProj(dim, inner, act.startswith("geglu"), approximate), nn.Dropout(0.0),
                                 nn.Linear(inner, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class AdaLN(nn.Module):
    """Per-block modulation ``[B, 6, D]`` (shift/scale/gate for attention, then for the MLP).

    'ada': own ``time_ada`` Linear(D, 6D) on the time token; 'ada_single': shared projection +
    ``scale_shift_table``; 'ada_sola': shared + ``lora_b(lora_a(time_token)) * alpha / r``;
    'ada_sola_bias': both.
    """

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        d, mode = cfg.dim, cfg.time_fusion
        self.mode = mode
        if mode == "ada":
            self.time_ada = nn.Linear(d, 6 * d)
        if mode in ("ada_single", "ada_sola_bias"):
            self.scale_shift_table = nn.Parameter(torch.zeros(6, d))
        if mode.startswith("ada_sola"):
            rank = int(cfg.ada_rank or 0)
            self.lora_a = nn.Linear(d, 6 * rank, bias=False)
            self.lora_b = nn.Linear(6 * rank, 6 * d, bias=False)
            self.lora_scale = (cfg.ada_alpha / rank) if cfg.ada_alpha is not None else 1.0

    def forward(self, time_token: Tensor, shared: Tensor | None) -> Tensor:
        """``time_token [B, D]`` (SiLU'd embedding), ``shared [B, 6D]`` -> ``[B, 6, D]``."""
        b = time_token.shape[0]
        if self.mode == "ada":
            return self.time_ada(time_token).view(b, 6, -1)
        assert shared is not None
        out = shared.view(b, 6, -1)
        if self.mode.startswith("ada_sola"):
            out = out + (self.lora_b(self.lora_a(time_token)) * self.lora_scale).view(b, 6, -1)
        if self.mode in ("ada_single", "ada_sola_bias"):
            out = out + self.scale_shift_table[None]
        return out


class DiTBlock(nn.Module):
    """AdaLN self-attention (``(1 - gate)`` residual), plain cross-attention, AdaLN MLP; optional long skip."""

    def __init__(self, cfg: DiTConfig, with_skip: bool) -> None:
        super().__init__()
        d = cfg.dim
        if with_skip:
            self.skip_norm = make_norm(cfg.norm, 2 * d) if cfg.skip_norm else nn.Identity()
            self.skip_linear = nn.Linear(2 * d, d)
        self.with_skip = with_skip
        self.norm1 = make_norm(cfg.norm, d)
        self.attn = Attention(d, cfg.num_heads, cfg.qkv_bias, cfg.qk_norm, rope=cfg.rope != "none")
        self.norm2 = make_norm(cfg.norm, d)
        self.cross_attn = Attention(d, cfg.num_heads, cfg.qkv_bias, cfg.qk_norm, rope=False)
        self.norm_context = make_norm(cfg.norm, d) if cfg.context_norm else nn.Identity()
        self.norm3 = make_norm(cfg.norm, d)
        self.mlp = FeedForward(d, cfg.mlp_ratio, cfg.act)
        self.adaln = AdaLN(cfg)

    def context_kv(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-attention keys/values ``[B, H, S, hd]`` of the embedded context ``[B, S, D]``."""
        return self.cross_attn.keys_values(self.norm_context(context))

    def forward(self, x: Tensor, time_token: Tensor, shared_ada: Tensor | None, context_kv: tuple[Tensor, Tensor],
                context_mask: Tensor | None, x_mask: Tensor | None = None, skip: Tensor | None = None) -> Tensor:
        """``x [B, L, D]`` -> ``[B, L, D]``.

        Args:
            time_token: ``[B, D]`` SiLU'd timestep embedding.
            shared_ada: ``[B, 6D]`` shared modulation (None in 'ada' mode).
            context_kv: cached cross-attention keys/values (:meth:`context_kv`).
            context_mask: ``[B, S]`` bool key mask for the text.
            x_mask: ``[B, L]`` bool key mask for self-attention (None = all valid).
            skip: ``[B, L, D]`` long-skip input (out blocks only).
        """
        if self.with_skip:
            assert skip is not None, "out blocks need a skip input"
            x = self.skip_linear(self.skip_norm(torch.cat([x, skip], dim=-1)))
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaln(time_token, shared_ada).unbind(1)
        h = film(self.norm1(x), shift_msa, scale_msa)
        x = x + (1 - gate_msa[:, None]) * self.attn(h, key_mask=x_mask)
        x = x + self.cross_attn(self.norm2(x), kv=context_kv, key_mask=context_mask)
        h = film(self.norm3(x), shift_mlp, scale_mlp)
        return x + (1 - gate_mlp[:, None]) * self.mlp(h)


class FinalBlock(nn.Module):
    """``norm`` -> FiLM(shift, scale) -> ``linear`` to ``patch * C`` -> unpatchify -> optional 3-tap conv."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.patch_size = cfg.patch_size
        self.out_dim = cfg.latent_dim
        self.norm = make_norm(cfg.norm, cfg.dim)
        self.linear = nn.Linear(cfg.dim, cfg.patch_size * cfg.latent_dim)
        self.final_layer = nn.Conv1d(cfg.latent_dim, cfg.latent_dim, 3, padding=1) if cfg.use_conv else None

    def forward(self, x: Tensor, final_ada: Tensor) -> Tensor:
        """``x [B, L, D]``, ``final_ada [B, 2D]`` (shift, scale) -> ``[B, C, L * patch]``."""
        shift, scale = final_ada.view(x.shape[0], 2, -1).unbind(1)
        h = self.linear(film(self.norm(x), shift, scale))
        b, n, _ = h.shape
        out = h.view(b, n, self.patch_size, self.out_dim).permute(0, 3, 1, 2).reshape(b, self.out_dim, -1)
        return out if self.final_layer is None else self.final_layer(out)
