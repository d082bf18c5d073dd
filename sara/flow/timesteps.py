"""Sampling schedules as pure functions (sigma = 1 is noise, 0 is data; model timesteps = sigma * 1000).

The official sampler hands ``N + 1`` "sway" sigmas ``cos(pi i / (2N))``, ``i = 0..N``, to a flow-match Euler
scheduler, which appends a terminal 0.  Hence ``N + 1`` model evaluations, the last one with a zero step
(a no-op).  :func:`sway_schedule` reproduces that sequence in float32, as the official code computes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

__all__ = ["NUM_TRAIN_TIMESTEPS", "Schedule", "linear_schedule", "make_schedule", "shifted_schedule", "sway_schedule"]

NUM_TRAIN_TIMESTEPS = 1000


@dataclass(frozen=True)
class Schedule:
    """A sampling schedule.

    Attributes:
        sigmas: ``[K + 1]`` float32 noise levels, descending, ending with the appended 0.
        timesteps: ``[K]`` float32 model timesteps ``sigmas[:-1] * 1000`` (the model truncates them).
    """

    sigmas: Tensor
    timesteps: Tensor

    @property
    def num_evals(self) -> int:
        """Model evaluations the official sampler performs (one per timestep)."""
        return int(self.timesteps.numel())


def _from_sigmas(sigmas: Tensor) -> Schedule:
    """float32 sigmas (without the terminal 0) -> :class:`Schedule` (terminal 0 appended)."""
    sigmas = sigmas.to(torch.float32)
    timesteps = sigmas * NUM_TRAIN_TIMESTEPS
    return Schedule(sigmas=torch.cat([sigmas, sigmas.new_zeros(1)]), timesteps=timesteps)


def sway_schedule(num_steps: int, coef: float = -1.0) -> Schedule:
    """Official sway schedule: ``t_i = i / N``, ``t' = t + coef (cos(pi t / 2) - 1 + t)``, ``sigma = 1 - t'``.

    With ``coef = -1`` this is ``sigma_i = cos(pi i / (2N))`` for ``i = 0..N`` (``N + 1`` values, the last
    exactly 0 in float32), followed by the appended 0.

    Args:
        num_steps: ``N >= 1``.
        coef: sway coefficient (official default -1).
    """
    _check_steps(num_steps)
    t = torch.linspace(0, 1, num_steps + 1, dtype=torch.float32)
    t = t + coef * (torch.cos(math.pi / 2 * t) - 1 + t)
    return _from_sigmas(1 - t)


def linear_schedule(num_steps: int) -> Schedule:
    """``sigma = linspace(1, 1/N, N)`` then 0 (the official fallback when sway is disabled): N evaluations."""
    _check_steps(num_steps)
    return _from_sigmas(torch.linspace(1.0, 1.0 / num_steps, num_steps, dtype=torch.float64))


def shifted_schedule(num_steps: int, shift: float = 3.0) -> Schedule:
    """Linear schedule warped by ``sigma' = shift sigma / (1 + (shift - 1) sigma)`` (more steps near noise)."""
    _check_steps(num_steps)
    if not shift > 0:
        raise ValueError("shift must be > 0")
    s = torch.linspace(1.0, 1.0 / num_steps, num_steps, dtype=torch.float64)
    return _from_sigmas(shift * s / (1 + (shift - 1) * s))


def make_schedule(kind: Literal["sway", "linear", "shifted"], num_steps: int, *, shift: float = 3.0,
                  sway_coef: float = -1.0) -> Schedule:
    """Dispatch on ``kind``; see the individual functions."""
    if kind == "sway":
        return sway_schedule(num_steps, sway_coef)
    if kind == "linear":
        return linear_schedule(num_steps)
    if kind == "shifted":
        return shifted_schedule(num_steps, shift)
    raise ValueError(f"unknown schedule {kind!r} (expected 'sway', 'linear' or 'shifted')")


def _check_steps(num_steps: int) -> None:
    if int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be an integer >= 1, got {num_steps!r}")
