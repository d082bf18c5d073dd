"""Building blocks of the vocoder generator: BiasNorm, ChannelScale, 1-D ConvNeXt blocks, time embedding.

Notation: ``B`` batch, ``C`` channels, ``T`` frames.  Parameter names follow the official Flow2GAN /
SemanticVocoder modules so that released state dicts load without renaming (spec B.3/B.4).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["CHANNEL_SCALE_LIMITS", "LIMIT_PROB", "LOG_SCALE_LIMITS", "BiasNorm", "ChannelScale", "ConvNeXtBlock",
           "limit_param_value", "reverse_outward_grad_", "sinusoidal_time_embedding"]

LIMIT_PROB = 0.6  # probability that the soft range constraint acts on a given use (Flow2GAN)
LOG_SCALE_LIMITS = (-1.5, 1.5)  # BiasNorm.log_scale
CHANNEL_SCALE_LIMITS = (0.5, 1.0)  # ChannelScale.scale


def _outward(x: Tensor, grad: Tensor, lo: float, hi: float) -> Tensor:
    """Where a gradient-descent step ``-grad`` would move ``x`` further out of ``[lo, hi]`` (bool, x's shape)."""
    return ((x < lo) & (grad > 0)) | ((x > hi) & (grad < 0))


class _LimitParamValue(torch.autograd.Function):
    """Identity whose backward flips the sign of gradient components that would push a value further out
    of range, so that gradient descent pulls it back towards ``[min, max]``."""

    @staticmethod
    def forward(ctx, x: Tensor, min_value: float, max_value: float) -> Tensor:  # noqa: ANN001
        ctx.save_for_backward(x)
        ctx.bounds = (min_value, max_value)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # noqa: ANN001
        (x,) = ctx.saved_tensors
        lo, hi = ctx.bounds
        return torch.where(_outward(x, grad, lo, hi), -grad, grad), None, None


def limit_param_value(x: Tensor, min_value: float, max_value: float, prob: float = LIMIT_PROB) -> Tensor:
    """Training-time soft constraint: with probability ``prob``, reverse gradients that leave ``[min, max]``.

    The forward value is unchanged; only the gradient is filtered.  Outside training, or when gradients
    are off, this is the identity.
    """
    if not torch.is_grad_enabled() or not x.requires_grad or float(torch.rand(())) >= prob:
        return x
    return _LimitParamValue.apply(x, min_value, max_value)


@torch.no_grad()
def reverse_outward_grad_(param: Tensor, min_value: float, max_value: float) -> None:
    """The constraint of :func:`limit_param_value` applied to an accumulated ``param.grad`` in place.

    Used on the gradient after data-parallel averaging: the sign test then sees the gradient of the whole
    batch, as one process with that batch would, instead of each process's share (the flips of the shares
    do not sum to the flip of the sum).  Flipping signs keeps the gradient norm, so it commutes with norm
    clipping.
    """
    if param.grad is not None:
        grad = param.grad
        grad.copy_(torch.where(_outward(param, grad, min_value, max_value), -grad, grad))


class BiasNorm(nn.Module):
    """Zipformer's BiasNorm: ``x * mean_c((x - bias)^2)^(-1/2) * exp(log_scale)``.

    The bias enters only the RMS (it is not subtracted from the output) and there is deliberately **no
    epsilon**, as in the official model: an all-equal-to-bias input gives inf, exactly like the original.

    Args:
        num_channels: size ``C`` of the normalised dimension.
        channel_dim: which dimension holds the channels (1 for ``[B, C, T]``).
    """

    def __init__(self, num_channels: int, channel_dim: int = 1) -> None:
        super().__init__()
        self.channel_dim = channel_dim
        self.log_scale = nn.Parameter(torch.tensor(1.0))
        self.bias = nn.Parameter(torch.randn(num_channels) * 1e-2)
        self.limit_in_forward = True  # False: the trainer applies the range constraint to the synced gradient

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` (``[B, C, T]`` for ``channel_dim=1``); returns the same shape."""
        shape = [1] * x.dim()
        shape[self.channel_dim] = -1
        bias = self.bias.view(shape)
        log_scale = self.log_scale
        if self.training and self.limit_in_forward:
            log_scale = limit_param_value(log_scale, *LOG_SCALE_LIMITS)
        rms_inv = (x - bias).pow(2).mean(dim=self.channel_dim, keepdim=True).pow(-0.5)
        return x * (rms_inv * log_scale.exp())


class ChannelScale(nn.Module):
    """Learnable per-channel gain ``scale [C, 1]`` (init 1.0), used on the residual skip path."""

    def __init__(self, num_channels: int, init: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((num_channels, 1), float(init)))
        self.limit_in_forward = True  # False: the trainer applies the range constraint to the synced gradient

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, C, T] * scale``; during training the scale is softly kept in [0.5, 1.0]."""
        limit = self.training and self.limit_in_forward
        scale = limit_param_value(self.scale, *CHANNEL_SCALE_LIMITS) if limit else self.scale
        return x * scale


class ConvNeXtBlock(nn.Module):
    """1-D ConvNeXt block with an optional additive condition and a multiplicative time modulation.

    ``y = scale * x + pwconv2(prelu(pwconv1((1 + W_t temb) * (norm(dwconv(x)) + W_c cond))))``.

    Args:
        channels: width ``C``.
        hidden_channels: pointwise expansion width (``3 C`` in the paper).
        kernel_size: odd depthwise kernel size.
        cond_channels: channels of the frame-level condition (None: no condition input).
        time_embed_channels: width of the time embedding (None: no time input).
        residual_scale: add a :class:`ChannelScale` on the skip path.
    """

    def __init__(
        self,
        channels: int,
        hidden_channels: int,
        kernel_size: int = 7,
        cond_channels: int | None = None,
        time_embed_channels: int | None = None,
        residual_scale: bool = True,
    ) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)
        self.norm = BiasNorm(channels)
        self.cond_proj = nn.Conv1d(cond_channels, channels, 1) if cond_channels else None
        self.time_embed_proj = nn.Linear(time_embed_channels, channels) if time_embed_channels else None
        self.pwconv1 = nn.Conv1d(channels, hidden_channels, 1)
        self.act = nn.PReLU(hidden_channels, init=0.25)
        self.pwconv2 = nn.Conv1d(hidden_channels, channels, 1)
        self.residual_scale = ChannelScale(channels) if residual_scale else None

    def project_cond(self, cond: Tensor) -> Tensor:
        """``cond [B, Cc, T] -> [B, C, T]``; depends only on the condition, so samplers cache it."""
        assert self.cond_proj is not None, "this block takes no condition"
        return self.cond_proj(cond)

    def forward(self, x: Tensor, cond_proj: Tensor | None = None, time_embed: Tensor | None = None) -> Tensor:
        """Apply the block.

        Args:
            x: ``[B, C, T]``.
            cond_proj: the already projected condition ``[B, C, T]`` (see :meth:`project_cond`), or None.
            time_embed: ``[B, time_embed_channels]`` or None.

        Returns:
            ``[B, C, T]``.
        """
        residual = x
        x = self.norm(self.dwconv(x))
        if cond_proj is not None:
            x = x + cond_proj
        if time_embed is not None:
            assert self.time_embed_proj is not None, "this block takes no time embedding"
            x = x * (1.0 + self.time_embed_proj(time_embed).unsqueeze(-1))
        x = self.pwconv2(self.act(self.pwconv1(x)))
        skip = self.residual_scale(residual) if self.residual_scale is not None else residual
        return x + skip


def sinusoidal_time_embedding(t: Tensor, dim: int, scale: float = 1000.0) -> Tensor:
    """Flow2GAN's time embedding: ``[sin(s t f_k), cos(s t f_k)]`` with ``f_k = 10000^(-k / (dim/2 - 1))``.

    Sin comes first, ``t`` in [0, 1) is multiplied by ``scale`` = 1000, and the frequency divisor is
    ``half - 1`` (not ``half`` as in DiT-style embeddings; spec E.3.5).

    Args:
        t: ``[B]`` flow times.
        dim: embedding width (even).

    Returns:
        ``[B, dim]`` float32 embedding.
    """
    half = dim // 2
    k = torch.arange(half, device=t.device, dtype=torch.float32)
    freqs = torch.exp(k * (-math.log(10000.0) / (half - 1)))
    arg = scale * t.float().unsqueeze(-1) * freqs.unsqueeze(0)
    return torch.cat([arg.sin(), arg.cos()], dim=-1)
