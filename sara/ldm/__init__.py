"""Latent diffusion on mel-VAE latents, Tango-compatible: the UNet, noise schedules, CFG sampling, text
conditioning and the ``ldm`` training task.

Data flow: prompts -> :mod:`sara.ldm.conditioning` text states ``[B, L, D]`` + mask -> :func:`sample_latents`
with the diffusers ``UNet2DConditionModel`` (:func:`build_unet`) and a scheduler (:func:`make_scheduler`) ->
latents ``[B, 8, T/4, 16]`` -> the mel VAE (:mod:`sara.mel`).  Names are imported lazily so ``import sara.ldm``
does not import diffusers.
"""

from __future__ import annotations

from sara._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "UNetConfig": "sara.ldm.config",
    "build_unet": "sara.ldm.unet",
    "count_unet_parameters": "sara.ldm.unet",
    "save_unet_release": "sara.ldm.unet",
    "load_unet_release": "sara.ldm.unet",
    "load_any_unet": "sara.ldm.unet",
    "SchedulerConfig": "sara.ldm.schedulers",
    "TANGO_SCHEDULER_CONFIG": "sara.ldm.schedulers",
    "make_scheduler": "sara.ldm.schedulers",
    "sample_latents": "sara.ldm.sampling",
    "TextConditioner": "sara.ldm.conditioning",
    "TangoTextConditioner": "sara.ldm.conditioning",
    "MiniLMConditioner": "sara.ldm.conditioning",
    "build_conditioner": "sara.ldm.conditioning",
    "LDMTrainConfig": "sara.ldm.training",
    "LDMTask": "sara.ldm.training",
    "build_latent_cache": "sara.ldm.cache",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
