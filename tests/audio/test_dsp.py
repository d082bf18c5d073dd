"""Parity of sara.audio.dsp with the reference formulas (independent numpy implementations)."""

import math

import numpy as np
import pytest
import torch

from sara.audio import dsp


def _ref_resample(x: np.ndarray, orig: int, new: int, lpw: int = 6, rolloff: float = 0.99) -> np.ndarray:
    """Direct windowed-sinc evaluation: y[n] = sum_m x[m] h(base * (m - n*orig/new) / orig)."""
    g = math.gcd(orig, new)
    o, nw = orig // g, new // g
    base = min(o, nw) * rolloff
    out_len = math.ceil(nw * len(x) / o)
    y = np.zeros(out_len)
    for n in range(out_len):
        centre = n * o / nw
        m = np.arange(max(0, math.floor(centre - lpw * o / base) - 1), min(len(x), math.ceil(centre + lpw * o / base) + 2))
        t = base * (m - centre) / o
        t = np.clip(t, -lpw, lpw)
        h = np.sinc(t) * np.cos(np.pi * t / (2 * lpw)) ** 2 * base / o
        y[n] = np.sum(x[m] * h)
    return y


@pytest.mark.parametrize(("orig", "new", "n"), [(24000, 16000, 301), (16000, 24000, 200), (44100, 16000, 500), (8000, 16000, 97)])
def test_resample_matches_windowed_sinc_formula(orig: int, new: int, n: int) -> None:
    x = np.random.default_rng(0).standard_normal(n)
    ours = dsp.resample(torch.from_numpy(x), orig, new).numpy()
    ref = _ref_resample(x, orig, new)
    assert ours.shape == ref.shape == (math.ceil(new // math.gcd(orig, new) * n / (orig // math.gcd(orig, new))),)
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_resample_24k_to_16k_length_and_sine() -> None:
    t = torch.arange(24000 * 2, dtype=torch.float64) / 24000
    x = torch.sin(2 * math.pi * 440 * t)
    y = dsp.resample(x, 24000, 16000)
    assert y.shape[-1] == math.ceil(2 * x.shape[-1] / 3)
    t16 = torch.arange(y.shape[-1], dtype=torch.float64) / 16000
    mid = slice(1000, -1000)
    assert torch.allclose(y[mid], torch.sin(2 * math.pi * 440 * t16)[mid], atol=2e-3)


def test_resample_batch_shape_and_float32() -> None:
    x = torch.randn(2, 3, 4800)
    y = dsp.resample(x, 24000, 16000)
    assert y.shape == (2, 3, 3200) and y.dtype == torch.float32
    y64 = dsp.resample(x.double(), 24000, 16000)
    assert torch.allclose(y.double(), y64, atol=1e-5)


def _ref_mel_fb(n_freqs: int, n_mels: int, sr: int, f_min: float, f_max: float) -> np.ndarray:
    def hz2mel(f: float) -> float:
        return 2595.0 * math.log10(1.0 + f / 700.0)

    def mel2hz(m: float) -> float:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    mels = np.linspace(hz2mel(f_min), hz2mel(f_max), n_mels + 2)
    pts = [mel2hz(m) for m in mels]
    freqs = np.linspace(0, sr // 2, n_freqs)
    fb = np.zeros((n_freqs, n_mels))
    for j in range(n_mels):
        lo, c, hi = pts[j], pts[j + 1], pts[j + 2]
        for i, f in enumerate(freqs):
            if lo <= f <= c:
                fb[i, j] = (f - lo) / (c - lo)
            elif c < f <= hi:
                fb[i, j] = (hi - f) / (hi - c)
    return fb


def test_htk_mel_filterbank_matches_formula() -> None:
    fb = dsp.mel_filterbank(257, 64, 16000, 0.0, 8000.0, dtype=torch.float64).numpy()
    np.testing.assert_allclose(fb, _ref_mel_fb(257, 64, 16000, 0.0, 8000.0), atol=1e-12)


def test_linear_filterbank_triangles() -> None:
    fb = dsp.linear_filterbank(513, 256, 24000, dtype=torch.float64)
    assert fb.shape == (513, 256)
    assert float(fb.min()) >= 0 and float(fb.max()) <= 1.0 + 1e-12
    peaks = fb.argmax(dim=0)
    assert bool((peaks[1:] >= peaks[:-1]).all())


def test_stft_matches_framed_fft() -> None:
    x = np.random.default_rng(1).standard_normal(1000)
    n_fft, hop = 64, 16
    ours = dsp.stft(torch.from_numpy(x), n_fft, hop).numpy()
    padded = np.pad(x, n_fft // 2, mode="reflect")
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    frames = 1 + len(x) // hop
    ref = np.stack([np.fft.rfft(padded[k * hop : k * hop + n_fft] * win) for k in range(frames)], axis=1)
    assert ours.shape == ref.shape == (n_fft // 2 + 1, frames)
    np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_istft_inverts_stft() -> None:
    x = torch.randn(2, 960 * 4, dtype=torch.float64)
    y = dsp.istft(dsp.stft(x, 480, 240), 480, 240)
    assert y.shape == (2, 960 * 4)
    assert torch.allclose(x, y, atol=1e-9)


def test_amplitude_to_db_formula_and_batch_quirk() -> None:
    x = torch.rand(2, 8, 10, dtype=torch.float64) * 1e-3
    x[0] *= 1e9  # item 0 is far louder: with a 3-D input the cut-off is batch-wide
    db = dsp.amplitude_to_db(x, top_db=120.0)
    ref = 10 * np.log10(np.maximum(x.numpy(), 1e-10))
    ref = np.maximum(ref, ref.max() - 120.0)
    np.testing.assert_allclose(db.numpy(), ref, atol=1e-10)
    # a 4-D input [B, 1, F, N] gets a per-item cut-off
    db4 = dsp.amplitude_to_db(x.unsqueeze(1), top_db=120.0).squeeze(1)
    ref1 = 10 * np.log10(np.maximum(x[1].numpy(), 1e-10))
    np.testing.assert_allclose(db4[1].numpy(), np.maximum(ref1, ref1.max() - 120.0), atol=1e-10)


def test_mel_spectrogram_is_power_mel() -> None:
    x = torch.randn(16000, dtype=torch.float64)
    mel = dsp.mel_spectrogram(x, 16000, 512, 160, 64, 0.0, 8000.0)
    assert mel.shape == (64, 1 + 16000 // 160)
    spec = dsp.spectrogram(x, 512, 160)
    fb = dsp.mel_filterbank(257, 64, 16000, 0.0, 8000.0, dtype=torch.float64)
    assert torch.allclose(mel, fb.T @ spec)
