"""Tango's caption-mixing augmentation: two clips mixed by sound-pressure level, captions joined "A and b".

declare-lab/tango ``tools/torch_tools.py`` (``mix_wavs_and_captions``, ``augment``) and ``tools/mix.py``: each clip
is prepared as for training (16 kHz, mean removed, peak 0.5, padded or cut to the target length); their
levels are the loudest frame of an A-weighted power spectrum (2048-sample Hann frames, hop 1024, floored at
-80 dB); the mix ratio ``r = 0.5`` is turned into a gain ``t`` so that both sources keep their relative level,
``mix = (t a + (1 - t) b) / sqrt(t^2 + (1 - t)^2)`` (the between-class mixing of Tokozume et al.); the mixture is
normalised to peak 0.5 again; the caption is ``"{caption1} and {caption2 with its first letter lower-cased}"``.
Tango normalises all mixtures of a batch by their common peak; with its batches (two clips per device, hence one
pair) that is one mixture's own peak, which is what :func:`mix_by_level` uses.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["a_weighting_db", "frame_levels_db", "mix_by_level", "mix_captions", "uncapitalize"]

_MIN_DB = -80.0


def a_weighting_db(freqs: Tensor, min_db: float = _MIN_DB) -> Tensor:
    """IEC 61672 A-weighting gain in dB (0 dB at 1 kHz, +2.0 dB offset) at ``freqs`` Hz, floored at ``min_db``.

    ``R_A(f) = 12194^2 f^4 / ((f^2 + 20.6^2) sqrt((f^2 + 107.7^2)(f^2 + 737.9^2)) (f^2 + 12194^2))``,
    ``A(f) = 20 log10 R_A(f) + 2.0``.  The DC bin is evaluated at f^2 = 1 (1 Hz), as Tango does.
    """
    f2 = freqs.double().pow(2).clamp_min(1.0)
    num = 12194.0**2 * f2.pow(2)
    den = (f2 + 20.6**2) * torch.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2)
    return (20.0 * torch.log10(num / den) + 2.0).clamp_min(min_db)


def frame_levels_db(wav: Tensor, sample_rate: int = 16000, min_db: float = _MIN_DB) -> Tensor:
    """A-weighted power per frame, in dB: ``[N] -> [frames]`` (2048-sample Hann frames, hop 1024, at 16 kHz).

    A clip shorter than one frame is zero-padded to one frame.
    """
    n_fft = 2048 if sample_rate == 16000 else 4096  # Tango supports 16 kHz and 44.1 kHz
    x = wav.double()
    if x.shape[-1] < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.shape[-1]))
    frames = x.unfold(-1, n_fft, n_fft // 2)  # [frames, n_fft]
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    power = torch.fft.rfft(frames * window).abs().pow(2)
    freqs = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1, dtype=torch.float64)
    weighted = (power * 10.0 ** (a_weighting_db(freqs, min_db) / 10.0)).sum(-1)
    return 10.0 * torch.log10(weighted.clamp_min(10.0 ** (min_db / 10.0)))


def mix_by_level(a: Tensor, b: Tensor, ratio: float = 0.5, sample_rate: int = 16000) -> Tensor:
    """Mix two prepared clips ``[N]`` by their A-weighted levels (Tango's ``mix``), then peak-normalise to 0.5.

    Args:
        a / b: ``[N]`` waveforms of equal length (e.g. :func:`sara.mel.frontend.prepare_waveform` rows).
        ratio: ``r`` in (0, 1): the perceived share of ``a`` (Tango: 0.5).
        sample_rate: Hz (16000 for the Tango front end).

    Returns:
        ``[N]`` float32 mixture with peak 0.5 (silence stays silent).
    """
    if a.shape != b.shape or a.dim() != 1:
        raise ValueError(f"mix_by_level needs two [N] waveforms of one length, got {tuple(a.shape)}, {tuple(b.shape)}")
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"ratio must be in (0, 1), got {ratio}")
    g_a, g_b = float(frame_levels_db(a, sample_rate).max()), float(frame_levels_db(b, sample_rate).max())
    t = 1.0 / (1.0 + 10.0 ** ((g_a - g_b) / 20.0) * (1.0 - ratio) / ratio)
    mixed = (a.double() * t + b.double() * (1.0 - t)) / math.sqrt(t**2 + (1.0 - t) ** 2)
    peak = float(mixed.abs().max())
    return (mixed / peak * 0.5).float() if peak > 0 else mixed.float()


def uncapitalize(text: str) -> str:
    """Lower-case the first character only (``"A dog"`` -> ``"a dog"``)."""
    return text[:1].lower() + text[1:]


def mix_captions(first: str, second: str) -> str:
    """Tango's mixed caption: ``"{first} and {uncapitalize(second)}"``."""
    return f"{first} and {uncapitalize(second)}"
