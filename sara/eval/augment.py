"""Log-mel augmentation for the corpus classifier: gain, coloured background noise, a smooth random EQ
and SpecAugment masks.

A classifier trained on clean clips only learns cues that the faintest change destroys: the session-3
classifier recognised 64 % of real test clips, 60 % after adding white noise at -60 dBFS and 30 % at -40
dBFS.  An evaluation classifier (the role PANNs plays for AudioSet models) has to survive such generic
changes, so training can augment every crop with them.  None of them is derived from any generator's output.

Everything acts on the classifier's own features, ``log(mel_power + offset)``, so the clips' log-mels are
computed once:

    power = exp(x) - offset                       # [B, N, M] mel power (16 kHz, 100 Hz frames)
    power = power * gain * eq                     # gain in [-g, +g] dB, eq: smooth curve over mel bins
    power = power + s * noise_frames              # white / pink / brown noise at a random SNR to the crop
    x'    = log(power + offset), then masks       # masked cells take the per-bin training mean
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["MelAugmentConfig", "MelAugmenter", "noise_waveform"]


@dataclass(frozen=True)
class MelAugmentConfig:
    """Augmentation ranges (dB, dBFS, counts, fractions of the crop)."""

    prob: float = 0.8  # share of crops that are augmented; the rest stay clean
    gain_db: float = 12.0  # uniform in [-gain_db, +gain_db]
    snr_db: tuple[float, float] = (10.0, 60.0)  # crop power over noise power, uniform in dB
    eq_db: float = 6.0  # peak deviation of the random EQ curve
    eq_terms: int = 3  # cosine terms of the EQ curve over the mel axis
    freq_masks: int = 2
    freq_mask_bins: int = 8  # up to this many mel bins per mask
    time_masks: int = 2
    time_mask_fraction: float = 0.1  # up to this fraction of the crop per mask


def noise_waveform(num_samples: int, exponent: float, generator: torch.Generator) -> Tensor:
    """Unit-RMS noise ``[num_samples]`` with power spectrum ``~ f ** -exponent`` (0 white, 1 pink, 2 brown)."""
    white = torch.randn(num_samples, generator=generator)
    if exponent == 0:
        return white / white.pow(2).mean().sqrt()
    spec = torch.fft.rfft(white)
    f = torch.arange(spec.shape[0], dtype=torch.float32).clamp(min=1.0)
    shaped = torch.fft.irfft(spec * f.pow(-exponent / 2), n=num_samples)
    return shaped / shaped.pow(2).mean().sqrt()


class MelAugmenter:
    """Applies :class:`MelAugmentConfig` to batches of log-mels ``[B, N, M]``.

    Args:
        log_mel: the classifier's feature function, wav ``[T]`` (16 kHz) -> ``[N, M]``.
        sample_rate: rate ``log_mel`` expects (Hz).
        log_offset: the ``offset`` inside its ``log``.
        fill: per-bin value ``[M]`` for masked cells (the training mean).
        config: ranges.
        seed: seeds the noise recordings.
    """

    def __init__(self, log_mel: Callable[[Tensor], Tensor], sample_rate: int, log_offset: float, fill: Tensor,
                 config: MelAugmentConfig | None = None, seed: int = 0) -> None:
        self.config = config or MelAugmentConfig()
        self.offset = log_offset
        self.fill = fill
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # 20 s of each colour, as mel power per unit noise variance [N, M]
            self.noise = [log_mel(noise_waveform(20 * sample_rate, e, gen)).exp() - log_offset for e in (0, 1, 2)]

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        """Log-mels ``[B, N, M]`` -> augmented copy, same shape."""
        c = self.config
        b, n, m = x.shape
        out = x.clone()
        chosen = (torch.rand(b, generator=gen) < c.prob).nonzero().flatten().tolist()
        for i in chosen:
            power = (x[i].exp() - self.offset).clamp(min=0)
            power = power * self._gain_eq(m, gen)
            power = power + self._noise(n, float(power.sum(1).mean()), gen)
            out[i] = self._mask(torch.log(power + self.offset), gen)
        return out

    def _gain_eq(self, m: int, gen: torch.Generator) -> Tensor:
        """Power factor ``[M]``: uniform gain times a smooth random curve over the mel axis."""
        c = self.config
        gain_db = (2 * torch.rand(1, generator=gen) - 1) * c.gain_db
        pos = torch.linspace(0, math.pi, m)
        curve = sum(torch.randn(1, generator=gen) * torch.cos(k * pos) for k in range(1, c.eq_terms + 1))
        curve = curve / curve.abs().max().clamp(min=1e-6) * torch.rand(1, generator=gen) * c.eq_db
        return 10 ** ((gain_db + curve) / 10)

    def _noise(self, n: int, signal_power: float, gen: torch.Generator) -> Tensor:
        """Noise power ``[N, M]`` of a random colour at a random SNR to ``signal_power`` (mean frame power)."""
        lo, hi = self.config.snr_db
        snr_db = lo + (hi - lo) * float(torch.rand(1, generator=gen))
        rec = self.noise[int(torch.randint(0, len(self.noise), (1,), generator=gen))]
        scale = signal_power / float(rec.sum(1).mean()) * 10 ** (-snr_db / 10)
        reps = math.ceil(n / rec.shape[0])
        rec = rec.repeat(reps, 1) if reps > 1 else rec
        start = int(torch.randint(0, rec.shape[0] - n + 1, (1,), generator=gen))
        return rec[start:start + n] * scale

    def _mask(self, x: Tensor, gen: torch.Generator) -> Tensor:
        """SpecAugment: frequency and time bands set to the per-bin fill value."""
        c = self.config
        n, m = x.shape
        for _ in range(c.freq_masks):
            w = int(torch.randint(0, c.freq_mask_bins + 1, (1,), generator=gen))
            f0 = int(torch.randint(0, max(1, m - w + 1), (1,), generator=gen))
            x[:, f0:f0 + w] = self.fill[f0:f0 + w]
        for _ in range(c.time_masks):
            w = int(torch.randint(0, int(c.time_mask_fraction * n) + 1, (1,), generator=gen))
            t0 = int(torch.randint(0, max(1, n - w + 1), (1,), generator=gen))
            x[t0:t0 + w] = self.fill
        return x
