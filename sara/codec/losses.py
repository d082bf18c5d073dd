"""EnCodec training losses as audiocraft's compression solver defines them.

* :class:`MultiScaleMelLoss` -- audiocraft ``losses/specloss.py`` ``MultiScaleMelSpectrogramLoss`` with the
  solver's ``msspec`` settings (``config/solver/compression/default.yaml``): FFT sizes ``2**6 .. 2**10``,
  hop ``n_fft / 4``, 64 HTK mel bands from 64 Hz to Nyquist, window-normalised power spectrograms, per scale
  ``L1(mel) + MSE(log10(1e-5 + mel))`` (``alphas: false``), divided by the number of terms (``normalized``).
  Each spectrogram is computed uncentred after ``(n_fft - hop) // 2`` reflect padding on both sides and
  right zeros so every frame is full (``ceil(T / hop)`` frames).
* hinge adversarial losses and L1 feature matching (``adversarial/losses.py``), each normalised by the
  number of sub-discriminators (feature matching also by the number of feature maps).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sara.audio.dsp import hann_window, mel_filterbank
from sara.codec.conv import extra_padding_for_conv1d

__all__ = ["MultiScaleMelLoss", "discriminator_hinge_loss", "feature_matching_loss", "generator_hinge_loss",
           "mel_power_spectrogram"]

Scores = list[Tensor]
Features = list[list[Tensor]]


def mel_power_spectrogram(x: Tensor, n_fft: int, hop: int, window: Tensor, fb: Tensor) -> Tensor:
    """audiocraft ``MelSpectrogramWrapper`` (before the log) of ``x [B, C, T]`` -> ``[B, C * n_mels, ceil(T / hop)]``.

    Args:
        window: periodic Hann ``[n_fft]``; the STFT is divided by ``sqrt(sum(window ** 2))`` (torchaudio
            ``normalized=True``).
        fb: mel filterbank ``[n_fft // 2 + 1, n_mels]``.
    """
    p = (n_fft - hop) // 2
    x = F.pad(x, (p, p), "reflect")
    x = F.pad(x, (0, extra_padding_for_conv1d(x.shape[-1], n_fft, hop)))
    b, c, t = x.shape
    spec = torch.stft(x.reshape(b * c, t), n_fft, hop, n_fft, window, center=False, return_complex=True)
    power = (spec.abs() / window.pow(2).sum().sqrt()).pow(2)  # [B*C, F, N]
    mel = torch.matmul(power.transpose(1, 2), fb).transpose(1, 2)
    return mel.reshape(b, c * mel.shape[1], mel.shape[2])


class MultiScaleMelLoss(nn.Module):
    """audiocraft's ``msspec`` loss between ``pred`` and ``ref`` ``[B, C, T]`` (see the module docstring).

    Windows and filterbanks are non-persistent buffers rebuilt from the arguments.
    """

    def __init__(self, sample_rate: int, range_start: int = 6, range_end: int = 11, n_mels: int = 64,
                 f_min: float = 64.0, f_max: float | None = None, floor_level: float = 1e-5) -> None:
        super().__init__()
        self.n_ffts = [2**i for i in range(range_start, range_end)]
        self.floor_level = floor_level
        for n_fft in self.n_ffts:
            self.register_buffer(f"window_{n_fft}", hann_window(n_fft), persistent=False)
            fb = mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, f_min, f_max)
            self.register_buffer(f"fb_{n_fft}", fb, persistent=False)

    def forward(self, pred: Tensor, ref: Tensor) -> Tensor:
        """Scalar loss (float32 even under autocast)."""
        total = pred.new_zeros((), dtype=torch.float32)
        for n_fft in self.n_ffts:
            window, fb = getattr(self, f"window_{n_fft}"), getattr(self, f"fb_{n_fft}")
            a = mel_power_spectrogram(pred.float(), n_fft, n_fft // 4, window, fb)
            b = mel_power_spectrogram(ref.float(), n_fft, n_fft // 4, window, fb)
            log_a, log_b = torch.log10(self.floor_level + a), torch.log10(self.floor_level + b)
            total = total + F.l1_loss(a, b) + F.mse_loss(log_a, log_b)
        return total / (2 * len(self.n_ffts))


def discriminator_hinge_loss(real: Scores, fake: Scores) -> Tensor:
    """``mean_d [mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))]`` (audiocraft ``train_adv`` with hinge)."""
    total = sum((torch.relu(1 - r).mean() + torch.relu(1 + f).mean() for r, f in zip(real, fake)),
                start=real[0].new_zeros(()))
    return total / len(real)


def generator_hinge_loss(fake: Scores) -> Tensor:
    """``mean_d -mean(D(fake))`` (audiocraft ``hinge_loss``)."""
    return sum((-f.mean() for f in fake), start=fake[0].new_zeros(())) / len(fake)


def feature_matching_loss(real: Features, fake: Features) -> Tensor:
    """``mean_d mean_l L1(fake_l, sg(real_l))`` (audiocraft ``FeatureMatchingLoss`` with ``normalize``)."""
    total = fake[0][0].new_zeros(())
    for rs, fs in zip(real, fake):
        total = total + sum((F.l1_loss(f, r.detach()) for r, f in zip(rs, fs)), start=total.new_zeros(())) / len(fs)
    return total / len(fake)
