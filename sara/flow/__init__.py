"""Flow matching in the official DiT convention (sigma = 1 is noise, velocity = noise - data)."""

from sara.flow.paths import (
    flow_matching_loss,
    interpolate,
    masked_mse,
    sample_train_timesteps,
    velocity_target,
)
from sara.flow.sampling import cfg_velocity, euler_sample, separate_cfg_velocity
from sara.flow.timesteps import Schedule, linear_schedule, make_schedule, shifted_schedule, sway_schedule

__all__ = [
    "Schedule",
    "cfg_velocity",
    "euler_sample",
    "flow_matching_loss",
    "interpolate",
    "linear_schedule",
    "make_schedule",
    "masked_mse",
    "sample_train_timesteps",
    "separate_cfg_velocity",
    "shifted_schedule",
    "sway_schedule",
    "velocity_target",
]
