"""Sampler settings of a SARA pipeline: DiT steps and ODE solver, vocoder steps, solver and time grid.

A release stores them under ``config["sampling"]`` (written by ``save_pretrained``; absent in older
releases and official directories, which then get :meth:`SamplerSettings.official`).  ``pipe.set_sampler``
changes them for every generating and editing method of the pipeline; ``pipe(...)`` also takes them per
call.  Network calls per generation (``N`` DiT steps, sway schedule): euler / dpm2m / ab2 ``N``, heun
``2N - 1``, midpoint ``2N`` (each with CFG's doubled batch); vocoder likewise per
:func:`sara.vocoder.solvers.num_calls`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sara.errors import ConfigError

__all__ = ["SamplerSettings", "vocoder_sampler_kwargs"]

MAX_STEPS = 10_000


@dataclass(frozen=True)
class SamplerSettings:
    """How a pipeline samples.

    Attributes:
        steps: DiT steps ``N`` (official 100).
        solver: DiT solver (:data:`sara.flow.solvers.SOLVERS`; official ``"euler"``).
        vocoder_steps: vocoder steps; None: the vocoder's own ``default_steps`` (200 for the paper's).
        vocoder_solver: the vocoder's solver (official ``"euler"``).
        vocoder_grid: the vocoder's time grid (:data:`sara.vocoder.solvers.GRIDS`; official ``"uniform"``).
    """

    steps: int = 100
    solver: str = "euler"
    vocoder_steps: int | None = None
    vocoder_solver: str = "euler"
    vocoder_grid: str = "uniform"

    def __post_init__(self) -> None:
        from sara.flow.solvers import check_solver
        from sara.vocoder.solvers import GRIDS

        _check_steps("steps", self.steps)
        if self.vocoder_steps is not None:
            _check_steps("vocoder_steps", self.vocoder_steps)
        check_solver(self.solver)
        check_solver(self.vocoder_solver)
        if self.vocoder_grid not in GRIDS:
            raise ConfigError(f"unknown vocoder grid {self.vocoder_grid!r}; choose from {list(GRIDS)}")

    @classmethod
    def official(cls) -> SamplerSettings:
        """The official sampler: 100 Euler steps on the sway schedule, the vocoder's Euler default."""
        return cls()

    def updated(self, **changes: Any) -> SamplerSettings:
        """A copy with the non-None ``changes`` applied (checked)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the release's ``config["sampling"]``)."""
        return {"steps": self.steps, "solver": self.solver, "vocoder_steps": self.vocoder_steps,
                "vocoder_solver": self.vocoder_solver, "vocoder_grid": self.vocoder_grid}

    @classmethod
    def from_dict(cls, data: object) -> SamplerSettings:
        """Inverse of :meth:`to_dict`; None -> :meth:`official`.  ConfigError on bad entries."""
        if data is None:
            return cls.official()
        from sara.serialization import config_from_dict

        return config_from_dict(cls, data)


def vocoder_sampler_kwargs(solver: str, grid: str) -> dict[str, str]:
    """Keyword arguments for ``vocoder.decode``: empty for the official Euler / uniform sampler (so duck-typed
    vocoders without solver options keep working), else ``{"solver": ..., "grid": ...}``."""
    return {} if (solver, grid) == ("euler", "uniform") else {"solver": solver, "grid": grid}


def _check_steps(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_STEPS:
        raise ConfigError(f"{name} must be an integer in [1, {MAX_STEPS}], got {value!r}")
