"""The SD-2.1 schedule Tango uses, built offline for each sampler."""

import diffusers
import pytest
import torch

from sara.errors import ConfigError
from sara.ldm.schedulers import TANGO_SCHEDULER_CONFIG, SchedulerConfig, make_scheduler


def test_config_is_the_sd21_file() -> None:
    body = {k: v for k, v in TANGO_SCHEDULER_CONFIG.items() if not k.startswith("_")}
    assert SchedulerConfig.tango().to_diffusers_dict() == body
    assert SchedulerConfig.from_diffusers_dict(TANGO_SCHEDULER_CONFIG) == SchedulerConfig()
    assert TANGO_SCHEDULER_CONFIG["_class_name"] == "DDIMScheduler"
    assert body == {"beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
                    "clip_sample": False, "num_train_timesteps": 1000, "prediction_type": "v_prediction",
                    "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None}
    with pytest.raises(ConfigError, match="unknown config keys"):
        SchedulerConfig.from_diffusers_dict({**TANGO_SCHEDULER_CONFIG, "variance_typ": "fixed_small"})
    with pytest.raises(ConfigError, match="prediction_type"):
        SchedulerConfig.from_diffusers_dict({"prediction_type": "sample"})


def test_ddpm_is_tangos_scheduler() -> None:
    sched = make_scheduler("ddpm")
    ref = diffusers.DDPMScheduler.from_config(TANGO_SCHEDULER_CONFIG)  # what Tango's from_pretrained builds
    assert isinstance(sched, diffusers.DDPMScheduler)
    assert sched.config.variance_type == "fixed_small" and sched.config.timestep_spacing == "leading"
    assert torch.equal(sched.alphas_cumprod, ref.alphas_cumprod)
    assert abs(float(sched.alphas_cumprod[-1]) - 0.00466) < 1e-4
    sched.set_timesteps(5)
    assert sched.timesteps.tolist() == [801, 601, 401, 201, 1]
    sched.set_timesteps(200)
    assert sched.timesteps[:3].tolist() == [996, 991, 986] and int(sched.timesteps[-1]) == 1


@pytest.mark.parametrize(("name", "cls"), [("ddim", diffusers.DDIMScheduler),
                                           ("dpmsolver++", diffusers.DPMSolverMultistepScheduler),
                                           ("unipc", diffusers.UniPCMultistepScheduler)])
def test_other_samplers_share_the_schedule(name: str, cls: type) -> None:
    sched = make_scheduler(name)
    assert type(sched) is cls and sched.config.prediction_type == "v_prediction"
    assert torch.allclose(sched.alphas_cumprod, make_scheduler("ddpm").alphas_cumprod)
    if name == "dpmsolver++":
        assert sched.config.algorithm_type == "dpmsolver++" and sched.config.solver_order == 2
    if name != "ddim":
        assert make_scheduler(name, karras_sigmas=True).config.use_karras_sigmas


def test_dpmsolver_karras_is_a_sampler_name() -> None:
    named = make_scheduler("dpmsolver++karras")
    assert type(named) is diffusers.DPMSolverMultistepScheduler and named.config.use_karras_sigmas
    assert dict(named.config) == dict(make_scheduler("dpmsolver++", karras_sigmas=True).config)
    named.set_timesteps(15)
    plain = make_scheduler("dpmsolver++")
    plain.set_timesteps(15)
    assert not torch.equal(named.timesteps, plain.timesteps)  # the Karras ramp, not linspace


def test_bad_sampler_requests() -> None:
    with pytest.raises(ConfigError, match="unknown sampler 'euler'"):
        make_scheduler("euler")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="karras_sigmas"):
        make_scheduler("ddpm", karras_sigmas=True)
