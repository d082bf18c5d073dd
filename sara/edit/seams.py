"""Seam statistics: is a join between windows (or an inpainted edge) audible as a discontinuity?

Two series per frame -- the spectral flux of the waveform (L2 change of the log-magnitude spectrum between
consecutive 10 ms STFT frames) and the L2 distance between consecutive latent frames -- are compared at the
joins against their values everywhere else.  ``ratio = seam / inside``: 1 means the joins look like any
other moment, above 1 a jump.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sara.audio.dsp import hann_window, stft

__all__ = ["SeamStats", "latent_steps", "log_spectrogram", "novelty", "seam_stats", "spectral_flux"]


@dataclass(frozen=True)
class SeamStats:
    """Mean of a per-frame series near the joins (``seam``), away from them (``inside``), and their ratio."""

    seam: float
    inside: float
    ratio: float
    num_joins: int


def spectral_flux(wav: Tensor, sample_rate: int, *, n_fft: int = 1024, hop_seconds: float = 0.01) -> Tensor:
    """``wav [S]`` -> ``[K - 1]`` flux between consecutive STFT frames (log1p magnitude, L2 over bins).

    Frame ``k`` of the result is the change from frame ``k`` to ``k + 1``, centred at ``(k + 0.5) * hop``.
    """
    hop = max(1, round(hop_seconds * sample_rate))
    mag = stft(wav.reshape(1, -1).float(), n_fft, hop, hann_window(n_fft)).abs()[0]  # [F, K]
    logmag = torch.log1p(mag * 100.0)
    return (logmag[:, 1:] - logmag[:, :-1]).norm(dim=0)


def log_spectrogram(wav: Tensor, sample_rate: int, *, n_fft: int = 1024, hop_seconds: float = 0.01) -> Tensor:
    """``wav [S]`` -> ``[n_fft // 2 + 1, K]`` log1p magnitudes at ``hop_seconds`` frames."""
    hop = max(1, round(hop_seconds * sample_rate))
    return torch.log1p(stft(wav.reshape(1, -1).float(), n_fft, hop, hann_window(n_fft)).abs()[0] * 100.0)


def novelty(features: Tensor, context: int) -> Tensor:
    """``features [D, K]`` -> ``[K - 1]``: L2 distance between the mean of the ``context`` frames up to ``k``
    and the mean of the ``context`` frames after it (a change of *content*, blind to frame-level noise).

    Value ``k`` sits between frames ``k`` and ``k + 1``, like :func:`spectral_flux`; near the ends the
    averages use the frames there are.
    """
    x = features.float()
    csum = torch.cat([x.new_zeros(x.shape[0], 1), x.cumsum(dim=1)], dim=1)  # [D, K + 1]
    k = torch.arange(1, x.shape[1])
    lo, hi = (k - context).clamp_min(0), (k + context).clamp_max(x.shape[1])
    left = (csum[:, k] - csum[:, lo]) / (k - lo)
    right = (csum[:, hi] - csum[:, k]) / (hi - k)
    return (right - left).norm(dim=0)


def latent_steps(latents: Tensor) -> Tensor:
    """``latents [C, T]`` (or ``[1, C, T]``) -> ``[T - 1]`` L2 distance between consecutive frames."""
    z = latents.reshape(-1, latents.shape[-1]).float()
    return (z[:, 1:] - z[:, :-1]).norm(dim=0)


def seam_stats(series: Tensor, rate: float, joins_seconds: list[float], *, radius_seconds: float = 0.05,
               exclude_seconds: float = 0.5) -> SeamStats:
    """Compare ``series [K]`` (one value per ``1 / rate`` s, value ``k`` at ``(k + 0.5) / rate``) at the joins
    with elsewhere.

    Args:
        series: per-step change (flux or latent distance).
        rate: values per second.
        joins_seconds: join times in seconds.
        radius_seconds: values within this distance of a join count as "seam" (max over the neighbourhood,
            so a jump between two frames is caught wherever it falls).
        exclude_seconds: values this close to a join or to either end of the signal are left out of
            "inside"; the inside statistic is the same max-over-neighbourhood taken at every other position,
            so the two are comparable.
    """
    times = (torch.arange(series.numel(), dtype=torch.float64) + 0.5) / rate
    radius = max(1, round(radius_seconds * rate))
    pooled = torch.nn.functional.max_pool1d(series.reshape(1, 1, -1).float(), 2 * radius + 1, 1, radius)[0, 0]
    total = series.numel() / rate
    near = torch.zeros_like(times, dtype=torch.bool)
    far = (times > exclude_seconds) & (times < total - exclude_seconds)  # no signal edges (STFT padding)
    seam_values = []
    for j in joins_seconds:
        dist = (times - j).abs()
        seam_values.append(pooled[int(dist.argmin())])
        near |= dist <= radius_seconds
        far &= dist > exclude_seconds
    inside = pooled[far & ~near]
    seam = torch.stack(seam_values).mean().item() if seam_values else float("nan")
    inside_mean = inside.mean().item() if inside.numel() else float("nan")
    return SeamStats(seam=seam, inside=inside_mean, ratio=seam / inside_mean, num_joins=len(seam_values))
