"""The editing algorithms on latents, with a cheap analytic velocity: schedules, held frames, windows, masks."""

from __future__ import annotations

import pytest
import torch

from sara.edit.masks import ramp_into, ramp_out, region_mask
from sara.edit.sampler import masked_euler_sample, noisy, partial_schedule
from sara.edit.windows import WindowJob, plan_windows, sample_windows
from sara.flow.sampling import euler_sample
from sara.flow.timesteps import make_schedule


def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A position- and time-dependent field whose frames interact (so held frames matter)."""
    return 0.3 * x + 0.1 * torch.roll(x, 1, dims=-1) + float(t) / 1000.0


def test_partial_schedule_endpoints() -> None:
    full = make_schedule("sway", 10)
    same = partial_schedule("sway", 10, 1.0)
    assert torch.equal(same.sigmas, full.sigmas) and torch.equal(same.timesteps, full.timesteps)
    assert partial_schedule("sway", 10, 0.0) is None
    half = partial_schedule("sway", 10, 0.5)
    assert half.num_evals == 5 + 1 and float(half.sigmas[0]) == pytest.approx(0.5) and float(half.sigmas[-1]) == 0


def test_unmasked_sampling_is_plain_euler() -> None:
    noise = torch.randn(1, 4, 12, generator=torch.Generator().manual_seed(0))
    sched = make_schedule("sway", 6)
    plain = euler_sample(velocity, noise, sched, skip_noop=True)
    init = torch.randn(1, 4, 12)
    assert torch.equal(masked_euler_sample(velocity, noise, sched), plain)
    assert torch.equal(masked_euler_sample(velocity, noise, sched, init=init), plain)  # sigma 1: init ignored


def test_held_frames_follow_the_noisy_known_path_at_every_step() -> None:
    gen = torch.Generator().manual_seed(1)
    noise, known = torch.randn(1, 4, 20, generator=gen), torch.randn(1, 4, 20, generator=gen)
    mask = region_mask(20, 5, 12)
    sched, seen = make_schedule("sway", 8), []
    out = masked_euler_sample(velocity, noise, sched, known=known, mask=mask,
                              callback=lambda i, x: seen.append(x.clone()))
    held = mask.bool()
    for i, x in enumerate(seen):
        assert torch.allclose(x[..., held], noisy(known, noise, sched.sigmas[i])[..., held], atol=1e-6)
    assert torch.equal(out[..., held], known[..., held])
    assert not torch.allclose(out[..., ~held], known[..., ~held], atol=1e-3)  # the region was regenerated


def test_plan_windows_cover_with_overlap() -> None:
    spans = plan_windows(0, 130, 50, 10)
    assert spans[0] == (0, 50) and spans[-1] == (80, 130) and all(e - s == 50 for s, e in spans)
    assert all(b[0] <= a[1] - 10 for a, b in zip(spans, spans[1:]))
    assert plan_windows(0, 130, 50, 10, reverse=True)[0] == (80, 130)
    assert plan_windows(0, 130, 50, 10, reverse=True)[-1] == (0, 50)
    assert plan_windows(3, 20, 50, 10) == [(3, 20)]
    with pytest.raises(ValueError):
        plan_windows(0, 10, 5, 5)


def test_windowed_sampling_continues_and_keeps_final_frames() -> None:
    frames, gen = 130, torch.Generator().manual_seed(2)
    base = torch.randn(1, 4, frames, generator=gen)
    hold = region_mask(frames, 30, frames)  # the first 30 frames are the "input"
    job = WindowJob(base, hold, plan_windows(10, frames, 50, 10))
    res = sample_windows(job, make_schedule("linear", 4), lambda _f: velocity,
                         lambda n: torch.randn(1, 4, n, generator=gen), channels=4)
    assert torch.equal(res.latents[..., :30], base[..., :30])
    assert res.joins[0] == 30 and len(res.joins) == len(job.spans)
    assert res.latents.shape[-1] == frames and torch.isfinite(res.latents).all()


def test_masks() -> None:
    m = ramp_into(region_mask(10, 3, 7), 2)
    assert m.tolist()[:3] == [1, 1, 1] and m[3] == pytest.approx(2 / 3) and m[4] == pytest.approx(1 / 3)
    assert m[5] == pytest.approx(1 / 3) and m[6] == pytest.approx(2 / 3) and m[7:].tolist() == [1, 1, 1]
    hard = region_mask(10, 6, 10)
    soft = ramp_out(hard, torch.zeros(10, dtype=torch.bool), 2)
    assert soft[:4].tolist() == [1, 1, 1, 1] and soft[4] == pytest.approx(2 / 3) and soft[5] == pytest.approx(1 / 3)
    protected = ramp_out(hard, torch.ones(10, dtype=torch.bool), 2)
    assert torch.equal(protected, hard)
