"""sample_latents: Tango's CFG semantics, DDPM parity with diffusers' own step, sampler agreement, validation."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from sara.errors import ConfigError
from sara.ldm.config import UNetConfig
from sara.ldm.sampling import sample_latents
from sara.ldm.schedulers import make_scheduler
from sara.ldm.unet import build_unet

SHAPE = (2, 8, 8, 4)


@pytest.fixture(scope="module")
def unet() -> nn.Module:
    torch.manual_seed(0)
    return build_unet(UNetConfig.tiny()).eval()


def _text(batch: int = 2, length: int = 5, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[0, 3:] = False
    return torch.randn(batch, length, 32, generator=g), mask


def _tango_inference(unet: nn.Module, cond, uncond, latents, steps, w, generator):  # noqa: ANN001, ANN202
    """declare-lab/tango AudioDiffusion.inference, restated: [uncond; cond], u + w (c - u), DDPM step."""
    sched = make_scheduler("ddpm")
    sched.set_timesteps(steps)
    states = torch.cat([uncond[0], cond[0]])
    mask = torch.cat([uncond[1], cond[1]])
    x = latents * sched.init_noise_sigma
    for t in sched.timesteps:
        inp = sched.scale_model_input(torch.cat([x] * 2), t)
        out = unet(inp, t, encoder_hidden_states=states, encoder_attention_mask=mask).sample
        u, c = out.chunk(2)
        x = sched.step(u + w * (c - u), t, x, generator=generator).prev_sample
    return x


def test_ddpm_parity_with_diffusers_step(unet: nn.Module) -> None:
    latents, cond, uncond = torch.randn(SHAPE), _text(), _text(seed=2)
    steps = 4
    with torch.no_grad():
        ref = _tango_inference(unet, cond, uncond, latents, steps, 3.0, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    noise = torch.stack([torch.randn(SHAPE, generator=g) for _ in range(steps)])  # what step() draws, in order
    ours = sample_latents(unet, make_scheduler("ddpm"), cond, uncond, latents, steps, 3.0, step_noise=noise)
    assert torch.equal(ours, ref)
    from_gen = sample_latents(unet, make_scheduler("ddpm"), cond, uncond, latents, steps, 3.0,
                              generator=torch.Generator().manual_seed(7))
    assert torch.equal(from_gen, ref)
    other = sample_latents(unet, make_scheduler("ddpm"), cond, uncond, latents, steps, 3.0, step_noise=-noise)
    assert not torch.allclose(other, ref)  # the supplied noise is really used


def test_guidance_one_is_conditional_only(unet: nn.Module) -> None:
    latents, cond = torch.randn(SHAPE), _text()
    sched = make_scheduler("ddim")
    a = sample_latents(unet, sched, cond, _text(seed=5), latents, 3, 1.0)
    b = sample_latents(unet, sched, cond, None, latents, 3, 0.5)
    ref = sample_latents(unet, sched, cond, None, latents, 3, 1.0)
    assert torch.equal(a, ref) and torch.equal(b, ref)
    guided = sample_latents(unet, sched, cond, _text(seed=5), latents, 3, 4.0)
    assert not torch.allclose(guided, ref)


def test_uncond_broadcast_and_padding_are_neutral(unet: nn.Module) -> None:
    latents, cond = torch.randn(SHAPE), _text(length=6)
    one = (torch.randn(1, 3, 32), torch.tensor([[True, False, False]]))
    full = (torch.cat([one[0].expand(2, -1, -1), torch.zeros(2, 3, 32)], 1),
            torch.cat([one[1].expand(2, -1), torch.zeros(2, 3, dtype=torch.bool)], 1))
    sched = make_scheduler("dpmsolver++")
    a = sample_latents(unet, sched, cond, one, latents, 3, 3.0)
    b = sample_latents(unet, sched, cond, full, latents, 3, 3.0)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", ["ddim", "dpmsolver++", "unipc"])
def test_deterministic_samplers_ignore_step_noise(unet: nn.Module, name: str) -> None:
    latents, cond, uncond = torch.randn(SHAPE), _text(), _text(seed=3)
    a = sample_latents(unet, make_scheduler(name), cond, uncond, latents, 3, 2.0,
                       step_noise=torch.randn(3, *SHAPE))
    b = sample_latents(unet, make_scheduler(name), cond, uncond, latents, 3, 2.0)
    assert torch.equal(a, b) and torch.isfinite(a).all()


class GaussianOracle(nn.Module):
    """The exact v-prediction for data x0 ~ N(0, sd^2 I) on the scheduler's alphas (a perfectly trained UNet)."""

    def __init__(self, alphas_cumprod: torch.Tensor, sd: float) -> None:
        super().__init__()
        self.register_buffer("ac", alphas_cumprod.double())
        self.sd = sd
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, sample, timestep, encoder_hidden_states=None, encoder_attention_mask=None):  # noqa: ANN001, ANN201
        ac = self.ac[torch.as_tensor(timestep).long()]
        a, b, x = ac.sqrt(), (1 - ac).sqrt(), sample.double()
        x0 = a * self.sd**2 / (a**2 * self.sd**2 + b**2) * x
        eps = (x - a * x0) / b
        return SimpleNamespace(sample=(a * eps - b * x0).float())


