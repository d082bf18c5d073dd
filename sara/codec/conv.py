"""Padded ("streamable") 1-d convolutions with audiocraft's module nesting and weight-norm parameter names.

audiocraft (``audiocraft/modules/conv.py``) wraps each conv twice: ``StreamableConv1d.conv`` is a
``NormConv1d`` whose ``.conv`` is an ``nn.Conv1d`` passed through the old ``torch.nn.utils.weight_norm``,
so the state-dict keys are ``conv.conv.weight_g`` / ``conv.conv.weight_v`` / ``conv.conv.bias`` (and
``convtr.convtr.*`` for transposed convs).  Here the weight-normed layers store exactly those two tensors
as parameters and compute ``weight = g * v / ||v||`` (norm over all dims but 0) in ``forward``, which is
what the deprecated hook computes, without depending on it.

Padding (non-causal): a stride-``s`` conv with effective kernel ``k`` pads ``k - s`` in total, split
``ceil/floor`` left/right, plus extra right zeros so that the last window is full; its output has
``ceil(T / s)`` frames.  The transposed conv removes the same ``k - s`` and yields ``T * s`` samples.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["StreamableConv1d", "StreamableConvTranspose1d", "WeightNormConv1d", "WeightNormConvTranspose1d",
           "extra_padding_for_conv1d", "pad1d"]


def _norm_except_dim0(v: Tensor) -> Tensor:
    """``||v||`` over every dimension but the first, kept as ``[C, 1, 1]`` (weight_norm with dim=0)."""
    return torch.linalg.vector_norm(v, dim=tuple(range(1, v.dim())), keepdim=True)


class WeightNormConv1d(nn.Conv1d):
    """``nn.Conv1d`` whose weight is ``weight_g * weight_v / ||weight_v||`` (parameters ``weight_g [O, 1, 1]``,
    ``weight_v [O, I / groups, K]``, ``bias [O]``), initialised so that the effective weight equals the
    default Conv1d initialisation."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        weight = self.weight.detach()
        del self.weight
        self.weight_g = nn.Parameter(_norm_except_dim0(weight))
        self.weight_v = nn.Parameter(weight.clone())

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 - see class docstring
        weight = self.weight_v * (self.weight_g / _norm_except_dim0(self.weight_v))
        return self._conv_forward(x, weight, self.bias)


class WeightNormConvTranspose1d(nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` with ``weight_g [I, 1, 1]`` / ``weight_v [I, O, K]`` (dim 0 is the input
    channels for transposed convs, as in torch's weight_norm)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        weight = self.weight.detach()
        del self.weight
        self.weight_g = nn.Parameter(_norm_except_dim0(weight))
        self.weight_v = nn.Parameter(weight.clone())

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 - see class docstring
        weight = self.weight_v * (self.weight_g / _norm_except_dim0(self.weight_v))
        return F.conv_transpose1d(x, weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)


def extra_padding_for_conv1d(length: int, kernel_size: int, stride: int, padding_total: int = 0) -> int:
    """Right zeros needed so the last conv window is full (audiocraft ``get_extra_padding_for_conv1d``).

    Args:
        length: input length (samples or frames).
        kernel_size: effective kernel size ``(k - 1) * dilation + 1``.
        stride: conv stride.
        padding_total: padding already planned.
    """
    n_frames = (length - kernel_size + padding_total) / stride + 1
    ideal_length = (math.ceil(n_frames) - 1) * stride + (kernel_size - padding_total)
    return ideal_length - length


def pad1d(x: Tensor, left: int, right: int, mode: str = "constant") -> Tensor:
    """``F.pad`` on the last dim; ``reflect`` also works on inputs shorter than the padding (zeros first)."""
    if mode != "reflect":
        return F.pad(x, (left, right), mode)
    extra = max(0, max(left, right) - x.shape[-1] + 1)
    padded = F.pad(F.pad(x, (0, extra)), (left, right), "reflect")
    return padded[..., : padded.shape[-1] - extra]


class _NormConv1d(nn.Module):
    """audiocraft's ``NormConv1d`` nesting: the conv lives in ``.conv`` (``.norm`` is an identity)."""

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        self.conv = conv
        self.norm = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.norm(self.conv(x))


class StreamableConv1d(nn.Module):
    """Conv1d ``[B, I, T] -> [B, O, ceil(T / stride)]`` with centred (or causal) padding.

    Args:
        in_channels, out_channels, kernel_size, stride, dilation: as ``nn.Conv1d``.
        weight_norm: old-style weight-norm parameters (``conv.conv.weight_g/_v``) or a plain conv.
        causal: pad on the left only.
        pad_mode: ``constant`` (zeros) or ``reflect``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1,
                 *, weight_norm: bool = True, causal: bool = False, pad_mode: str = "constant") -> None:
        super().__init__()
        cls = WeightNormConv1d if weight_norm else nn.Conv1d
        self.conv = _NormConv1d(cls(in_channels, out_channels, kernel_size, stride, dilation=dilation))
        self.causal, self.pad_mode = causal, pad_mode

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 - see class docstring
        conv = self.conv.conv
        kernel = (conv.kernel_size[0] - 1) * conv.dilation[0] + 1
        stride = conv.stride[0]
        total = kernel - stride
        extra = extra_padding_for_conv1d(x.shape[-1], kernel, stride, total)
        if self.causal:
            return self.conv(pad1d(x, total, extra, self.pad_mode))
        right = total // 2
        return self.conv(pad1d(x, total - right, right + extra, self.pad_mode))


class _NormConvTranspose1d(nn.Module):
    """audiocraft's ``NormConvTranspose1d`` nesting: the conv lives in ``.convtr``."""

    def __init__(self, convtr: nn.ConvTranspose1d) -> None:
        super().__init__()
        self.convtr = convtr
        self.norm = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.norm(self.convtr(x))


class StreamableConvTranspose1d(nn.Module):
    """ConvTranspose1d ``[B, I, T] -> [B, O, T * stride]`` trimming the fixed ``kernel - stride`` padding.

    Args:
        in_channels, out_channels, kernel_size, stride: as ``nn.ConvTranspose1d``.
        weight_norm: old-style weight norm (``convtr.convtr.weight_g/_v``).
        causal: trim by ``trim_right_ratio`` (1.0 = all on the right) instead of centred.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, *,
                 weight_norm: bool = True, causal: bool = False, trim_right_ratio: float = 1.0) -> None:
        super().__init__()
        cls = WeightNormConvTranspose1d if weight_norm else nn.ConvTranspose1d
        self.convtr = _NormConvTranspose1d(cls(in_channels, out_channels, kernel_size, stride))
        self.causal, self.trim_right_ratio = causal, trim_right_ratio

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102 - see class docstring
        convtr = self.convtr.convtr
        total = convtr.kernel_size[0] - convtr.stride[0]
        y = self.convtr(x)
        right = math.ceil(total * self.trim_right_ratio) if self.causal else total // 2
        left = total - right
        return y[..., left : y.shape[-1] - right]
