"""Higher-order ODE solvers for rectified-flow sampling (DiT convention; the vocoder wraps the same core).

Notation: ``sigma`` is the noise level (1 = noise, 0 = data), ``x_sigma = (1 - sigma) x_data + sigma noise``,
the network gives ``v = dx/dsigma`` (noise - data) and the data prediction is ``D = x - sigma v``.  A step goes
from ``s`` to ``s'`` (``h = s' - s < 0``), with ``r = s' / s``.

* ``euler``: ``x' = x + h v(x, s)`` (the official sampler; :func:`sara.flow.sampling.euler_sample`).  For
  rectified flow this is also DDIM / DPM-Solver-1: ``x' = r x + (1 - r) D``.  One call per step.
* ``heun``: trapezoidal rule ``x' = x + h/2 (v(x, s) + v(x + h v, s'))``; an Euler step when ``s' = 0`` (as in
  EDM, Karras et al. 2022), so ``2 K - 1`` calls for ``K`` steps ending at 0.  Second order.
* ``midpoint``: ``x' = x + h v(x + h/2 v(x, s), s + h/2)``; two calls per step (never evaluated at ``s = 0``).
* ``dpm2m``: DPM-Solver++(2M) (Lu et al. 2022, arXiv:2211.01095) with ``alpha = 1 - sigma`` and
  ``lambda = log(alpha / sigma)``: ``x' = r x + (1 - r) D_eff``, ``D_eff = (1 + 1/(2q)) D_i - 1/(2q) D_{i-1}``
  with ``q = (lambda_i - lambda_{i-1}) / (lambda_{i+1} - lambda_i)``.  First order where ``lambda`` is
  infinite: the first two steps when the schedule starts at ``sigma = 1`` and the final step to ``sigma = 0``
  (diffusers' ``lower_order_final``).  One call per step.
* ``ab2``: exponential Adams-Bashforth-2 in the data prediction with ``D`` linear in ``sigma`` (the
  ``tAB``-DEIS construction of Zhang & Chen 2022, arXiv:2204.13902, here for rectified flow).  Integrating
  ``d(x / sigma)/dsigma = -D / sigma^2`` exactly for ``D(u) = D_i + k (u - s)``,
  ``k = (D_i - D_{i-1}) / (s - s_{i-1})``::

      x' = r x + (1 - r) D_i + k (s' log(s / s') + s' - s)        (-> D_i - k s  at s' = 0)

  so, unlike ``dpm2m``, it stays second order on the final step to ``sigma = 0`` (there it extrapolates ``D``
  linearly to ``sigma = 0``).  One call per step.  First order on the first step and on steps more than
  :data:`MAX_STEP_RATIO` times longer than the previous one (the sway schedule's second step), where a linear
  extrapolation of ``D`` is unstable.

All solvers keep the state in float32 whatever the network's dtype (its output is cast to float32) and skip
zero-length steps (the sway schedule's appended no-op) without a network call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

from sara.errors import ConfigError
from sara.flow.sampling import VelocityFn, euler_sample
from sara.flow.timesteps import NUM_TRAIN_TIMESTEPS, Schedule

__all__ = ["SOLVERS", "HoldFn", "SigmaField", "SolverName", "count_calls", "integrate", "num_calls", "sample",
           "steps_for_calls", "velocity_field"]

SolverName = Literal["euler", "heun", "midpoint", "dpm2m", "ab2"]
# ab2 falls back to its first-order update on a step more than this many times longer than the previous one.
# The sway schedule's second step is ~3x its first: extrapolating the data prediction from the first, tiny
# step that far made 6-12-step runs of the demo DiT diverge (relative L2 to the reference 1.42 at 6 calls vs
# 0.33 with the fallback, 0.71 vs 0.19 at 12); from 16 calls on the fallback costs ~20 % of the error.
MAX_STEP_RATIO = 2.0
SOLVERS: tuple[str, ...] = ("euler", "heun", "midpoint", "dpm2m", "ab2")

# field(x [B, ...] float32, sigma) -> dx/dsigma [B, ...] float32
SigmaField = Callable[[Tensor, float], Tensor]
StepCallback = Callable[[int, Tensor], None]
# hold(x [B, ...] float32, sigma) -> x with its held (known) entries reset to sigma's noise level
HoldFn = Callable[[Tensor, float], Tensor]


def check_solver(solver: object) -> SolverName:
    """``solver`` if it names a solver in :data:`SOLVERS`; ConfigError otherwise."""
    if solver not in SOLVERS:
        raise ConfigError(f"unknown solver {solver!r}; choose from {list(SOLVERS)}")
    return solver  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- core

def integrate(field: SigmaField, x: Tensor, sigmas: Sequence[float], solver: SolverName, *,
              callback: StepCallback | None = None, hold: HoldFn | None = None) -> Tensor:
    """Integrate ``dx/dsigma = field(x, sigma)`` along the descending ``sigmas`` with ``solver``.

    Args:
        field: the velocity in the sigma convention (float32 in, float32 out).
        x: ``[B, ...]`` state at ``sigmas[0]`` (cast to float32).
        sigmas: ``K + 1`` non-increasing noise levels in [0, 1] (``K`` steps; equal neighbours are skipped).
        solver: one of :data:`SOLVERS` (see the module docstring for the formulas).
        callback: ``callback(i, x)`` after step ``i`` (also for skipped zero-length steps).
        hold: applied to the state at the start of every step (``x <- hold(x, s)``: the replace-known-region
            scheme of editing, :mod:`sara.edit.sampler`); None holds nothing.

    Returns:
        ``[B, ...]`` float32 state at ``sigmas[-1]``.
    """
    stepper = _STEPPERS[check_solver(solver)]
    return stepper(field, x.float(), [float(s) for s in sigmas], callback, hold or _no_hold)


def _no_hold(x: Tensor, _sigma: float) -> Tensor:
    return x


def count_calls(solver: SolverName, sigmas: Sequence[float]) -> int:
    """Network evaluations :func:`integrate` makes on ``sigmas`` (see the module docstring)."""
    steps = [(float(s), float(n)) for s, n in zip(sigmas[:-1], sigmas[1:]) if float(n) != float(s)]
    if check_solver(solver) == "heun":
        return sum(1 if n == 0 else 2 for _, n in steps)
    return 2 * len(steps) if solver == "midpoint" else len(steps)


def _pairs(sigmas: list[float]) -> list[tuple[float, float]]:
    return list(zip(sigmas[:-1], sigmas[1:]))


def _notify(callback: StepCallback | None, i: int, x: Tensor) -> None:
    if callback is not None:
        callback(i, x)


def _euler(field: SigmaField, x: Tensor, sigmas: list[float], callback: StepCallback | None,
           hold: HoldFn) -> Tensor:
    """``x' = x + h v(x, s)``."""
    for i, (s, s_next) in enumerate(_pairs(sigmas)):
        if s_next != s:
            x = hold(x, s)
            x = x + (s_next - s) * field(x, s)
        _notify(callback, i, x)
    return x


