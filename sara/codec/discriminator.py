"""Multi-scale STFT discriminator (EnCodec's MS-STFTD, audiocraft ``adversarial/discriminators/msstftd.py``).

Per scale: the uncentred, window-normalised complex STFT of ``[B, 1, T]`` as 2 channels (real, imaginary)
laid out ``[B, 2, frames, freqs]``; a 2-d conv stack ``(3, 9)`` kernels: one plain conv, then weight-normed
convs with stride ``(1, 2)`` over frequency and time dilations ``1, 2, 4``, a ``3 x 3`` conv, and a ``3 x 3``
output conv; LeakyReLU(0.3) after every conv but the last, whose activations are the feature maps.
Solver settings (``config/solver/compression/default.yaml`` ``msstftd``): 32 filters, FFT sizes
``1024, 2048, 512, 256, 128`` with hop ``n_fft / 4``.  Discriminator weights are never exported, so the
module layout here is sara's own (modern ``parametrizations.weight_norm``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from sara.audio.dsp import hann_window

__all__ = ["DiscriminatorSTFT", "MSSTFTDConfig", "MultiScaleSTFTDiscriminator"]


@dataclass(frozen=True)
class MSSTFTDConfig:
    """MS-STFT discriminator sizes.

    Attributes:
        filters: channels of every conv (``filters_scale`` 1, so widths do not grow).
        n_ffts: FFT size (= window) of each sub-discriminator; hops are ``n_fft // 4``.
        negative_slope: LeakyReLU slope.
    """

    filters: int = 32
    n_ffts: tuple[int, ...] = (1024, 2048, 512, 256, 128)
    negative_slope: float = 0.3

    def __post_init__(self) -> None:
        if self.filters < 1 or not self.n_ffts or any(n < 8 for n in self.n_ffts):
            raise ValueError(f"MS-STFT discriminator needs filters >= 1 and FFT sizes >= 8, got {self}")

    @classmethod
    def paper(cls) -> MSSTFTDConfig:
        """audiocraft's compression solver setting."""
        return cls()

    @classmethod
    def small(cls) -> MSSTFTDConfig:
        """Narrower and three scales, for CPU training."""
        return cls(filters=8, n_ffts=(1024, 512, 256))

    @classmethod
    def tiny(cls) -> MSSTFTDConfig:
        """Test size."""
        return cls(filters=2, n_ffts=(64, 32))


def _conv(cin: int, cout: int, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1),
          dilation: tuple[int, int] = (1, 1), norm: bool = True) -> nn.Module:
    padding = ((kernel[0] - 1) * dilation[0] // 2, (kernel[1] - 1) * dilation[1] // 2)
    conv = nn.Conv2d(cin, cout, kernel, stride, padding, dilation)
    return weight_norm(conv) if norm else conv


class DiscriminatorSTFT(nn.Module):
    """One STFT scale: waveform ``[B, 1, T]`` -> ``(logits [B, 1, frames, freqs'], feature maps)``."""

    def __init__(self, filters: int, n_fft: int, negative_slope: float) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", hann_window(n_fft), persistent=False)
        convs = [_conv(2, filters, (3, 9), norm=False)]
        convs += [_conv(filters, filters, (3, 9), (1, 2), (d, 1)) for d in (1, 2, 4)]
        convs.append(_conv(filters, filters, (3, 3)))
        self.convs = nn.ModuleList(convs)
        self.conv_post = _conv(filters, 1, (3, 3))
        self.activation = nn.LeakyReLU(negative_slope)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:  # noqa: D102 - see class docstring
        b, c, t = x.shape
        spec = torch.stft(x.reshape(b * c, t).float(), self.n_fft, self.hop, self.n_fft, self.window,
                          center=False, return_complex=True) / self.window.pow(2).sum().sqrt()
        z = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # [B, 2, frames, freqs]
        fmap = []
        for conv in self.convs:
            z = self.activation(conv(z))
            fmap.append(z)
        return self.conv_post(z), fmap


class MultiScaleSTFTDiscriminator(nn.Module):
    """Sub-discriminators over several STFT resolutions.

    ``forward(x [B, 1, T]) -> (logits per scale, feature maps per scale)``; inputs need ``T >= max(n_ffts)``.
    """

    def __init__(self, cfg: MSSTFTDConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.discriminators = nn.ModuleList(DiscriminatorSTFT(cfg.filters, n, cfg.negative_slope) for n in cfg.n_ffts)

    def forward(self, x: Tensor) -> tuple[list[Tensor], list[list[Tensor]]]:  # noqa: D102 - see class docstring
        logits, fmaps = [], []
        for disc in self.discriminators:
            logit, fmap = disc(x)
            logits.append(logit)
            fmaps.append(fmap)
        return logits, fmaps
