"""Stateless Euler sampling with classifier-free guidance (official DiT convention).

A *velocity function* maps ``(x [B, C, T], t)`` to ``v [B, C, T]`` where ``t`` is a 0-dim float32 timestep
(sigma * 1000); the sampler integrates ``dx/dsigma = v`` from sigma = 1 (noise) to 0 (data) with
``x <- x + (sigma_next - sigma) v`` in float32.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from sara.flow.timesteps import Schedule

__all__ = ["VelocityFn", "cfg_velocity", "euler_sample", "separate_cfg_velocity"]

VelocityFn = Callable[[Tensor, Tensor], Tensor]


def euler_sample(velocity: VelocityFn, x: Tensor, schedule: Schedule, *, skip_noop: bool = False,
                 callback: Callable[[int], None] | None = None) -> Tensor:
    """Integrate from ``x`` (noise at ``sigmas[0]``) down the schedule.

    Args:
        velocity: the (guided) velocity function.
        x: ``[B, C, T]`` initial noise.
        schedule: sigmas / timesteps (:mod:`sara.flow.timesteps`).
        skip_noop: skip evaluations whose step ``sigma_next - sigma`` is exactly 0 (the official sway
            schedule's wasted last evaluation).  The result is identical; one model call is saved.
        callback: called with the step index after each step (progress bars).

    Returns:
        ``[B, C, T]`` sample, in ``x``'s dtype.
    """
    out_dtype = x.dtype
    x = x.float()
    sigmas = schedule.sigmas.to(torch.float32)
    for i, t in enumerate(schedule.timesteps):
        dt = sigmas[i + 1] - sigmas[i]
        if not (skip_noop and dt == 0):
            v = velocity(x.to(out_dtype), t)
            x = x + dt.to(x.device) * v.float()
        if callback is not None:
            callback(i)
    return x.to(out_dtype)


def cfg_velocity(batched: VelocityFn, guidance_scale: float) -> VelocityFn:
    """Guidance with both branches in one forward.

    Args:
        batched: velocity on a doubled batch ``[uncond; cond]`` (``2B``): the caller binds the text so that
            the first half sees the unconditional context and the second the conditional one.
        guidance_scale: ``w``; ``v = v_u + w (v_c - v_u)``.
    """

    def velocity(x: Tensor, t: Tensor) -> Tensor:
        v_u, v_c = batched(torch.cat([x, x]), t).chunk(2)
        return v_u + guidance_scale * (v_c - v_u)

    return velocity


def separate_cfg_velocity(uncond: VelocityFn, cond: VelocityFn, guidance_scale: float) -> VelocityFn:
    """Guidance with two separate forwards (reference for tests and benchmarks)."""

    def velocity(x: Tensor, t: Tensor) -> Tensor:
        v_u = uncond(x, t)
        return v_u + guidance_scale * (cond(x, t) - v_u)

    return velocity
