"""Tango's caption-mixing augmentation: A-weighting, level-balanced mixing, "A and b" captions."""

import math

import pytest
import torch

from sara.ldm.mixing import a_weighting_db, frame_levels_db, mix_by_level, mix_captions, uncapitalize


def test_a_weighting_matches_the_standard_table() -> None:
    # IEC 61672-1 nominal A-weighting (dB) at 100 Hz, 1 kHz, 10 kHz
    got = a_weighting_db(torch.tensor([100.0, 1000.0, 10000.0]))
    torch.testing.assert_close(got, torch.tensor([-19.1, 0.0, -2.5], dtype=torch.float64), atol=0.06, rtol=0)
    assert float(a_weighting_db(torch.tensor([0.0]))) == -80.0  # DC: floored


def _tone(freq: float, amp: float, n: int = 16000) -> torch.Tensor:
    return amp * torch.sin(2 * math.pi * freq * torch.arange(n) / 16000)


def _amplitude(x: torch.Tensor, freq: float) -> float:
    spec = torch.fft.rfft(x.double()) / (len(x) / 2)
    return float(spec.abs()[int(freq * len(x) / 16000)])


def test_a_source_20_db_quieter_is_brought_level_with_the_other() -> None:
    loud, quiet = _tone(1000, 0.5), _tone(1500, 0.05)
    gap = float(frame_levels_db(loud).max() - frame_levels_db(quiet).max())
    assert gap == pytest.approx(20.0 + float(a_weighting_db(torch.tensor([1000.0])) - a_weighting_db(
        torch.tensor([1500.0]))), abs=0.2)
    mixed = mix_by_level(loud, quiet)
    assert float(mixed.abs().max()) == pytest.approx(0.5, abs=1e-6)
    a, b = _amplitude(mixed, 1000), _amplitude(mixed, 1500)
    level_a = 20 * math.log10(a) + float(a_weighting_db(torch.tensor([1000.0])))
    level_b = 20 * math.log10(b) + float(a_weighting_db(torch.tensor([1500.0])))
    assert level_a == pytest.approx(level_b, abs=0.3)  # r = 0.5: equal perceived (A-weighted) levels
    assert mix_by_level(loud, quiet, ratio=0.9).dot(loud) > mixed.dot(loud)


def test_mixing_edge_cases() -> None:
    silent = torch.zeros(16000)
    assert torch.equal(mix_by_level(silent, silent), silent)
    short = mix_by_level(_tone(440, 0.3, 500), _tone(880, 0.3, 500))  # shorter than one 2048-sample frame
    assert short.shape == (500,) and torch.isfinite(short).all()
    with pytest.raises(ValueError, match="one length"):
        mix_by_level(torch.zeros(10), torch.zeros(11))


def test_captions() -> None:
    assert mix_captions("A dog barks", "Rain falls") == "A dog barks and rain falls"
    assert uncapitalize("") == "" and uncapitalize("NASA launch") == "nASA launch"
