"""Vocoder-convention solvers (x1 prediction, t: 0 -> 1): convergence order on a Gaussian flow with a
closed-form endpoint, Euler parity with the official sampler, grids, call counts, float32 state."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from sara.errors import ConfigError
from sara.vocoder.sampler import euler_sample
from sara.vocoder.solvers import SOLVERS, make_grid, num_calls, sample

from .helpers import randomize, tiny_config

LENGTH = 64
NOISE = 0.1  # the paper vocoder's init_noise_scale


class WaveformGaussianFlow:
    """``x_t = t x1 + (1 - t) x0`` with ``x0 ~ N(0, c^2)``, ``x1 ~ N(mu, diag(s^2))``: the exact x1-prediction is
    ``E[x1 | x_t] = mu + t s^2 (x - t mu) / var``, ``var = t^2 s^2 + (1 - t)^2 c^2``, and the ODE maps
    ``x0`` to ``mu + s x0 / c``."""

    def __init__(self) -> None:
        self.s = torch.linspace(0.02, 0.5, LENGTH, dtype=torch.float64)
        self.mu = 0.3 * torch.sin(torch.linspace(0, 6.0, LENGTH, dtype=torch.float64))

    def predict(self, x: Tensor, t: Tensor) -> Tensor:
        tt = t.double()[:, None]
        var = tt**2 * self.s**2 + (1 - tt) ** 2 * NOISE**2
        return (self.mu + tt * self.s**2 * (x.double() - tt * self.mu) / var).to(x.dtype)

    def velocity(self, x: Tensor, t: Tensor) -> Tensor:
        return ((self.predict(x, t).double() - x.double()) / (1 - t.double()[:, None])).to(x.dtype)

    def exact(self, x0: Tensor) -> Tensor:
        return self.mu + self.s * x0.double() / NOISE


def _noise(seed: int = 0) -> Tensor:
    return NOISE * torch.randn(4, LENGTH, generator=torch.Generator().manual_seed(seed))


def _error(solver: str, steps: int, grid: object = "uniform", pred_x1: bool = True, **kw: object) -> float:
    flow, x0 = WaveformGaussianFlow(), _noise()
    predict = flow.predict if pred_x1 else flow.velocity
    out = sample(predict, x0, steps, solver=solver, grid=grid, pred_x1=pred_x1, clamp=False, **kw)
    exact = flow.exact(x0)
    return float((out.double() - exact).norm() / exact.norm())


@pytest.mark.parametrize("grid", ["uniform", "sway", "shifted"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_converges_with_the_documented_order(solver: str, grid: str) -> None:
    """``p = log4(err(n) / err(4 n))``: ~1 for Euler, clearly above 1 for the second-order solvers (DPM-Solver++
    (2M) is measured further out: its log-SNR steps near t = 1 do not shrink, see tests/flow/test_solvers.py)."""
    n, bound = (128, 1.45) if solver == "dpm2m" else (32, 1.6)
    coarse, fine = _error(solver, n, grid), _error(solver, 4 * n, grid)
    order = math.log(coarse / fine, 4)
    if solver == "euler":
        assert 0.9 < order < 1.1, (coarse, fine)
    else:
        assert order > bound and fine < 3e-3, (coarse, fine)


@pytest.mark.parametrize("solver", SOLVERS)
def test_velocity_prediction_converges_too(solver: str) -> None:
    assert _error(solver, 128, pred_x1=False) < 0.5 * _error(solver, 32, pred_x1=False)
    assert _error(solver, 128, pred_x1=False) < 2e-2


def _nonlinear(x: Tensor, t: Tensor) -> Tensor:
    return torch.tanh(3 * x) * t[:, None] + 0.2 * torch.cos(5 * t)[:, None]


@pytest.mark.parametrize("steps", [1, 4, 9])
def test_euler_uniform_is_the_official_sampler_bitwise(steps: int) -> None:
    x0 = torch.randn(2, 16)
    for pred_x1 in (True, False):
        ref = euler_sample(_nonlinear, x0, steps, pred_x1=pred_x1)
        assert torch.equal(sample(_nonlinear, x0, steps, solver="euler", pred_x1=pred_x1), ref)


def test_euler_on_an_explicit_uniform_grid_matches_the_official_sampler() -> None:
    x0 = torch.randn(2, 16)
    out = sample(_nonlinear, x0, 8, grid=torch.linspace(0, 1, 9), clamp=False)
    torch.testing.assert_close(out, euler_sample(_nonlinear, x0, 8, clamp=False), atol=1e-6, rtol=0)


@pytest.mark.parametrize("grid", ["uniform", "sway", "shifted"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_calls_times_and_callbacks(solver: str, grid: str) -> None:
    """Calls as documented (euler / dpm2m / ab2 N, heun 2N - 1, midpoint 2N); t is float32 [B] in [0, 1)."""
    seen: list[Tensor] = []
    steps: list[int] = []

    def predict(x: Tensor, t: Tensor) -> Tensor:
        seen.append(t)
        return _nonlinear(x, t)

    sample(predict, torch.randn(3, 8), 5, solver=solver, grid=grid, callback=lambda k, x: steps.append(k))
    expected = {"euler": 5, "heun": 9, "midpoint": 10, "dpm2m": 5, "ab2": 5}[solver]
    assert len(seen) == expected == num_calls(solver, 5) and steps == list(range(5))
    assert all(t.shape == (3,) and t.dtype == torch.float32 and 0 <= float(t[0]) < 1 for t in seen)
    assert float(seen[0][0]) == 0.0


@pytest.mark.parametrize("solver", SOLVERS)
def test_float32_state_with_a_bf16_network(solver: str) -> None:
    flow, x0 = WaveformGaussianFlow(), _noise(1).to(torch.bfloat16)
    fed: list[torch.dtype] = []
    states: list[torch.dtype] = []

    def predict(x: Tensor, t: Tensor) -> Tensor:
        fed.append(x.dtype)
        return flow.predict(x.float(), t).to(torch.bfloat16)

    out = sample(predict, x0, 100, solver=solver, grid="sway", clamp=False,
                 callback=lambda k, x: states.append(x.dtype))
    assert out.dtype == torch.float32 and set(states) == {torch.float32} and set(fed) == {torch.bfloat16}
    exact = flow.exact(x0.float())
    assert float((out.double() - exact).norm() / exact.norm()) < 5e-2


def test_grids() -> None:
    for name in ("uniform", "sway", "shifted"):
        times = make_grid(6, name)
        assert times.dtype == torch.float32 and times.numel() == 7
        assert times[0] == 0 and times[-1] == 1 and bool((times[1:] > times[:-1]).all())
    assert torch.equal(make_grid(6), torch.linspace(0, 1, 7))
    sway, early, late = make_grid(8, "sway"), make_grid(8, "shifted", shift=3.0), make_grid(8, "shifted", shift=0.3)
    assert sway[1] < 1 / 8 and early[1] < 1 / 8 < late[1]
    torch.testing.assert_close(make_grid(8, "shifted", shift=1.0), make_grid(8))


def test_bad_arguments_are_config_errors() -> None:
    x0 = torch.randn(1, 4)
    with pytest.raises(ConfigError, match="unknown grid"):
        sample(_nonlinear, x0, 3, grid="karras")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown solver"):
        sample(_nonlinear, x0, 3, solver="rk4")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="shift"):
        make_grid(3, "shifted", shift=0.0)
    with pytest.raises(ConfigError, match="increase"):
        sample(_nonlinear, x0, 2, grid=[0.0, 0.7, 0.5, 1.0])
    with pytest.raises(ConfigError, match="3 steps but steps=2"):
        sample(_nonlinear, x0, 2, solver="heun", grid=[0.0, 0.3, 0.6, 1.0])
    with pytest.raises(ConfigError, match="steps"):
        sample(_nonlinear, x0, 0, solver="heun")


@pytest.mark.parametrize("solver", SOLVERS)
def test_tiny_vocoder_network_converges_to_a_many_step_reference(solver: str) -> None:
    """On a real (tiny, random) generator: more steps move every solver towards the 256-step Euler result."""
    from sara.vocoder import SemanticVocoder

    voc = SemanticVocoder(tiny_config())
    randomize(voc.generator)
    voc.eval()
    z = torch.randn(1, voc.latent_dim, 2, generator=torch.Generator().manual_seed(0))
    x0 = 0.1 * torch.randn(1, 2 * voc.hop_length, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        cond = voc.generator.prepare_condition(z, x0.shape[-1], True)

        def predict(x: Tensor, t: Tensor) -> Tensor:
            return voc.generator(x, t, condition=cond)

        ref = euler_sample(predict, x0, 256, clamp=False)
        err = [float((sample(predict, x0, n, solver=solver, clamp=False) - ref).norm() / ref.norm()) for n in (4, 16)]
    assert err[1] < err[0]
