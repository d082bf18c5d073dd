"""Resolved sampling settings shared by the editing and long-form methods."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sara.errors import ConfigError

__all__ = ["EditSettings", "FRAME_RATE"]

FRAME_RATE = 25.0  # latent frames per second


@dataclass(frozen=True)
class EditSettings:
    """Checked settings, in frames where the algorithms need frames.

    Attributes:
        steps: DiT sampling steps for a full-strength window.
        guidance_scale: CFG scale (on iff > 1).
        negative_prompt: caption of the unconditional branch, or None (zeros, official).
        vocoder_steps: vocoder Euler steps.
        window: frames per DiT window (the DiT's trained length by default).
        overlap: frames each window shares with the previous one.
        blend: held frames of the previous window partly regenerated at each join.
        schedule: sigma schedule name ('sway', 'linear', 'shifted').
        solver: DiT ODE solver (:data:`sara.flow.solvers.SOLVERS`; 'euler' is the official sampler).
        vocoder_solver, vocoder_grid: the vocoder's solver and time grid (:mod:`sara.vocoder.solvers`).
    """

    steps: int
    guidance_scale: float
    negative_prompt: str | None
    vocoder_steps: int
    window: int
    overlap: int
    blend: int
    schedule: str = "sway"
    solver: str = "euler"
    vocoder_solver: str = "euler"
    vocoder_grid: str = "uniform"


def seconds_to_frames(seconds: float, name: str) -> int:
    """``seconds`` (finite, >= 0) as a whole number of 25 Hz frames."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds < 0:
        raise ConfigError(f"{name} must be a finite number of seconds >= 0, got {seconds!r}")
    return round(seconds * FRAME_RATE)


def check_window(window: int, overlap: int, blend: int) -> None:
    """``window > overlap >= blend >= 0`` (frames), else ConfigError."""
    if not window > overlap:
        raise ConfigError(f"the overlap ({overlap / FRAME_RATE:g} s) must be shorter than the window "
                          f"({window / FRAME_RATE:g} s)")
    if blend > overlap:
        raise ConfigError(f"blend ({blend / FRAME_RATE:g} s) cannot exceed the overlap ({overlap / FRAME_RATE:g} s)")
