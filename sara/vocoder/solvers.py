"""ODE solvers and time grids for the waveform flow (vocoder convention: ``t`` from 0 = noise to 1 = data).

The network predicts the clean waveform ``x1`` (``pred_x1``) or the velocity ``dx/dt``.  With
``sigma = 1 - t`` this is the DiT's rectified flow, so the solvers are those of :mod:`sara.flow.solvers`
(formulas there): ``euler`` (official; with the uniform grid exactly
:func:`sara.vocoder.sampler.euler_sample`), ``heun``, ``midpoint``, and the data-prediction multistep
solvers ``dpm2m`` / ``ab2``, which use the network's ``x1`` prediction directly instead of dividing by ``1 - t``.
The network is never evaluated at ``t = 1``: the last step of every solver but ``midpoint`` uses only its start
point there (Heun falls back to Euler, the multistep solvers to their data-prediction update).

Grids (``steps + 1`` times ``0 = t_0 < ... < t_steps = 1``):

* ``uniform``: ``linspace(0, 1, steps + 1)`` (official).
* ``sway``: ``t_i = 1 - cos(pi i / (2 steps))``, the DiT's sway schedule: small steps near the noise.
* ``shifted``: ``sigma' = shift sigma / (1 + (shift - 1) sigma)`` of the uniform ``sigma = 1 - t``:
  ``shift > 1`` puts more steps near the noise (t = 0), ``shift < 1`` near the data (t = 1).
* or an explicit increasing sequence of times from 0 to 1.

Network calls for ``steps`` steps: euler, dpm2m, ab2 ``steps``; heun ``2 steps - 1``; midpoint ``2 steps``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

from sara.errors import ConfigError
from sara.flow.solvers import SOLVERS, SigmaField, SolverName, check_solver, count_calls, integrate
from sara.vocoder.sampler import PredictFn, euler_sample

__all__ = ["GRIDS", "GridName", "SOLVERS", "SolverName", "make_grid", "num_calls", "predict_field", "sample"]

GridName = Literal["uniform", "sway", "shifted"]
GRIDS: tuple[str, ...] = ("uniform", "sway", "shifted")


def make_grid(steps: int, grid: GridName | Sequence[float] | Tensor = "uniform", *, shift: float = 3.0) -> Tensor:
    """The ``steps + 1`` float32 times ``t_0 = 0 < ... < t_steps = 1`` of a sampling grid.

    Args:
        steps: number of steps (>= 1).
        grid: a grid name (module docstring) or explicit times (their count then fixes ``steps``).
        shift: the ``shifted`` grid's warp (> 0; 1 = uniform).

    Raises:
        ConfigError: bad ``steps``, unknown grid, ``shift <= 0``, or explicit times that are not increasing
            from 0 to 1.
    """
    if isinstance(grid, str):
        _check_steps(steps)
        return _named_grid(steps, grid, shift)
    times = torch.as_tensor(grid, dtype=torch.float32).flatten()
    if times.numel() < 2 or times[0] != 0 or times[-1] != 1 or not bool((times[1:] > times[:-1]).all()):
        raise ConfigError("grid: explicit times must increase strictly from 0 to 1")
    return times


def _named_grid(steps: int, grid: str, shift: float) -> Tensor:
    uniform = torch.linspace(0.0, 1.0, steps + 1)  # the official sampler's t_span
    if grid == "uniform":
        return uniform
    if grid == "sway":
        i = torch.arange(steps + 1, dtype=torch.float64)
        times = 1.0 - torch.cos(math.pi * i / (2 * steps))
    elif grid == "shifted":
        if not (isinstance(shift, (int, float)) and math.isfinite(shift) and shift > 0):
            raise ConfigError(f"shift must be a finite number > 0, got {shift!r}")
        sigma = 1.0 - uniform.double()
        times = 1.0 - shift * sigma / (1.0 + (shift - 1.0) * sigma)
    else:
        raise ConfigError(f"unknown grid {grid!r}; choose from {list(GRIDS)}")
    times[0], times[-1] = 0.0, 1.0
    return times.float()


def _check_steps(steps: object) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be an integer >= 1, got {steps!r}")


def predict_field(predict: PredictFn, *, pred_x1: bool, dtype: torch.dtype, batch: int) -> SigmaField:
    """Adapt the vocoder network to a float32 :data:`~sara.flow.solvers.SigmaField` (``sigma = 1 - t``).

    Args:
        predict: ``pred(x_t [B, L], t [B]) -> [B, L]`` (``t`` float32).
        pred_x1: the network returns ``x1`` (``dx/dsigma = (x - pred) / sigma``) or ``dx/dt``.
        dtype: the dtype the network is fed.
        batch: ``B``.
    """

    def field(x: Tensor, sigma: float) -> Tensor:
        t = torch.full((batch,), 1.0 - sigma, dtype=torch.float32, device=x.device)
        out = predict(x.to(dtype), t).float()
        return (x - out) / sigma if pred_x1 else -out

    return field


def sample(
    predict: PredictFn,
    x0: Tensor,
    steps: int,
    *,
    solver: SolverName = "euler",
    grid: GridName | Sequence[float] | Tensor = "uniform",
    shift: float = 3.0,
    pred_x1: bool = True,
    clamp: bool = True,
    callback: Callable[[int, Tensor], None] | None = None,
) -> Tensor:
    """Integrate the waveform flow from ``x0`` (t = 0) to t = 1.

    Args:
        predict: the network, ``pred(x_t [B, L], t [B]) -> [B, L]``.
        x0: scaled initial noise ``[B, L]`` (its dtype is what the network is fed).
        steps: integration steps (>= 1); calls per solver in the module docstring (:func:`num_calls`).
        solver: one of :data:`~sara.flow.solvers.SOLVERS`.
        grid: ``"uniform"`` (official), ``"sway"``, ``"shifted"`` or explicit times (then ``steps`` must equal
            their number of intervals).
        shift: warp of the ``shifted`` grid.
        pred_x1: ``predict`` returns the clean signal (True) or the velocity ``dx/dt``.
        clamp: clamp the result to [-1, 1].
        callback: ``callback(step, x)`` after every step.

    Returns:
        ``[B, L]`` float32 sample at t = 1; ``solver="euler"`` with the uniform grid is bitwise
        :func:`~sara.vocoder.sampler.euler_sample` (then in ``x0``'s dtype, as that function returns).

    Raises:
        ConfigError: unknown solver or grid, bad ``steps``, or explicit times whose count disagrees with it.
    """
    check_solver(solver)
    if solver == "euler" and isinstance(grid, str) and grid == "uniform":
        _check_steps(steps)
        return euler_sample(predict, x0, steps, pred_x1=pred_x1, clamp=clamp, callback=callback)
    times = make_grid(steps, grid, shift=shift)
    if times.numel() != steps + 1:
        raise ConfigError(f"grid has {times.numel() - 1} steps but steps={steps}")
    field = predict_field(predict, pred_x1=pred_x1, dtype=x0.dtype, batch=x0.shape[0])
    x = integrate(field, x0, [1.0 - float(t) for t in times], solver, callback=callback)
    return x.clamp(-1.0, 1.0) if clamp else x


def num_calls(solver: SolverName, steps: int) -> int:
    """Network evaluations of :func:`sample` for ``steps`` steps on any grid."""
    _check_steps(steps)
    return count_calls(solver, [1.0 - k / steps for k in range(steps + 1)])