def _heun(field: SigmaField, x: Tensor, sigmas: list[float], callback: StepCallback | None,
          hold: HoldFn) -> Tensor:
    """Trapezoidal predictor-corrector; a plain Euler step into ``sigma = 0``."""
    for i, (s, s_next) in enumerate(_pairs(sigmas)):
        if s_next != s:
            h, x = s_next - s, hold(x, s)
            v = field(x, s)
            x_euler = x + h * v
            x = x_euler if s_next == 0 else x + (0.5 * h) * (v + field(x_euler, s_next))
        _notify(callback, i, x)
    return x


def _midpoint(field: SigmaField, x: Tensor, sigmas: list[float], callback: StepCallback | None,
              hold: HoldFn) -> Tensor:
    """Explicit midpoint rule: slope at ``s + h/2`` from a half Euler step."""
    for i, (s, s_next) in enumerate(_pairs(sigmas)):
        if s_next != s:
            h, x = s_next - s, hold(x, s)
            x_half = x + (0.5 * h) * field(x, s)
            x = x + h * field(x_half, s + 0.5 * h)
        _notify(callback, i, x)
    return x


def _log_snr(sigma: float) -> float:
    """``lambda = log((1 - sigma) / sigma)`` (+-inf at the ends)."""
    if sigma <= 0:
        return math.inf
    return -math.inf if sigma >= 1 else math.log((1.0 - sigma) / sigma)


def _dpm2m_step(x: Tensor, d: Tensor, s: float, s_next: float, prev: tuple[float, Tensor] | None) -> Tensor:
    """One DPM-Solver++(2M) step from ``(s, D_i)`` given the previous ``(s_{i-1}, D_{i-1})``."""
    if prev is not None:
        h, h_prev = _log_snr(s_next) - _log_snr(s), _log_snr(s) - _log_snr(prev[0])
        if math.isfinite(h) and math.isfinite(h_prev):
            d = d + (0.5 * h / h_prev) * (d - prev[1])
    r = s_next / s
    return r * x + (1.0 - r) * d


