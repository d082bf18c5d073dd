"""Discriminators of Flow2GAN's few-step GAN fine-tuning (stage 2, spec C.2).

* :class:`MultiPeriodDiscriminator` -- HiFi-GAN style: the waveform folded into ``[T / p, p]`` for each
  period ``p`` and scored by a stack of ``(5, 1)`` convolutions with stride 3 along time.
* :class:`MultiResolutionDiscriminator` -- DAC style: complex STFTs at several FFT sizes (DC removed and
  peak-normalised to 0.8 first, so it judges shape, not level), split into five frequency bands that are
  scored separately and joined before the output convolution.

Both return ``(scores, features)``: one score map per sub-discriminator and, for each, the list of its
intermediate activations (for the feature-matching loss).  Widths are configurable: ``paper`` is the
published size; ``small`` and ``tiny`` keep the structure with fewer channels for CPU training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

__all__ = ["DiscriminatorConfig", "Discriminators", "MultiPeriodDiscriminator", "MultiResolutionDiscriminator"]

Scores = list[Tensor]
Features = list[list[Tensor]]


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Sizes of the stage-2 discriminators.

    Attributes:
        periods: MPD periods (samples).
        mpd_channels: MPD conv widths; the last one is repeated by the stride-1 layer.
        mrd_fft_sizes: MRD STFT sizes (hop = n_fft / 4, Hann window).
        mrd_channels: MRD per-band width.
        mrd_bands: band edges as fractions of the one-sided spectrum.
        slope: LeakyReLU negative slope.
    """

    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    mpd_channels: tuple[int, ...] = (32, 128, 512, 1024)
    mrd_fft_sizes: tuple[int, ...] = (2048, 1024, 512)
    mrd_channels: int = 32
    mrd_bands: tuple[tuple[float, float], ...] = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))
    slope: float = 0.1

    @classmethod
    def paper(cls) -> DiscriminatorConfig:
        """Flow2GAN's discriminators (HiFi-GAN MPD widths, DAC MRD)."""
        return cls()

    @classmethod
    def small(cls) -> DiscriminatorConfig:
        """A quarter of the MPD widths, half the MRD width: for CPU fine-tuning of small generators."""
        return cls(mpd_channels=(16, 32, 128, 256), mrd_channels=16)

    @classmethod
    def tiny(cls) -> DiscriminatorConfig:
        """For tests."""
        return cls(periods=(2, 3), mpd_channels=(4, 8), mrd_fft_sizes=(256, 128), mrd_channels=4)


def _conv2d(cin: int, cout: int, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1)) -> nn.Module:
    pad = (kernel[0] // 2, kernel[1] // 2)
    return weight_norm(nn.Conv2d(cin, cout, kernel, stride, padding=pad))


class PeriodDiscriminator(nn.Module):
    """One MPD member: ``[B, L]`` waveform -> score ``[B, 1, T', p]`` and its feature maps."""

    def __init__(self, period: int, channels: tuple[int, ...], slope: float) -> None:
        super().__init__()
        self.period, self.slope = period, slope
        widths = (1, *channels)
        layers = [_conv2d(a, b, (5, 1), (3, 1)) for a, b in zip(widths[:-1], widths[1:])]
        layers.append(_conv2d(channels[-1], channels[-1], (5, 1)))
        self.convs = nn.ModuleList(layers)
        self.conv_post = _conv2d(channels[-1], 1, (3, 1))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Score ``x [B, L]``; the waveform is reflect-padded to a multiple of the period."""
        b, n = x.shape
        pad = (-n) % self.period
        if pad:
            x = F.pad(x.unsqueeze(1), (0, pad), mode="reflect").squeeze(1)
        h = x.view(b, 1, -1, self.period)
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), self.slope)
            feats.append(h)
        h = self.conv_post(h)
        feats.append(h)
        return h, feats


class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN's multi-period discriminator."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.members = nn.ModuleList(PeriodDiscriminator(p, cfg.mpd_channels, cfg.slope) for p in cfg.periods)

    def forward(self, x: Tensor) -> tuple[Scores, Features]:
        """``x [B, L]`` -> per-period scores and feature lists."""
        outs = [m(x) for m in self.members]
        return [o[0] for o in outs], [o[1] for o in outs]


class ResolutionDiscriminator(nn.Module):
    """One MRD member: a complex STFT split into frequency bands, each scored by its own conv stack."""

    def __init__(self, n_fft: int, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.n_fft, self.hop, self.slope = n_fft, n_fft // 4, cfg.slope
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        n_bins = n_fft // 2 + 1
        self.bands = [(int(lo * n_bins), int(hi * n_bins)) for lo, hi in cfg.mrd_bands]
        c = cfg.mrd_channels

        def stack() -> nn.ModuleList:
            return nn.ModuleList([_conv2d(2, c, (3, 9)), *(_conv2d(c, c, (3, 9), (1, 2)) for _ in range(3)),
                                  _conv2d(c, c, (3, 3))])

        self.band_convs = nn.ModuleList(stack() for _ in self.bands)
        self.conv_post = _conv2d(c, 1, (3, 3))

    def spectrogram(self, x: Tensor) -> Tensor:
        """``[B, L]`` -> ``[B, 2, frames, bins]`` (real, imaginary) after DC removal and peak normalisation."""
        x = x - x.mean(dim=-1, keepdim=True)
        x = 0.8 * x / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-9)
        spec = torch.stft(x, self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
        return torch.view_as_real(spec).permute(0, 3, 2, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Score ``x [B, L]``: ``[B, 1, frames, bins']`` and the feature maps of every band and layer."""
        spec = self.spectrogram(x)
        feats, outs = [], []
        for (lo, hi), convs in zip(self.bands, self.band_convs):
            h = spec[..., lo:hi]
            for conv in convs:
                h = F.leaky_relu(conv(h), self.slope)
                feats.append(h)
            outs.append(h)
        h = self.conv_post(torch.cat(outs, dim=-1))
        feats.append(h)
        return h, feats


class MultiResolutionDiscriminator(nn.Module):
    """DAC's multi-resolution (multi-band STFT) discriminator."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.members = nn.ModuleList(ResolutionDiscriminator(n, cfg) for n in cfg.mrd_fft_sizes)

    def forward(self, x: Tensor) -> tuple[Scores, Features]:
        """``x [B, L]`` -> per-resolution scores and feature lists."""
        outs = [m(x) for m in self.members]
        return [o[0] for o in outs], [o[1] for o in outs]


class Discriminators(nn.Module):
    """The MPD and MRD together (``mpd``, ``mrd`` attributes)."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.mpd = MultiPeriodDiscriminator(cfg)
        self.mrd = MultiResolutionDiscriminator(cfg)
