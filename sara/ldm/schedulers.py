"""Noise schedules and samplers for the Tango UNet, built offline from the SD-2.1 scheduler config.

Tango (declare-lab/tango ``models.py``) loads both its training and inference scheduler with
``DDPMScheduler.from_pretrained("stabilityai/stable-diffusion-2-1", subfolder="scheduler")``.  That file
(:data:`TANGO_SCHEDULER_CONFIG`, in neither the Tango repo nor its hub snapshot) names a ``DDIMScheduler`` but
``DDPMScheduler`` accepts it: 1000 training steps, ``scaled_linear`` betas 0.00085 -> 0.012, **v-prediction**,
``steps_offset`` 1.  ``DDPMScheduler`` adds its defaults: variance ``fixed_small``, ``timestep_spacing``
``leading`` (5 steps -> timesteps 801, 601, 401, 201, 1; 200 steps -> 996, 991, ..., 6, 1).

:func:`make_scheduler` builds the same schedule for the four samplers sara offers:
``"ddpm"`` (Tango's; stochastic), ``"ddim"`` (eta 0), ``"dpmsolver++"`` (multistep, 2nd order) and ``"unipc"``;
the last three are deterministic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sara.errors import ConfigError
from sara.serialization import config_from_dict

__all__ = ["SAMPLERS", "TANGO_SCHEDULER_CONFIG", "SamplerName", "SchedulerConfig", "make_scheduler"]

SamplerName = Literal["ddpm", "ddim", "dpmsolver++", "dpmsolver++karras", "unipc"]
SAMPLERS: tuple[str, ...] = ("ddpm", "ddim", "dpmsolver++", "dpmsolver++karras", "unipc")

# stabilityai/stable-diffusion-2-1 scheduler/scheduler_config.json, verbatim
TANGO_SCHEDULER_CONFIG: dict[str, Any] = {
    "_class_name": "DDIMScheduler",
    "_diffusers_version": "0.8.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

_META_KEYS = ("_class_name", "_diffusers_version")


@dataclass(frozen=True)
class SchedulerConfig:
    """The diffusion schedule (Tango / SD-2.1 values by default).

    Attributes:
        num_train_timesteps: discrete training timesteps (t in 0..999).
        beta_start / beta_end / beta_schedule: the beta ramp (``scaled_linear`` = linear in sqrt(beta)).
        prediction_type: what the UNet predicts: ``v_prediction`` (Tango) or ``epsilon``.
        steps_offset: added to the inference timesteps (``leading`` spacing ends at t = 1).
        clip_sample: clamp the predicted x0 (off for latents).
        set_alpha_to_one: DDIM's final alpha (False: alphas_cumprod[0]).
        skip_prk_steps: PNDM-only key of the SD-2.1 file, kept so the dict round-trips.
        trained_betas: explicit betas (None: computed from the ramp).
        timestep_spacing: inference spacing; None keeps each scheduler's default (``leading`` for DDPM/DDIM,
            ``linspace`` for DPM-Solver++ and UniPC), which is what the SD-2.1 file gives them.
    """

    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: Literal["scaled_linear", "linear", "squaredcos_cap_v2"] = "scaled_linear"
    prediction_type: Literal["v_prediction", "epsilon"] = "v_prediction"
    steps_offset: int = 1
    clip_sample: bool = False
    set_alpha_to_one: bool = False
    skip_prk_steps: bool = True
    trained_betas: tuple[float, ...] | None = None
    timestep_spacing: Literal["leading", "linspace", "trailing"] | None = None

    def __post_init__(self) -> None:
        if self.num_train_timesteps < 2:
            raise ValueError(f"num_train_timesteps must be >= 2, got {self.num_train_timesteps}")
        if not 0.0 < self.beta_start < self.beta_end < 1.0:
            raise ValueError(f"need 0 < beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}")
        if self.beta_schedule not in ("scaled_linear", "linear", "squaredcos_cap_v2"):
            raise ValueError(f"unknown beta_schedule {self.beta_schedule!r}")
        if self.prediction_type not in ("v_prediction", "epsilon"):
            raise ValueError(f"prediction_type must be 'v_prediction' or 'epsilon', got {self.prediction_type!r}")
        if self.timestep_spacing not in (None, "leading", "linspace", "trailing"):
            raise ValueError(f"unknown timestep_spacing {self.timestep_spacing!r}")
        if not 0 <= self.steps_offset < self.num_train_timesteps:
            raise ValueError(f"steps_offset must be in [0, num_train_timesteps), got {self.steps_offset}")

    @classmethod
    def tango(cls) -> SchedulerConfig:
        """The SD-2.1 schedule Tango trains and samples with (the defaults)."""
        return cls()

    @classmethod
    def from_diffusers_dict(cls, data: Mapping[str, Any]) -> SchedulerConfig:
        """Build from a diffusers ``scheduler_config.json`` dict (``_class_name`` etc. are dropped).

        Raises:
            ConfigError: unknown keys (named) or invalid values.
        """
        return config_from_dict(cls, {k: v for k, v in data.items() if k not in _META_KEYS})

    def to_diffusers_dict(self) -> dict[str, Any]:
        """The scheduler-config dict diffusers' ``from_config`` reads (unset ``timestep_spacing`` omitted)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if out["trained_betas"] is not None:
            out["trained_betas"] = list(out["trained_betas"])
        if out["timestep_spacing"] is None:
            del out["timestep_spacing"]
        return out