def _ab2_step(x: Tensor, d: Tensor, s: float, s_next: float, prev: tuple[float, Tensor] | None) -> Tensor:
    """One exponential AB2 step with ``D`` linear in sigma (exact integral of the linear interpolant)."""
    r = s_next / s
    out = r * x + (1.0 - r) * d
    if prev is None or s - s_next > MAX_STEP_RATIO * (prev[0] - s):
        return out
    slope = (d - prev[1]) / (s - prev[0])
    weight = s_next * math.log(s / s_next) + s_next - s if s_next > 0 else -s
    return out + weight * slope


def _multistep(step: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """A two-step data-prediction solver from its step rule (one call per step, history of one ``D``)."""

    def run(field: SigmaField, x: Tensor, sigmas: list[float], callback: StepCallback | None,
            hold: HoldFn) -> Tensor:
        prev: tuple[float, Tensor] | None = None
        for i, (s, s_next) in enumerate(_pairs(sigmas)):
            if s_next != s:
                x = hold(x, s)
                d = x - s * field(x, s)
                x = step(x, d, s, s_next, prev)
                prev = (s, d)
            _notify(callback, i, x)
        return x

    return run


_STEPPERS: dict[str, Callable[..., Tensor]] = {
    "euler": _euler, "heun": _heun, "midpoint": _midpoint,
    "dpm2m": _multistep(_dpm2m_step), "ab2": _multistep(_ab2_step),
}


# ------------------------------------------------------------------------------------- DiT convention

def velocity_field(velocity: VelocityFn, dtype: torch.dtype) -> SigmaField:
    """Adapt a DiT velocity function (``t = sigma * 1000``, 0-dim float32) to a float32 :data:`SigmaField`.

    Args:
        velocity: ``velocity(x [B, C, T], t) -> v [B, C, T]`` (e.g. :func:`~sara.flow.sampling.cfg_velocity`).
        dtype: the dtype the network is fed (the caller's ``x`` dtype, as :func:`euler_sample` does).
    """

    def field(x: Tensor, sigma: float) -> Tensor:
        t = torch.tensor(sigma, dtype=torch.float32) * NUM_TRAIN_TIMESTEPS  # == Schedule.timesteps bitwise
        return velocity(x.to(dtype), t).float()

    return field


def sample(velocity: VelocityFn, x: Tensor, schedule: Schedule, solver: SolverName = "euler", *,
           skip_noop: bool = True, callback: Callable[[int], None] | None = None) -> Tensor:
    """Sample with ``solver`` from noise ``x`` at ``schedule.sigmas[0]`` down to ``sigma = 0``.

    Args:
        velocity: the (guided) velocity function, ``velocity(x [B, C, T], t) -> [B, C, T]``, ``t`` 0-dim
            float32 = ``sigma * 1000``.
        x: ``[B, C, T]`` initial noise.
        schedule: sigmas / timesteps (:mod:`sara.flow.timesteps`).  The solver runs on ``schedule.sigmas``.
        solver: ``"euler"`` (exactly :func:`~sara.flow.sampling.euler_sample`), ``"heun"``, ``"midpoint"``,
            ``"dpm2m"`` or ``"ab2"`` (formulas in the module docstring).
        skip_noop: Euler only: skip zero-length steps (the other solvers always do).
        callback: ``callback(i)`` after each of the ``schedule.num_evals`` steps (progress bars).

    Returns:
        ``[B, C, T]`` sample in ``x``'s dtype (the state is float32 throughout).

    Raises:
        ConfigError: unknown solver.
    """
    if check_solver(solver) == "euler":
        return euler_sample(velocity, x, schedule, skip_noop=skip_noop, callback=callback)
    step_callback = None if callback is None else (lambda i, _x: callback(i))
    out = integrate(velocity_field(velocity, x.dtype), x, schedule.sigmas.tolist(), solver,
                    callback=step_callback)
    return out.to(x.dtype)


def steps_for_calls(solver: SolverName, calls: int) -> int:
    """The most steps whose run ending at ``sigma = 0`` costs at most ``calls`` network calls (>= 1 step):
    heun ``(calls + 1) // 2``, midpoint ``calls // 2``, the others ``calls``."""
    if check_solver(solver) == "heun":
        return max(1, (calls + 1) // 2)
    return max(1, calls // 2) if solver == "midpoint" else max(1, calls)


def num_calls(solver: SolverName, schedule: Schedule, *, skip_noop: bool = True) -> int:
    """Network evaluations :func:`sample` makes (sway ``N`` steps: euler ``N`` (``N + 1`` without
    ``skip_noop``), heun ``2N - 1``, midpoint ``2N``, dpm2m / ab2 ``N``)."""
    if check_solver(solver) == "euler" and not skip_noop:
        return schedule.num_evals
    return count_calls(solver, schedule.sigmas.tolist())
