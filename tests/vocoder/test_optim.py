"""ScaledAdam and Eden2: the schedule formula, RMS-relative updates, convergence on a quadratic, clipping."""

import math

import pytest
import torch

from sara.vocoder.optim import Eden2, ScaledAdam, eden2_factor


def test_eden2_formula() -> None:
    assert eden2_factor(0, 7500, 500, 0.1) == pytest.approx(0.1)
    assert eden2_factor(250, 7500, 500, 0.1) == pytest.approx((0.1 + 0.9 * 0.5) * (1 + (250 / 7500) ** 2) ** -0.5)
    assert eden2_factor(7500, 7500, 500, 0.1) == pytest.approx(1 / math.sqrt(2))
    assert eden2_factor(75000, 7500, 500, 0.1) == pytest.approx((1 + 100) ** -0.5)


def test_eden2_scheduler_sets_group_lr() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([p], lr=0.5)
    sched = Eden2(opt, lr_batches=100, warmup_batches=10, warmup_start=0.2)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * 0.2)
    for _ in range(20):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * eden2_factor(20, 100, 10, 0.2))


def test_first_update_is_relative_to_parameter_rms() -> None:
    for scale in (0.01, 1.0):
        p = torch.nn.Parameter(torch.randn(8, 8) * scale)
        before = p.detach().clone()
        rms = float(before.pow(2).mean().sqrt())
        opt = ScaledAdam([p], lr=0.03)
        p.grad = torch.randn(8, 8)
        opt.step()
        # step 0: v = (1-b2) g^2 bias-corrected -> |g|, so each element moves by (1-b1) * lr * rms
        torch.testing.assert_close((p.detach() - before).abs(), torch.full((8, 8), 0.1 * 0.03 * rms),
                                   rtol=1e-4, atol=1e-9)


def test_scaled_adam_reduces_a_quadratic() -> None:
    torch.manual_seed(0)
    target = torch.randn(16, 16)
    w = torch.nn.Parameter(torch.randn(16, 16) * 0.5)
    gain = torch.nn.Parameter(torch.tensor(0.0))
    opt = ScaledAdam([w, gain], lr=0.05, clipping_scale=2.0)

    def loss_fn() -> torch.Tensor:
        return (w - target).pow(2).mean() + (gain - 2.0) ** 2

    start_w = float((w.detach() - target).pow(2).mean())
    for _ in range(200):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    assert float((w.detach() - target).pow(2).mean()) < 0.1 * start_w
    # scalars learn with lr * scalar_lr_scale = 0.005 per step: ~1.0 of the way in 200 steps
    assert 0.5 < float(gain.detach()) < 2.0


def test_non_finite_gradient_is_skipped_and_state_round_trips() -> None:
    p = torch.nn.Parameter(torch.ones(4, 4))
    opt = ScaledAdam([p], lr=0.03, clipping_scale=2.0)
    p.grad = torch.full((4, 4), float("nan"))
    opt.step()
    assert torch.equal(p.detach(), torch.ones(4, 4))
    p.grad = torch.randn(4, 4)
    opt.step()
    state = opt.state_dict()
    other = ScaledAdam([torch.nn.Parameter(p.detach().clone())], lr=0.03, clipping_scale=2.0)
    other.load_state_dict(state)
    assert other.num_steps == opt.num_steps == 2
    assert other.norm_history == opt.norm_history


def test_scalars_are_clamped() -> None:
    s = torch.nn.Parameter(torch.tensor(9.99))
    opt = ScaledAdam([s], lr=10.0)
    for _ in range(5):
        s.grad = torch.tensor(-1.0)
        opt.step()
    assert float(s.detach()) == pytest.approx(10.0)
