"""Euler sampling with held (known) latent frames and partial-strength starts, for editing and long-form.

Convention (as :mod:`sara.flow.sampling`): sigma = 1 is noise, 0 is data, ``x_sigma = (1 - sigma) x1 +
sigma x0`` for data ``x1`` and noise ``x0``, and the sampler integrates ``dx/dsigma = v`` from the
schedule's first sigma down to 0.  So an edit of ``strength`` s starts at sigma = s: s = 0 is the input
itself, s = 1 pure noise (plain generation).

Held frames use the replace-known-region scheme for flow matching: before every model evaluation the
held frames are set to the known latents moved along the *same* straight path (same noise) to the current
sigma, ``x <- m * x_sigma(known) + (1 - m) * x`` with a mask ``m`` in [0, 1]; after the last step they are set
to the known latents exactly.  Legend: ``B`` batch, ``C`` latent channels, ``T`` latent frames (25 Hz).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from sara.flow.sampling import VelocityFn
from sara.flow.timesteps import Schedule, make_schedule

__all__ = ["StepCallback", "masked_euler_sample", "masked_sample", "noisy", "partial_schedule"]

StepCallback = Callable[[int, Tensor], None]  # (step index, latents the model sees at that step [B, C, T])


def noisy(clean: Tensor, noise: Tensor, sigma: Tensor | float) -> Tensor:
    """``(1 - sigma) * clean + sigma * noise``: ``clean`` moved to noise level ``sigma`` (float32)."""
    return (1 - sigma) * clean.float() + sigma * noise.float()


def partial_schedule(kind: str, steps: int, strength: float) -> Schedule | None:
    """The ``kind`` schedule compressed into ``[0, strength]``, with ``ceil(steps * strength)`` steps.

    ``strength == 1`` returns ``make_schedule(kind, steps)`` unchanged (so a full-strength edit is plain
    generation, bit for bit); ``strength == 0`` returns None (nothing to sample).
    """
    if strength <= 0:
        return None
    if strength >= 1:
        return make_schedule(kind, steps)  # type: ignore[arg-type]
    base = make_schedule(kind, max(1, math.ceil(steps * strength - 1e-9)))  # type: ignore[arg-type]
    return Schedule(sigmas=base.sigmas * strength, timesteps=base.timesteps * strength)


def masked_euler_sample(velocity: VelocityFn, noise: Tensor, schedule: Schedule, *, init: Tensor | None = None,
                        known: Tensor | None = None, mask: Tensor | None = None, skip_noop: bool = True,
                        callback: StepCallback | None = None) -> Tensor:
    """Euler integration from ``sigmas[0]`` to 0 with optional held frames.

    Args:
        velocity: the (guided) velocity function ``(x [B, C, T], t) -> v``.
        noise: ``[B, C, T]`` standard-normal noise ``x0``.
        schedule: sigmas / timesteps; ``sigmas[0]`` is where sampling starts (1 = pure noise).
        init: ``[B, C, T]`` clean latents the start point is interpolated from (``noisy(init, noise,
            sigmas[0])``); None starts from ``noise`` (only meaningful when ``sigmas[0] == 1``).
        known: ``[B, C, T]`` clean latents of the held frames (needed when ``mask`` is given).
        mask: ``[T]`` (or broadcastable to ``[B, C, T]``) weights in [0, 1]; 1 = held to ``known``.
        skip_noop: skip evaluations with a zero step (the sway schedule's last one); same result.
        callback: called with ``(i, x)`` for the latents ``x`` the model sees at step ``i``.

    Returns:
        ``[B, C, T]`` clean latents in ``noise``'s dtype.  With ``mask`` None and ``init`` None this is
        exactly :func:`sara.flow.sampling.euler_sample`.
    """
    sigmas = schedule.sigmas.to(torch.float32)
    x = noise.float() if init is None else noisy(init, noise, sigmas[0])
    hold = None if mask is None else _holder(known, noise, mask.to(x.device, torch.float32))
    for i, t in enumerate(schedule.timesteps):
        if hold is not None:
            x = hold(x, sigmas[i])
        dt = sigmas[i + 1] - sigmas[i]
        if callback is not None:
            callback(i, x)
        if not (skip_noop and dt == 0):
            x = x + dt.to(x.device) * velocity(x.to(noise.dtype), t).float()
    if hold is not None:
        x = hold(x, sigmas[-1])
    return x.to(noise.dtype)


def masked_sample(velocity: VelocityFn, noise: Tensor, schedule: Schedule, *, solver: str = "euler",
                  init: Tensor | None = None, known: Tensor | None = None, mask: Tensor | None = None,
                  callback: StepCallback | None = None) -> Tensor:
    """:func:`masked_euler_sample` with any solver of :mod:`sara.flow.solvers` (held frames reset to their
    noisy known values at the start of every step and set to the known latents at the end).

    ``solver="euler"`` is exactly :func:`masked_euler_sample`.  For the other solvers ``callback(i, x)``
    sees the state after step ``i``.

    Returns:
        ``[B, C, T]`` clean latents in ``noise``'s dtype.
    """
    from sara.flow.solvers import check_solver, integrate, velocity_field

    if check_solver(solver) == "euler":
        return masked_euler_sample(velocity, noise, schedule, init=init, known=known, mask=mask, callback=callback)
    sigmas = schedule.sigmas.to(torch.float32)
    x = noise.float() if init is None else noisy(init, noise, sigmas[0])
    hold = None if mask is None else _holder(known, noise, mask.to(x.device, torch.float32))
    x = integrate(velocity_field(velocity, noise.dtype), x, sigmas.tolist(), solver, callback=callback, hold=hold)
    if hold is not None:
        x = hold(x, sigmas[-1])
    return x.to(noise.dtype)


def _holder(known: Tensor | None, noise: Tensor, mask: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    """``(x, sigma) -> m * noisy(known, noise, sigma) + (1 - m) * x``."""
    if known is None:
        raise ValueError("a mask needs the known latents")

    def hold(x: Tensor, sigma: Tensor) -> Tensor:
        return mask * noisy(known, noise, sigma) + (1 - mask) * x

    return hold
