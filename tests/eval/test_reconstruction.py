"""DAC mel distance / STFT distance / L1 / SI-SDR on known signals, and the DAC configuration constants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import sara.eval as E
from sara.eval.metrics import reconstruction as rec


def librosa_style_slaney_mel(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """librosa.filters.mel defaults (Slaney scale + norm, fmin 0, fmax sr/2), written out in numpy: [n_mels, F]."""
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, dtype=np.float64)
        lin = f / (200.0 / 3)
        return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), lin)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * 200.0 / 3)

    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None]
    w = np.maximum(0, np.minimum(-ramps[:-2] / fdiff[:-1, None], ramps[2:] / fdiff[1:, None]))
    return w * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]


def test_dac_configuration_constants() -> None:
    c = E.DAC_MEL
    assert c.n_mels == (5, 10, 20, 40, 80, 160, 320)
    assert c.window_lengths == (32, 64, 128, 256, 512, 1024, 2048)
    assert (c.clamp_eps, c.pow, c.mag_weight, c.log_weight, c.f_min, c.f_max) == (1e-5, 1.0, 0.0, 1.0, 0.0, None)
    s = E.DAC_STFT
    assert (s.window_lengths, s.pow, s.clamp_eps, s.mag_weight, s.log_weight) == ((2048, 512), 2.0, 1e-5, 1.0, 1.0)


@pytest.mark.parametrize(("sr", "n_fft", "n_mels"), [(44100, 2048, 320), (44100, 32, 5), (22050, 512, 80)])
def test_filters_are_librosa_slaney(sr: int, n_fft: int, n_mels: int) -> None:
    got = rec._slaney_mel(sr, n_fft, n_mels, 0.0, None).double().numpy().T
    np.testing.assert_allclose(got, librosa_style_slaney_mel(sr, n_fft, n_mels), rtol=1e-5, atol=1e-9)


def test_stft_settings_periodic_hann_centred_hop_quarter() -> None:
    x = torch.randn(1000, dtype=torch.float64)
    mag = rec._magnitude(x, 64)
    assert mag.shape == (33, 1 + 1000 // 16)
    padded = np.pad(x.numpy(), 32, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(64) / 64)
    frame3 = np.abs(np.fft.rfft(padded[3 * 16: 3 * 16 + 64] * window))
    np.testing.assert_allclose(mag[:, 3].numpy(), frame3, rtol=1e-9, atol=1e-9)


def test_mel_distance_identical_is_zero_and_scale_gives_log10_per_scale() -> None:
    torch.manual_seed(0)
    x = 1000.0 * torch.randn(1, 44100)  # loud, so every mel value of x and 0.1 x is far above the 1e-5 clamp
    for m, w in zip(E.DAC_MEL.n_mels, E.DAC_MEL.window_lengths):
        mel = rec._magnitude(0.1 * x, w).transpose(-1, -2) @ rec._slaney_mel(44100, w, m, 0.0, None)
        assert float(mel.min()) > 1e-4
    assert E.mel_distance(x, x, 44100) == 0.0
    # magnitude mel is linear in the signal: log10 mel(2x) - log10 mel(x) = log10 2 in every bin of every
    # scale, so the sum over the 7 scales is 7 log10 2
    assert E.mel_distance(x, 2 * x, 44100) == pytest.approx(7 * math.log10(2), rel=1e-5)
    assert E.mel_distance(x, 0.1 * x, 44100) == pytest.approx(7.0, rel=1e-5)
    assert E.mel_distance(0.1 * x, x, 44100) == pytest.approx(7.0, rel=1e-5)


def test_mel_distance_hand_computed_silence_vs_loud() -> None:
    """Silence is clamped to 1e-5 -> log10 = -5 in every bin; compare with a closed form computed here."""
    x = torch.zeros(1, 8000)
    y = torch.ones(1, 8000)  # DC: every (reflect-padded) frame is constant
    # the periodic Hann's DFT is exactly w/2 at bin 0 and w/4 at bin 1 (zero elsewhere)
    total = 0.0
    for n_mels, w in zip(E.DAC_MEL.n_mels, E.DAC_MEL.window_lengths):
        fb = librosa_style_slaney_mel(16000, w, n_mels)  # [M, F]
        mel = fb[:, 0] * (w / 2) + fb[:, 1] * (w / 4)
        total += np.mean(np.abs(-5.0 - np.log10(np.maximum(mel, 1e-5))))
    assert E.mel_distance(x, y, 16000) == pytest.approx(total, rel=1e-4)


def test_stft_distance_and_l1() -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 16000) * 0.3
    assert E.stft_distance(x, x) == 0.0
    assert E.waveform_l1(torch.zeros(1, 100), torch.full((1, 100), 0.5)) == pytest.approx(0.5)
    # only the magnitude term changes linearly; the log term of pow 2 gives 2 log10(3) per scale
    d = E.stft_distance(x, 3 * x)
    mags = [rec._magnitude(x, w) for w in (2048, 512)]
    want = sum(2 * math.log10(3) + float((2 * m).abs().mean()) for m in mags)
    assert d == pytest.approx(want, rel=1e-4)


def test_si_sdr_known_values() -> None:
    torch.manual_seed(2)
    ref = torch.randn(16000, dtype=torch.float64)
    ref -= ref.mean()
    noise = torch.randn(16000, dtype=torch.float64)
    noise -= noise.mean()
    noise -= (noise @ ref) / (ref @ ref) * ref  # orthogonal to ref
    noise *= (ref.norm() / noise.norm()) * 0.1  # |noise| = 0.1 |ref|
    est = 0.7 * ref + noise  # SI-SDR = 10 log10(0.49 / 0.01)
    assert E.si_sdr(ref.float(), est.float()) == pytest.approx(10 * math.log10(49), abs=1e-3)
    assert E.si_sdr(ref.float(), 5 * est.float()) == pytest.approx(10 * math.log10(49), abs=1e-3)  # scale-invariant
    assert E.si_sdr(ref, ref + 3.0) > 60  # offset removed by zero-mean


@pytest.mark.skipif(not E.visqol_available(), reason="visqol-python not installed")
def test_visqol_identical_is_high() -> None:
    torch.manual_seed(0)
    t = torch.arange(48000) / 48000
    x = (0.3 * torch.sin(2 * math.pi * 440 * t) + 0.05 * torch.randn(48000)).float()
    assert E.visqol(x, x, 48000) > 4.0
