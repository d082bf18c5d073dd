"""Reconstruction distances: DAC multi-scale mel distance, multi-resolution STFT distance, waveform L1,
SI-SDR, and ViSQOL (when the optional ``visqol-python`` package is importable).

DAC configuration (descript-audio-codec ``conf/base.yml`` + ``dac/nn/loss.py``, audiotools STFT; see
``EVALUATION.md`` 1.5.1):

* mel: 7 scales, ``n_mels = 5..320`` paired with ``window = 32..2048``, hop = window / 4, fmin 0, fmax Nyquist,
  periodic Hann, ``torch.stft(center=True)`` reflect padding, librosa (Slaney scale + Slaney norm) filters on
  the **magnitude** STFT; per scale ``L1(log10(clamp(mel_x, 1e-5) ** 1.0), log10(...))`` (mean); scales
  **summed**; ``mag_weight = 0``.
* multi-scale STFT: windows (2048, 512), hop w/4, per scale ``L1(log10(clamp(|X|, 1e-5) ** 2)) + L1(|X|)``.

Signals are ``[..., T]`` (any leading dims), both at ``sample_rate`` Hz; the shorter length is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from sara.audio.dsp import mel_filterbank, resample, stft
from sara.errors import SaraError

__all__ = [
    "DAC_MEL",
    "DAC_STFT",
    "MelDistanceConfig",
    "STFTDistanceConfig",
    "mel_distance",
    "si_sdr",
    "stft_distance",
    "visqol",
    "visqol_available",
    "waveform_l1",
]


@dataclass(frozen=True)
class MelDistanceConfig:
    """Multi-scale log-mel L1 (DAC ``MelSpectrogramLoss``).  Defaults are DAC's released-model config."""

    n_mels: tuple[int, ...] = (5, 10, 20, 40, 80, 160, 320)
    window_lengths: tuple[int, ...] = (32, 64, 128, 256, 512, 1024, 2048)
    clamp_eps: float = 1e-5
    pow: float = 1.0
    mag_weight: float = 0.0
    log_weight: float = 1.0
    f_min: float = 0.0
    f_max: float | None = None  # None = Nyquist

    def __post_init__(self) -> None:
        if len(self.n_mels) != len(self.window_lengths):
            raise ValueError("n_mels and window_lengths must pair one-to-one")


@dataclass(frozen=True)
class STFTDistanceConfig:
    """Multi-resolution STFT distance (DAC ``MultiScaleSTFTLoss`` defaults)."""

    window_lengths: tuple[int, ...] = (2048, 512)
    clamp_eps: float = 1e-5
    pow: float = 2.0
    mag_weight: float = 1.0
    log_weight: float = 1.0


DAC_MEL = MelDistanceConfig()
DAC_STFT = STFTDistanceConfig()


def _pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Cast to float32 and crop both ``[..., T]`` signals to the shorter length."""
    if x.shape[:-1] != y.shape[:-1]:
        raise SaraError(f"signals have different channel layouts: {tuple(x.shape)} vs {tuple(y.shape)}")
    n = min(x.shape[-1], y.shape[-1])
    return x[..., :n].float(), y[..., :n].float()


def _magnitude(x: Tensor, window_length: int) -> Tensor:
    """``|STFT|`` ``[..., F, N]`` with audiotools' settings (periodic Hann, hop w/4, centred, reflect)."""
    return stft(x, window_length, window_length // 4, center=True, pad_mode="reflect").abs()


@lru_cache(maxsize=64)
def _slaney_mel(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float | None) -> Tensor:
    """librosa ``filters.mel`` defaults (Slaney scale and area norm) as ``[n_fft // 2 + 1, n_mels]``."""
    return mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, f_min, f_max, mel_scale="slaney", norm="slaney")


