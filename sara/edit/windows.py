"""Windowed sampling: any number of latent frames from a DiT trained on short crops.

A *job* covers a latent timeline ``[1, C, F]``: optional base latents (an encoded clip), a hold mask (1 =
keep the base exactly) and the spans to sample.  Windows of at most the DiT's trained length are sampled
in order; each one holds every frame that is already final (the user's input, or earlier windows) with the
replace-known-region sampler, so it is generated as a *continuation* of what precedes it.  Optionally the
last ``blend`` frames of the earlier window are partly regenerated (:func:`sara.edit.masks.ramp_out`).

Memory is one window of DiT activations plus the ``[1, C, F]`` timeline: linear in ``F`` with a small
constant.  Legend: ``C`` latent channels, ``F`` timeline frames, ``W`` window frames (25 Hz).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from sara.edit.masks import ramp_out
from sara.edit.sampler import StepCallback, masked_sample
from sara.flow.sampling import VelocityFn
from sara.flow.timesteps import Schedule

__all__ = ["WindowJob", "WindowResult", "plan_windows", "sample_windows"]

NoiseFn = Callable[[int], Tensor]  # frames -> [1, C, frames] standard-normal noise
VelocityFor = Callable[[int], VelocityFn]  # first generated frame of a window -> velocity function


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def plan_windows(start: int, end: int, window: int, overlap: int, *, reverse: bool = False,
                 patch: int = 1) -> list[tuple[int, int]]:
    """Frame spans ``[(s, e), ...]`` covering ``[start, end)`` in sampling order.

    Consecutive windows share at least ``overlap`` frames; the last one is moved back to end at ``end``
    (sharing more).  A span shorter than ``window`` is one window, rounded up to a multiple of ``patch``
    (it may then reach past ``end``).  With ``reverse`` the windows go from ``end`` towards ``start``.

    Raises:
        ValueError: ``window`` not a positive multiple of ``patch``, or ``overlap`` not in ``[0, window)``.
    """
    if window < patch or window % patch or not 0 <= overlap < window:
        raise ValueError(f"need window (a multiple of {patch}) > overlap >= 0, got {window}, {overlap}")
    if end - start <= window:
        length = _round_up(end - start, patch)
        s = start if not reverse else end - length
        return [(s, s + length)] if s >= 0 else [(0, length)]
    spans, s = [], start
    while s + window < end:
        spans.append((s, s + window))
        s += window - overlap
    spans.append((end - window, end))
    if reverse:
        spans = [(start + end - e, start + end - s) for s, e in spans]
    return spans


@dataclass
class WindowJob:
    """What to sample on a latent timeline.

    Attributes:
        base: ``[1, C, F]`` clean latents (held where ``hold`` is 1, start point of partial-strength edits),
            or None (generation from nothing).
        hold: ``[F]`` weights in [0, 1]: 1 = keep ``base`` exactly, fractional = soft edge, 0 = generate.
        spans: windows from :func:`plan_windows`, sampled in order.
        blend: held-from-earlier-window frames partly regenerated at each join (0 = hard continuation).
    """

    base: Tensor | None
    hold: Tensor
    spans: list[tuple[int, int]]
    blend: int = 0


@dataclass
class WindowResult:
    """``latents [1, C, F']`` (``F' >= F`` when the last window was rounded up) and the join frames
    (first newly generated frame next to already final ones, per window)."""

    latents: Tensor
    joins: list[int] = field(default_factory=list)


def sample_windows(job: WindowJob, schedule: Schedule, velocity_for: VelocityFor, noise_fn: NoiseFn, *,
                   channels: int, callback: StepCallback | None = None, solver: str = "euler") -> WindowResult:
    """Sample every window of ``job`` as a continuation of the frames already final.

    Args:
        job: the :class:`WindowJob`.
        schedule: sampling schedule (its first sigma is the edit strength; 1 for generation).
        velocity_for: velocity function for a window, given its first generated frame (prompt schedules).
        noise_fn: draws ``[1, C, n]`` noise for a window of ``n`` frames (in window order: reproducible).
        channels: latent channels ``C``.
        callback: per-step hook ``(i, x)`` (tests: what the model sees).
        solver: the DiT ODE solver (:func:`sara.edit.sampler.masked_sample`).
    """
    frames = max(job.hold.shape[0], max(e for _, e in job.spans))
    out = torch.zeros(1, channels, frames)
    hold = torch.zeros(frames)
    hold[: job.hold.shape[0]] = job.hold.float()
    if job.base is not None:
        out[..., : job.base.shape[-1]] = job.base.float().cpu()
    done, joins = hold >= 1, []
    for s, e in job.spans:
        mask = torch.maximum(hold[s:e], ramp_out(done[s:e].float(), hold[s:e] >= 1, job.blend))
        free = torch.nonzero(~done[s:e]).flatten()
        first_new = s + int(free[0]) if free.numel() else s
        if free.numel() and done[s:e].any():
            joins.append(first_new)
        noise = noise_fn(e - s)
        x = masked_sample(velocity_for(first_new), noise, schedule, solver=solver,
                          init=None if job.base is None else out[..., s:e].to(noise),
                          known=out[..., s:e].to(noise), mask=mask if bool(mask.any()) else None,
                          callback=callback)
        out[..., s:e] = x.float().cpu()
        done[s:e] = True
    return WindowResult(latents=out, joins=joins)
