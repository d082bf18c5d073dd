"""Flow matching: official schedules (spec D.4), Euler contracts, batched CFG, training helpers."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from sara.dit import DiTConfig, LatentDiT
from sara.flow import (
    cfg_velocity,
    euler_sample,
    interpolate,
    linear_schedule,
    masked_mse,
    sample_train_timesteps,
    separate_cfg_velocity,
    shifted_schedule,
    sway_schedule,
)

torch.set_num_threads(1)


def test_sway_schedule_n100_matches_official_formula() -> None:
    s = sway_schedule(100)
    assert s.sigmas.dtype == torch.float32 and s.sigmas.shape == (102,)
    want = torch.tensor([math.cos(math.pi * i / 200) for i in range(101)], dtype=torch.float32)
    assert torch.allclose(s.sigmas[:101], want, atol=1e-6)
    assert s.sigmas[100] == 0 and s.sigmas[101] == 0  # cos(pi/2) is exactly 0 in float32 here; then appended 0
    assert s.num_evals == 101
    assert s.timesteps.long()[:4].tolist() == [1000, 999, 999, 998]
    assert torch.equal(s.timesteps, s.sigmas[:-1] * 1000)
    assert (s.sigmas[1:] <= s.sigmas[:-1]).all()


def test_linear_and_shifted_schedules() -> None:
    lin = linear_schedule(4)
    assert torch.allclose(lin.sigmas, torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    assert lin.num_evals == 4
    sh = shifted_schedule(4, shift=3.0)
    assert sh.sigmas[0] == 1 and sh.sigmas[-1] == 0
    assert (sh.sigmas[1:-1] > lin.sigmas[1:-1]).all()  # more time near noise
    with pytest.raises(ValueError):
        sway_schedule(0)


def test_euler_exact_on_constant_field_and_noop_skip() -> None:
    x0 = torch.randn(2, 3, 5)
    c = torch.randn(2, 3, 5)
    calls: list[float] = []

    def vel(x, t):
        calls.append(float(t))
        return c

    out = euler_sample(vel, x0, sway_schedule(10))
    assert torch.allclose(out, x0 - c, atol=1e-6)  # integrates sigma from 1 to 0
    assert len(calls) == 11
    calls.clear()
    out2 = euler_sample(vel, x0, sway_schedule(10), skip_noop=True)
    assert torch.equal(out, out2) and len(calls) == 10


def _tiny_model() -> LatentDiT:
    cfg = dataclasses.replace(DiTConfig.tiny(), latent_dim=8, text_dim=None)
    model = LatentDiT(cfg)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model.eval()


@torch.no_grad()
def test_batched_cfg_with_cached_kv_equals_two_separate_forwards() -> None:
    model = _tiny_model()
    cond = torch.randn(2, 5, 32)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    uncond = torch.zeros_like(cond)
    both = model.prepare_context(torch.cat([uncond, cond]), torch.cat([mask, mask]))
    batched = cfg_velocity(lambda x, t: model(x, t, text=both), 3.5)
    separate = separate_cfg_velocity(lambda x, t: model(x, t, uncond, mask), lambda x, t: model(x, t, cond, mask), 3.5)
    x0 = torch.randn(2, 8, 10)
    a = euler_sample(batched, x0, sway_schedule(6))
    b = euler_sample(separate, x0, sway_schedule(6))
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, euler_sample(lambda x, t: model(x, t, cond, mask), x0, sway_schedule(6)), atol=1e-3)


def test_train_timesteps_and_interpolation() -> None:
    g = torch.Generator().manual_seed(0)
    t = sample_train_timesteps(20000, "logit_normal", generator=g)
    assert t.min() >= 1 and t.max() <= 1000 and torch.equal(t, t.round())
    assert abs(t.mean().item() - 500) < 10 and t.std() < 250  # logit-normal concentrates mid-range
    u = sample_train_timesteps(20000, "uniform", generator=g)
    assert u.std() > 250
    x1, noise = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    sig = torch.tensor([0.0, 1.0, 0.25])
    xt = interpolate(x1, noise, sig)
    assert torch.equal(xt[0], x1[0]) and torch.equal(xt[1], noise[1])
    assert torch.allclose(xt[2], 0.75 * x1[2] + 0.25 * noise[2])


def test_masked_mse_ignores_invalid_frames() -> None:
    pred, target = torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    target[0, :, 3] = 100.0  # masked out
    target[1] = 2.0
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    assert torch.allclose(masked_mse(pred, target, mask), torch.tensor((0.0 + 4.0) / 2))


def test_timestep_shift_follows_the_sd3_map() -> None:
    a = sample_train_timesteps(5000, "uniform", generator=torch.Generator().manual_seed(1))
    same = sample_train_timesteps(5000, "uniform", generator=torch.Generator().manual_seed(1), shift=1.0)
    shifted = sample_train_timesteps(5000, "uniform", generator=torch.Generator().manual_seed(1), shift=3.0)
    assert torch.equal(a, same)
    sigma = a / 1000
    want = (3 * sigma / (1 + 2 * sigma) * 1000).round().clamp(1, 1000)
    assert torch.equal(shifted, want) and torch.equal(shifted, shifted.round())
    assert (shifted >= a).all() and (shifted / 1000 > 0.9).float().mean() > 0.2  # towards noise
    with pytest.raises(ValueError):
        sample_train_timesteps(4, "uniform", shift=0.0)