def mel_distance(x: Tensor, y: Tensor, sample_rate: int, config: MelDistanceConfig = DAC_MEL) -> float:
    """DAC multi-scale mel distance between reference ``x [..., T]`` and estimate ``y [..., T]``.

    Returns:
        Sum over scales of the mean L1 between log10 mel magnitudes (0 for identical signals).
    """
    x, y = _pair(x, y)
    total = 0.0
    for n_mels, win in zip(config.n_mels, config.window_lengths):
        fb = _slaney_mel(sample_rate, win, n_mels, config.f_min, config.f_max)
        mx = torch.matmul(_magnitude(x, win).transpose(-1, -2), fb)
        my = torch.matmul(_magnitude(y, win).transpose(-1, -2), fb)
        lx = mx.clamp(min=config.clamp_eps).pow(config.pow).log10()
        ly = my.clamp(min=config.clamp_eps).pow(config.pow).log10()
        total += config.log_weight * float((lx - ly).abs().mean())
        total += config.mag_weight * float((mx - my).abs().mean())
    return total


def stft_distance(x: Tensor, y: Tensor, config: STFTDistanceConfig = DAC_STFT) -> float:
    """Multi-resolution STFT distance: per scale ``L1(log10 |X|^2) + L1(|X|)``, summed over scales."""
    x, y = _pair(x, y)
    total = 0.0
    for win in config.window_lengths:
        mx, my = _magnitude(x, win), _magnitude(y, win)
        lx = mx.clamp(min=config.clamp_eps).pow(config.pow).log10()
        ly = my.clamp(min=config.clamp_eps).pow(config.pow).log10()
        total += config.log_weight * float((lx - ly).abs().mean())
        total += config.mag_weight * float((mx - my).abs().mean())
    return total


def waveform_l1(x: Tensor, y: Tensor) -> float:
    """Mean absolute sample difference (DAC's logged ``waveform/loss``)."""
    x, y = _pair(x, y)
    return float((x - y).abs().mean())


def si_sdr(reference: Tensor, estimate: Tensor, *, eps: float = 1e-8) -> float:
    """Scale-invariant SDR in dB (higher is better), mean over leading dims.

    Both signals are made zero-mean; the reference is scaled by ``<est, ref> / |ref|^2`` and
    ``SI-SDR = 10 log10(|s_target|^2 / |est - s_target|^2)``.  DAC logs the negative of this as a loss.
    """
    ref, est = _pair(reference, estimate)
    ref = (ref - ref.mean(dim=-1, keepdim=True)).double()
    est = (est - est.mean(dim=-1, keepdim=True)).double()
    scale = (est * ref).sum(-1, keepdim=True) / ((ref * ref).sum(-1, keepdim=True) + eps)
    target = scale * ref
    noise = est - target
    ratio = (target * target).sum(-1) / ((noise * noise).sum(-1) + eps)
    return float((10.0 * torch.log10(ratio + eps)).mean())


def visqol_available() -> bool:
    """True if the optional ``visqol-python`` package (import name ``visqol`` with ``VisqolApi``) is usable."""
    try:
        import visqol  # type: ignore[import-not-found]
    except ImportError:
        return False
    return hasattr(visqol, "VisqolApi")


def visqol(reference: Tensor, degraded: Tensor, sample_rate: int, *, mode: str = "audio") -> float | None:
    """ViSQOL MOS-LQO via ``visqol-python`` (None when it is not installed).

    Args:
        reference: clean signal ``[T]`` or ``[C, T]`` (averaged to mono).
        degraded: reconstruction, same layout.
        sample_rate: Hz of both; resampled here to 48 kHz (``mode="audio"``) or 16 kHz (``"speech"``), since
            the package does not resample.
        mode: ``"audio"`` or ``"speech"``.

    Returns:
        MOS-LQO in [1, 5], or None if the package is missing.
    """
    if not visqol_available():
        return None
    import visqol as vq  # type: ignore[import-not-found]

    rate = 48000 if mode == "audio" else 16000
    ref, deg = _pair(reference.reshape(-1, reference.shape[-1]).mean(0), degraded.reshape(-1, degraded.shape[-1]).mean(0))
    ref, deg = resample(ref, sample_rate, rate), resample(deg, sample_rate, rate)
    api = vq.VisqolApi()
    api.create(mode=mode)
    result = api.measure_from_arrays(ref.double().numpy(), deg.double().numpy(), rate)
    value = result["moslqo"] if isinstance(result, dict) else result.moslqo
    return float(np.asarray(value))