def make_scheduler(name: SamplerName = "ddpm", cfg: SchedulerConfig | None = None, *,
                   karras_sigmas: bool = False) -> Any:
    """A fresh diffusers scheduler for sampler ``name`` on the schedule ``cfg`` (built offline).

    Args:
        name: ``"ddpm"`` (``DDPMScheduler``, Tango's sampler: ancestral, variance ``fixed_small``),
            ``"ddim"`` (``DDIMScheduler``; sara samples with eta 0), ``"dpmsolver++"``
            (``DPMSolverMultistepScheduler``, ``algorithm_type="dpmsolver++"``, order 2),
            ``"dpmsolver++karras"`` (the same on Karras sigmas: on the demo UNet 15 steps beat 25 linspace
            steps on every measure, ``benchmarks/bench_ldm_schedulers.py``) or ``"unipc"``
            (``UniPCMultistepScheduler``).
        cfg: the schedule (default :meth:`SchedulerConfig.tango`).
        karras_sigmas: DPM-Solver++ / UniPC only: place the steps on Karras et al.'s sigma ramp instead of
            linspace timesteps.  With few steps this matters: linspace ends with one jump from t ~ 40 straight
            to x0, which shrinks the sample towards its posterior mean (on an exact Gaussian model 25 linspace
            steps are 6.7 % off the ODE solution and 0.7 % with Karras sigmas; see tests/ldm/test_sampling.py).

    Raises:
        ConfigError: an unknown sampler name, or ``karras_sigmas`` for DDPM / DDIM.
    """
    import diffusers

    if name == "dpmsolver++karras":
        name, karras_sigmas = "dpmsolver++", True
    cfg = cfg if cfg is not None else SchedulerConfig()
    config = cfg.to_diffusers_dict()
    if karras_sigmas and name in ("ddpm", "ddim"):
        raise ConfigError(f"karras_sigmas is for 'dpmsolver++' and 'unipc', not {name!r}")
    if karras_sigmas:
        config["use_karras_sigmas"] = True
    if name == "ddpm":
        return diffusers.DDPMScheduler.from_config(config)
    if name == "ddim":
        return diffusers.DDIMScheduler.from_config(config)
    if name == "dpmsolver++":
        return diffusers.DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++",
                                                                solver_order=2)
    if name == "unipc":
        return diffusers.UniPCMultistepScheduler.from_config(config)
    raise ConfigError(f"unknown sampler {name!r}; choose from {list(SAMPLERS)}")
