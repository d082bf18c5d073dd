"""Vocoder losses and distances.

* :func:`energy_weighted_spectral_loss` -- Flow2GAN's stage-1 loss (spec C.1): squared error in a
  linear-filterbank power spectrogram, weighted per filter and frame by the clean signal's energy
  ``clamp((G + eps)^(-power), min, max)``, which emphasises quiet regions.
* :func:`multi_resolution_mel_distance` -- an L1 log-mel distance over several resolutions, used to
  report reconstruction quality (lower is better).
"""

from __future__ import annotations

import torch
from torch import Tensor

from sara.audio.dsp import mel_spectrogram
from sara.vocoder.config import VocoderConfig
from sara.vocoder.model import LinearFilterSpectrogram

__all__ = ["energy_weighted_spectral_loss", "frame_mask", "multi_resolution_mel_distance"]


def frame_mask(lengths: Tensor, hop_length: int, num_frames: int) -> Tensor:
    """``[B, 1, num_frames]`` float mask of the valid centred-STFT frames ``1 + len // hop`` per item."""
    valid = 1 + torch.div(lengths, hop_length, rounding_mode="floor")
    frames = torch.arange(num_frames, device=lengths.device)
    return (frames.unsqueeze(0) < valid.unsqueeze(1)).unsqueeze(1).float()


def energy_weighted_spectral_loss(
    spec: LinearFilterSpectrogram, error: Tensor, clean: Tensor, lengths: Tensor, cfg: VocoderConfig
) -> Tensor:
    """Energy-aware spectral loss.

    Args:
        spec: the filterbank power spectrogram (``loss_spec`` of the generator).
        error: ``pred - target`` waveform ``[B, L]``.
        clean: clean waveform ``x1`` ``[B, L]`` (sets the weighting).
        lengths: valid samples per item ``[B]``.
        cfg: supplies ``loss_power``, ``loss_eps``, ``loss_scale_min/max``, ``loss_hop_length``.

    Returns:
        Scalar: ``sum(E * scale * mask) / (sum(mask) * n_filters)``.
    """
    err_e = spec(error)
    with torch.no_grad():
        scale = (spec(clean) + cfg.loss_eps).pow(-cfg.loss_power).clamp(cfg.loss_scale_min, cfg.loss_scale_max)
    mask = frame_mask(lengths, cfg.loss_hop_length, err_e.shape[-1])
    return (err_e * scale * mask).sum() / (mask.sum() * err_e.shape[1])


def multi_resolution_mel_distance(
    pred: Tensor,
    ref: Tensor,
    sample_rate: int = 24000,
    n_ffts: tuple[int, ...] = (512, 1024, 2048),
    n_mels: tuple[int, ...] = (40, 80, 128),
) -> Tensor:
    """Mean L1 distance of ``log10(mel + 1e-5)`` magnitude spectrograms (hop = n_fft / 4).

    Args:
        pred, ref: waveforms ``[B, L]`` at ``sample_rate`` (same length).

    Returns:
        ``[B]`` distances averaged over the resolutions.
    """
    total = torch.zeros(pred.shape[0], device=pred.device)
    for n_fft, mels in zip(n_ffts, n_mels):
        a = mel_spectrogram(pred.float(), sample_rate, n_fft, n_fft // 4, mels, power=1.0)
        b = mel_spectrogram(ref.float(), sample_rate, n_fft, n_fft // 4, mels, power=1.0)
        total = total + (torch.log10(a + 1e-5) - torch.log10(b + 1e-5)).abs().mean(dim=(-2, -1))
    return total / len(n_ffts)
