"""Prompt schedules and the seam statistic."""

from __future__ import annotations

import math

import pytest
import torch

from sara.edit.prompts import PromptSchedule
from sara.edit.seams import latent_steps, log_spectrogram, novelty, seam_stats, spectral_flux
from sara.errors import ConfigError


def test_prompt_schedule_parse_and_lookup() -> None:
    s = PromptSchedule.parse("0:rain; 60:thunder storm")
    assert s.at(0) == "rain" and s.at(59.9) == "rain" and s.at(60) == "thunder storm" and s.at(1e6) == "thunder storm"


@pytest.mark.parametrize("text", ["", "rain", "5:rain", "0:rain;x:storm", "0:", "0:a;0:b", "0:a;-1:b"])
def test_prompt_schedule_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        PromptSchedule.parse(text)


def test_seam_statistic_sees_a_jump_and_not_a_stationary_signal() -> None:
    sr, rate = 24000, 100.0
    t = torch.arange(8 * sr) / sr
    noise = 0.1 * torch.randn(8 * sr, generator=torch.Generator().manual_seed(0))
    joins = [1.5, 2.5, 3.5, 4.5, 5.5, 6.5]
    steady = seam_stats(spectral_flux(noise, sr), rate, joins, exclude_seconds=0.2)
    assert steady.ratio == pytest.approx(1.0, rel=0.25) and steady.num_joins == 6
    jumped = noise.clone()
    jumped[4 * sr:] = 0.3 * torch.sin(2 * math.pi * 440 * t[4 * sr:])  # a different sound from 4 s on
    assert seam_stats(spectral_flux(jumped, sr), rate, [4.0]).ratio > 3.0
    z = torch.zeros(8, 100)
    z[:, 50:] = 1.0
    assert seam_stats(latent_steps(z) + 0.01, 25.0, [2.0]).ratio > 10


def test_novelty_sees_a_content_change_through_noise() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 400, generator=gen)
    x[:, 200:] += 1.0  # content changes at frame 200, hidden in frame-level noise
    nov = novelty(x, 25)
    assert nov.shape == (399,) and 50 + int(nov[50:350].argmax()) in (198, 199, 200)
    assert seam_stats(nov, 100.0, [2.0]).ratio > 2.0
    assert log_spectrogram(torch.zeros(24000), 24000).shape[0] == 513
