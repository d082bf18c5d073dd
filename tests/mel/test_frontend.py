"""Parity of the Tango/AudioLDM mel front end with the formulas, an independent conv1d STFT and golden values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sara.errors import AudioError
from sara.mel.frontend import (
    MelConfig,
    MelFrontend,
    log_mel,
    pad_frames,
    prepare_waveform,
    slaney_mel_filterbank,
    tango_log_mel,
)

# ------------------------------------------------------------------ independent reference computations


def _slaney_hz_to_mel(f: np.ndarray) -> np.ndarray:
    """The Slaney scale as written in Slaney's Auditory Toolbox: linear f / (200/3) below 1 kHz, log above."""
    f = np.asarray(f, dtype=np.float64)
    linear = f / (200.0 / 3.0)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, linear)


def _slaney_mel_to_hz(m: np.ndarray) -> np.ndarray:
    linear = m * (200.0 / 3.0)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log, linear)


def _reference_filterbank(sr: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """Triangles written bin by bin with explicit loops, area-normalised by 2 / (f_hi - f_lo)."""
    freqs = np.arange(n_fft // 2 + 1) * (sr / n_fft)
    corners = _slaney_mel_to_hz(np.linspace(_slaney_hz_to_mel(f_min), _slaney_hz_to_mel(f_max), n_mels + 2))
    out = np.zeros((n_mels, freqs.size))
    for i in range(n_mels):
        lo, mid, hi = corners[i], corners[i + 1], corners[i + 2]
        for k, f in enumerate(freqs):
            if lo < f <= mid:
                out[i, k] = (f - lo) / (mid - lo)
            elif mid < f < hi:
                out[i, k] = (hi - f) / (hi - mid)
        out[i] *= 2.0 / (hi - lo)
    return out


def _conv_basis_log_mel(wav: np.ndarray, cfg: MelConfig, basis: np.ndarray) -> np.ndarray:
    """Tango's TacotronSTFT path: a windowed Fourier basis [2 * (n_fft/2 + 1), 1, n_fft] applied by conv1d."""
    n = cfg.n_fft
    fourier = np.fft.fft(np.eye(n))
    cutoff = n // 2 + 1
    rows = np.vstack([np.real(fourier[:cutoff]), np.imag(fourier[:cutoff])])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # scipy get_window("hann", n, fftbins=True)
    kernel = torch.from_numpy(rows * window)[:, None, :]
    x = torch.from_numpy(wav)[:, None, :]
    x = F.pad(x, (n // 2, n // 2), mode="reflect")
    out = F.conv1d(x, kernel, stride=cfg.hop_length)
    magnitude = torch.sqrt(out[:, :cutoff] ** 2 + out[:, cutoff:] ** 2)
    mel = torch.from_numpy(basis) @ magnitude
    return torch.log(torch.clamp(mel, min=cfg.log_floor)).transpose(1, 2).numpy()


def _tango_prepare(wav: np.ndarray, segment: int) -> np.ndarray:
    """Tango's read_wav_file for a 16 kHz mono waveform, step by step (normalize_wav, pad_wav, renormalise, clip)."""
    wav = wav - wav.mean()
    wav = wav / (np.abs(wav).max() + 1e-8) * 0.5
    wav = wav[:segment] if wav.size >= segment else np.concatenate([wav, np.zeros(segment - wav.size)])
    wav = wav / np.abs(wav).max() * 0.5
    return np.clip(wav, -1, 1)


# ------------------------------------------------------------------ filterbank


def test_filterbank_matches_the_formulas_for_the_paper_shape() -> None:
    fb = slaney_mel_filterbank(16000, 1024, 64, 0.0, 8000.0)
    assert fb.shape == (64, 513) and fb.dtype == torch.float32
    np.testing.assert_allclose(fb.double().numpy(), _reference_filterbank(16000, 1024, 64, 0.0, 8000.0), atol=1e-9)


def test_filterbank_matches_sara_dsp_torchaudio_semantics_on_other_ranges() -> None:
    from sara.audio.dsp import mel_filterbank

    ours = slaney_mel_filterbank(22050, 512, 40, 50.0, 9000.0)
    other = mel_filterbank(257, 40, 22050, 50.0, 9000.0, mel_scale="slaney", norm="slaney").T
    assert torch.allclose(ours, other, atol=1e-7)


def test_slaney_scale_is_linear_below_1khz_and_log_above() -> None:
    # The 1 kHz corner is mel 15; below it corners are evenly spaced in Hz (step (200/3) * mel step).
    fb = slaney_mel_filterbank(16000, 1024, 64, 0.0, 8000.0).double()
    mel_step = _slaney_hz_to_mel(8000.0) / 65
    centres = _slaney_mel_to_hz(mel_step * np.arange(1, 65))
    low = centres[centres < 1000]
    assert np.allclose(np.diff(low), (200.0 / 3.0) * mel_step)
    high = centres[centres > 1000]
    assert np.allclose(np.diff(np.log(high)), (np.log(6.4) / 27.0) * mel_step)
    assert torch.all(fb >= 0) and torch.all(fb.sum(dim=1) > 0)  # no empty filter at this resolution


def test_filterbank_golden_values() -> None:
    fb = slaney_mel_filterbank(16000, 1024, 64, 0.0, 8000.0).double()
    # Mel step = hz_to_mel(8000) / 65 = 0.696 mel = 46.4 Hz, so filter 0 has corners 0, 46.4, 92.8 Hz; its
    # largest weight is at bin 3 (46.875 Hz), just past the apex: (92.8 - 46.875) / 46.4 * 2 / 92.8.
    assert math.isclose(float(fb[0].max()), 0.0213312, rel_tol=1e-5) and int(fb[0].argmax()) == 3
    assert int(fb[32].argmax()) == 111 and int(fb[63].argmax()) == 488  # 1734 Hz and 7625 Hz
    # Unit-area triangles sampled every 15.625 Hz sum to 1 / 15.625 each: 64 / 15.625 = 4.096 in all.
    assert math.isclose(float(fb.sum()), 4.096, rel_tol=1e-3)


# ------------------------------------------------------------------ STFT / log-mel


def test_log_mel_equals_the_conv_basis_stft() -> None:
    cfg = MelConfig()
    gen = torch.Generator().manual_seed(0)
    wav = (torch.rand(2, 8000, generator=gen, dtype=torch.float64) - 0.5) * 0.8
    ours = log_mel(wav, cfg)
    assert ours.shape == (2, 8000 // 160 + 1, 64)
    basis = _reference_filterbank(16000, 1024, 64, 0.0, 8000.0)
    ref = _conv_basis_log_mel(wav.numpy(), cfg, basis)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-6)


def test_log_mel_of_a_bin_centred_sine_is_the_analytic_value() -> None:
    # A 1 kHz sine of amplitude 0.5 sits exactly on bin 64; a periodic Hann of length N gives magnitudes
    # 0.5 * N / 4 on that bin, 0.5 * N / 8 on bins 63 and 65, and 0 elsewhere (away from the padded edges).
    t = torch.arange(16000, dtype=torch.float64) / 16000
    mel = log_mel(0.5 * torch.sin(2 * math.pi * 1000 * t)[None])
    basis = _reference_filterbank(16000, 1024, 64, 0.0, 8000.0)
    mag = np.zeros(513)
    mag[64], mag[63], mag[65] = 128.0, 64.0, 64.0
    expected = np.log(np.maximum(basis @ mag, 1e-5))
    np.testing.assert_allclose(mel[0, 50].numpy(), expected, atol=1e-6)
    assert int(mel[0, 50].argmax()) == int(np.argmax(expected))


def test_log_floor_clamps_silence() -> None:
    mel = log_mel(torch.zeros(1, 1600))
    assert torch.all(mel == math.log(1e-5))


def test_module_equals_function_and_keeps_no_state() -> None:
    cfg = MelConfig.tiny()
    module = MelFrontend(cfg)
    wav = torch.randn(3, 4000, generator=torch.Generator().manual_seed(1)) * 0.1
    assert torch.allclose(module(wav), log_mel(wav, cfg), atol=1e-6)
    assert module(wav).shape == (3, 26, 16)
    assert module.state_dict() == {} and module.sample_rate == 16000 and module.hop_length == 160


def test_shorter_window_is_centre_padded_like_librosa_pad_center() -> None:
    cfg = MelConfig(n_fft=512, win_length=400, n_mels=32)
    wav = torch.randn(1, 3200, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.1
    window = np.zeros(512)
    window[56:456] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    spec = torch.stft(F.pad(wav, (256, 256), mode="reflect"), 512, 160, window=torch.from_numpy(window),
                      center=False, return_complex=True).abs()
    basis = torch.from_numpy(_reference_filterbank(16000, 512, 32, 0.0, 8000.0))
    ref = torch.log(torch.clamp(basis @ spec, min=1e-5)).transpose(1, 2)
    assert torch.allclose(log_mel(wav, cfg), ref, atol=1e-8)


# ------------------------------------------------------------------ waveform preparation


def test_prepare_waveform_matches_tango_read_wav_file() -> None:
    gen = torch.Generator().manual_seed(3)
    wav = torch.randn(2, 5000, generator=gen, dtype=torch.float64) * 0.3 + 0.1
    ours = prepare_waveform(wav, 16000, 40)  # 40 frames = 6400 samples: pads
    cut = prepare_waveform(wav, 16000, 20)  # 3200 samples: cuts
    for row in range(2):
        np.testing.assert_allclose(ours[row].numpy(), _tango_prepare(wav[row].numpy(), 6400), atol=1e-12)
        np.testing.assert_allclose(cut[row].numpy(), _tango_prepare(wav[row].numpy(), 3200), atol=1e-12)
    assert torch.allclose(ours.abs().amax(dim=1), torch.full((2,), 0.5, dtype=torch.float64))


def test_prepare_waveform_resamples_and_keeps_length_when_frames_is_none() -> None:
    from sara.audio.dsp import resample

    wav = torch.sin(torch.linspace(0, 200, 44100))
    out = prepare_waveform(wav, 44100, None)
    assert out.shape == (1, 16000)  # 44100 samples -> 16000 at 16 kHz = 100 whole hops
    expected = _tango_prepare(resample(wav, 44100, 16000).double().numpy(), 16000)
    np.testing.assert_allclose(out[0].double().numpy(), expected, atol=1e-6)
    assert prepare_waveform(torch.ones(1, 1601) * 0.1 + torch.arange(1601) * 1e-4, 16000, None).shape == (1, 1760)


def test_silence_stays_zero_without_nans() -> None:
    out = prepare_waveform(torch.zeros(2, 3000), 16000, 30)
    assert out.shape == (2, 4800) and torch.all(out == 0)


@pytest.mark.parametrize(
    "bad",
    [torch.zeros(0), torch.zeros(2, 0), torch.tensor([0.0, float("nan")] * 600),
     torch.tensor([float("inf")] * 1000), torch.zeros(1, 1, 1000)],
)
def test_bad_audio_raises_audio_error(bad: torch.Tensor) -> None:
    with pytest.raises(AudioError):
        prepare_waveform(bad, 16000, 10)
    with pytest.raises(AudioError):
        log_mel(bad)


def test_too_short_for_reflect_padding_raises_audio_error() -> None:
    with pytest.raises(AudioError, match="too short"):
        log_mel(torch.zeros(1, 400))


def test_tango_log_mel_shapes_for_any_rate() -> None:
    wav = torch.randn(2, 22050 * 3, generator=torch.Generator().manual_seed(4)) * 0.1
    mel = tango_log_mel(wav, 22050)
    assert mel.shape == (2, 1024, 64)
    # Tango pads the *waveform* with zeros to 10.24 s, so frames past the audio are the log floor.
    assert torch.all(mel[:, 400:] == math.log(1e-5))
    assert tango_log_mel(wav, 22050, frames=256, cfg=MelConfig.tiny()).shape == (2, 256, 16)
    module = MelFrontend(MelConfig.tiny())
    assert torch.equal(module.tango(wav, 22050, 256), tango_log_mel(wav, 22050, 256, MelConfig.tiny()))


def test_tango_log_mel_equals_the_reference_wav_to_fbank() -> None:
    # Tango's whole wav_to_fbank for a 16 kHz clip: read_wav_file, conv-basis STFT, slaney mel, log, _pad_spec.
    wav = torch.randn(1, 7000, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 0.2 + 0.05
    ours = tango_log_mel(wav, 16000, frames=64)
    prepared = _tango_prepare(wav[0].numpy(), 64 * 160)[None]
    ref = _conv_basis_log_mel(prepared, MelConfig(), _reference_filterbank(16000, 1024, 64, 0.0, 8000.0))[:, :64]
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-6)


def test_pad_frames_pads_with_zero_and_cuts() -> None:
    mel = torch.ones(1, 5, 4)
    assert torch.equal(pad_frames(mel, 7)[:, 5:], torch.zeros(1, 2, 4))
    assert pad_frames(mel, 3).shape == (1, 3, 4)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="n_mels must be even"):
        MelConfig(n_mels=63)
    with pytest.raises(ValueError, match="f_max"):
        MelConfig(f_max=9000.0)
    with pytest.raises(ValueError, match="win_length"):
        MelConfig(win_length=2048)
    assert MelConfig.paper() == MelConfig() and MelConfig.tiny().n_mels == 16
    assert MelConfig().num_frames(163840) == 1025
