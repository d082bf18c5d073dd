"""Contract tests for the classifier's log-mel augmentation."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from sara.eval.augment import MelAugmentConfig, MelAugmenter, noise_waveform
from sara.eval.embedders.classifier import AudioClassifier, ClassifierConfig

OFFSET = 1e-5


def _augmenter(**kw: object) -> tuple[AudioClassifier, MelAugmenter]:
    model = AudioClassifier(ClassifierConfig.tiny())
    cfg = dataclasses.replace(MelAugmentConfig(), **kw)
    fill = torch.full((model.config.n_mels,), -3.0)
    return model, MelAugmenter(lambda w: model.log_mel(w), model.config.sample_rate, OFFSET, fill, cfg)


def _tone_mels(model: AudioClassifier, batch: int = 3) -> torch.Tensor:
    t = torch.arange(16000) / 16000
    wav = torch.stack([0.3 * torch.sin(2 * math.pi * (300 + 200 * i) * t) for i in range(batch)])
    return model.log_mel(wav)


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_noise_colour_and_level(exponent: float) -> None:
    x = noise_waveform(32000, exponent, torch.Generator().manual_seed(0))
    assert x.shape == (32000,) and torch.allclose(x.pow(2).mean(), torch.tensor(1.0), atol=1e-4)
    power = torch.fft.rfft(x).abs().pow(2)
    f = torch.arange(power.shape[0], dtype=torch.float64)
    expected = float(f[50:500].pow(-exponent).mean() / f[5000:10000].pow(-exponent).mean())  # power ~ f ** -exponent
    assert float(power[50:500].mean() / power[5000:10000].mean()) == pytest.approx(expected, rel=0.25)


def test_prob_zero_is_identity_and_shapes_hold() -> None:
    model, aug = _augmenter(prob=0.0)
    x = _tone_mels(model)
    assert torch.equal(aug(x, torch.Generator().manual_seed(0)), x)
    model, aug = _augmenter(prob=1.0)
    y = aug(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all() and not torch.equal(y, x)
    assert torch.equal(y, aug(x, torch.Generator().manual_seed(0)))  # a function of the generator


def test_noise_follows_the_snr_range() -> None:
    model, aug = _augmenter(prob=1.0, gain_db=0.0, eq_db=0.0, freq_masks=0, time_masks=0, snr_db=(20.0, 20.0))
    x = _tone_mels(model, 1)
    y = aug(x, torch.Generator().manual_seed(1))
    signal = (x.exp() - OFFSET).sum(-1).mean()
    added = ((y.exp() - OFFSET) - (x.exp() - OFFSET)).sum(-1).mean()
    assert 10 * math.log10(float(signal / added)) == pytest.approx(20.0, abs=0.5)


def test_gain_only_shifts_log_mel_by_constant() -> None:
    model, aug = _augmenter(prob=1.0, gain_db=12.0, eq_db=0.0, freq_masks=0, time_masks=0, snr_db=(200.0, 200.0))
    x = _tone_mels(model, 1)
    y = aug(x, torch.Generator().manual_seed(3))
    loud = x > x.max() - 5  # cells far above the offset: log(g p) = log g + log p
    shift = (y - x)[loud]
    assert shift.std() < 1e-3 and abs(float(shift.mean())) <= math.log(10 ** 1.2) + 1e-3


def test_masks_use_the_fill_value() -> None:
    model, aug = _augmenter(prob=1.0, gain_db=0.0, eq_db=0.0, snr_db=(200.0, 200.0), freq_masks=1,
                            freq_mask_bins=4, time_masks=1, time_mask_fraction=0.5)
    x = _tone_mels(model, 8)
    y = aug(x, torch.Generator().manual_seed(0))
    changed = (y - x).abs() > 1e-3
    assert changed.any() and torch.all(y[changed] == -3.0)
