"""Training-task registry: task name -> ``"module:Class"`` (imported lazily)."""

from __future__ import annotations

import importlib

from sara.errors import ConfigError
from sara.train.task import TrainTask

TASKS: dict[str, str] = {
    "encoder": "sara.encoder.training:EncoderTask",
    "vocoder": "sara.vocoder.training:VocoderTask",
    "vocoder_gan": "sara.vocoder.gan:VocoderGANTask",
    "t2a": "sara.dit.training:TextToAudioTask",
    "vae": "sara.mel.vae_training:VAETask",
    "hifigan": "sara.mel.hifigan_training:HiFiGANTask",
    "ldm": "sara.ldm.training:LDMTask",
    "codec": "sara.codec.training:CodecTask",
    "audiogen": "sara.audiogen.training:AudioGenTask",
    "dcldm": "sara.dcldm.training:DCLDMTask",
}


def get_task_class(name: str) -> type[TrainTask]:
    """Resolve a task name to its class."""
    if name not in TASKS:
        raise ConfigError(f"unknown training task {name!r}; choose from {sorted(TASKS)}")
    module, _, cls = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), cls)
