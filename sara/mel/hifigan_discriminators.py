"""HiFi-GAN's discriminator side for ``sara train hifigan``: the discriminator widths, the multi-scale
discriminator (MSD: three grouped-conv stacks on the raw, 2x and 4x average-pooled waveform, spectral norm on
the first, weight norm on the others; the multi-period one is :class:`sara.vocoder.discriminators.
MultiPeriodDiscriminator`) and the least-squares GAN losses (Kong et al. 2020, section 2.3)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from sara.vocoder.discriminators import DiscriminatorConfig

__all__ = ["HiFiGANDiscriminatorConfig", "MultiScaleDiscriminator", "ScaleDiscriminator", "lsgan_discriminator_loss",
           "lsgan_generator_loss"]

Scores = list[Tensor]
Features = list[list[Tensor]]


# ------------------------------------------------------------------------------------ discriminators
@dataclass(frozen=True)
class HiFiGANDiscriminatorConfig:
    """MPD and MSD sizes (paper = HiFi-GAN V1).

    Attributes:
        periods, mpd_channels: MPD periods (samples) and widths of its stride-3 ``(5, 1)`` convolutions.
        msd_channels, msd_kernels, msd_strides, msd_groups: one entry per MSD convolution (before the
            3-tap ``conv_post``); each group count must divide that layer's input and output widths.
        num_scales: MSD members; member ``i`` sees the waveform average-pooled ``i`` times (kernel 4, stride 2).
        slope: LeakyReLU negative slope.
    """

    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    mpd_channels: tuple[int, ...] = (32, 128, 512, 1024)
    msd_channels: tuple[int, ...] = (128, 128, 256, 512, 1024, 1024, 1024)
    msd_kernels: tuple[int, ...] = (15, 41, 41, 41, 41, 41, 5)
    msd_strides: tuple[int, ...] = (1, 2, 2, 4, 4, 1, 1)
    msd_groups: tuple[int, ...] = (1, 4, 16, 16, 16, 16, 1)
    num_scales: int = 3
    slope: float = 0.1

    def __post_init__(self) -> None:
        n = len(self.msd_channels)
        if not n or not len(self.msd_kernels) == len(self.msd_strides) == len(self.msd_groups) == n:
            raise ValueError("msd_channels, msd_kernels, msd_strides and msd_groups need the same length >= 1")
        widths = (1, *self.msd_channels)
        for i, g in enumerate(self.msd_groups):
            if g < 1 or widths[i] % g or widths[i + 1] % g:
                raise ValueError(f"MSD layer {i}: groups {g} must divide widths {widths[i]} -> {widths[i + 1]}")
        if not self.periods or not self.mpd_channels or self.num_scales < 1:
            raise ValueError("need at least one MPD period, one MPD width and one MSD scale")

    @classmethod
    def paper(cls) -> HiFiGANDiscriminatorConfig:
        """HiFi-GAN V1's MPD and MSD."""
        return cls()

    @classmethod
    def small(cls) -> HiFiGANDiscriminatorConfig:
        """A quarter of every width, same depth and receptive field: for CPU training of small generators."""
        return cls(mpd_channels=(8, 32, 128, 256), msd_channels=(32, 32, 64, 128, 256, 256, 256))

    @classmethod
    def tiny(cls) -> HiFiGANDiscriminatorConfig:
        """For tests."""
        return cls(periods=(2, 3), mpd_channels=(4, 8), msd_channels=(4, 8, 8), msd_kernels=(15, 41, 5),
                   msd_strides=(1, 4, 1), msd_groups=(1, 4, 1), num_scales=2)

    def mpd_config(self) -> DiscriminatorConfig:
        """The :class:`DiscriminatorConfig` that sizes sara's MPD like this one."""
        return DiscriminatorConfig(periods=self.periods, mpd_channels=self.mpd_channels, slope=self.slope)


class ScaleDiscriminator(nn.Module):
    """One MSD member: ``[B, 1, L]`` -> score ``[B, 1, L']`` and its activations (HiFi-GAN ``DiscriminatorS``)."""

    def __init__(self, cfg: HiFiGANDiscriminatorConfig, spectral: bool) -> None:
        super().__init__()
        norm = spectral_norm if spectral else weight_norm
        widths = (1, *cfg.msd_channels)
        self.convs = nn.ModuleList(
            norm(nn.Conv1d(widths[i], widths[i + 1], k, s, groups=g, padding=(k - 1) // 2))
            for i, (k, s, g) in enumerate(zip(cfg.msd_kernels, cfg.msd_strides, cfg.msd_groups)))
        self.conv_post = norm(nn.Conv1d(widths[-1], 1, 3, 1, padding=1))
        self.slope = cfg.slope

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Score ``x [B, 1, L]``."""
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), self.slope)
            feats.append(x)
        x = self.conv_post(x)
        feats.append(x)
        return x, feats


class MultiScaleDiscriminator(nn.Module):
    """HiFi-GAN's multi-scale discriminator (the first member spectrally normalised)."""

    def __init__(self, cfg: HiFiGANDiscriminatorConfig) -> None:
        super().__init__()
        self.members = nn.ModuleList(ScaleDiscriminator(cfg, spectral=i == 0) for i in range(cfg.num_scales))
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, x: Tensor) -> tuple[Scores, Features]:
        """``x [B, L]`` -> per-scale scores and feature lists."""
        h, scores, feats = x.unsqueeze(1), [], []
        for i, member in enumerate(self.members):
            if i:
                h = self.pool(h)
            score, f = member(h)
            scores.append(score)
            feats.append(f)
        return scores, feats


def lsgan_discriminator_loss(real: Scores, fake: Scores) -> Tensor:
    """``sum_d mean((1 - D(x))^2) + mean(D(G(s))^2)`` (HiFi-GAN ``discriminator_loss``)."""
    return sum(((1 - r).pow(2).mean() + f.pow(2).mean() for r, f in zip(real, fake)), start=real[0].new_zeros(()))


def lsgan_generator_loss(fake: Scores) -> Tensor:
    """``sum_d mean((1 - D(G(s)))^2)`` (HiFi-GAN ``generator_loss``)."""
    return sum(((1 - f).pow(2).mean() for f in fake), start=fake[0].new_zeros(()))