def _ode_solution(latents: torch.Tensor, scheduler, steps: int, sd: float) -> torch.Tensor:  # noqa: ANN001
    """Exact probability-flow map for Gaussian data: x0 = sd * x_T / std(x_T), from the sampler's first t."""
    scheduler.set_timesteps(steps)
    ac = scheduler.alphas_cumprod.double()[int(scheduler.timesteps[0])]
    return (sd * latents.double() / (ac * sd**2 + 1 - ac).sqrt()).float()


def test_samplers_agree_on_an_exact_model() -> None:
    sd = 0.5
    oracle = GaussianOracle(make_scheduler("ddpm").alphas_cumprod, sd)
    latents = torch.randn(16, 8, 8, 4, generator=torch.Generator().manual_seed(0))
    cond = (torch.zeros(16, 1, 4), torch.ones(16, 1, dtype=torch.bool))
    rel = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731

    def run(name: str, steps: int, **kw) -> tuple[torch.Tensor, float]:  # noqa: ANN003
        x = sample_latents(oracle, make_scheduler(name, **kw), cond, None, latents, steps, 1.0)
        return x, rel(x, _ode_solution(latents, make_scheduler(name, **kw), steps, sd))

    assert run("ddim", 200)[1] < 0.02
    plain, karras = run("dpmsolver++", 25)[1], run("dpmsolver++", 25, karras_sigmas=True)[1]
    assert karras < 0.02 < plain and karras < plain / 3
    assert run("unipc", 25, karras_sigmas=True)[1] < 0.02
    ddpm = sample_latents(oracle, make_scheduler("ddpm"), cond, None, latents, 200, 1.0,
                          generator=torch.Generator().manual_seed(1))
    assert abs(float(ddpm.std()) - sd) < 0.03  # ancestral sampling lands on the data distribution too
    assert rel(ddpm, run("ddim", 200)[0]) > 0.3  # ... through a different (stochastic) map


def test_invalid_arguments_raise_config_errors(unet: nn.Module) -> None:
    latents, cond, uncond = torch.randn(SHAPE), _text(), _text(seed=2)
    sched = make_scheduler("ddpm")
    cases = [
        dict(steps=0), dict(steps=2.5), dict(steps=True), dict(steps=1000), dict(guidance_scale=float("nan")),
        dict(latents=latents.clone().fill_(float("inf"))), dict(step_noise=torch.randn(2, *SHAPE)),
        dict(uncond=None), dict(cond=(cond[0][:1], cond[1][:1])), dict(cond=(cond[0], cond[1].float())),
    ]
    for case in cases:
        kwargs = {**dict(cond=cond, uncond=uncond, latents=latents, steps=3, guidance_scale=3.0), **case}
        with pytest.raises(ConfigError):
            sample_latents(unet, sched, **kwargs)
