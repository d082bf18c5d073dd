"""End-to-end pipelines, one per system, side by side.

- :class:`TextToAudio` (SemanticVocoder / SARA): text -> semantic latents (DiT, flow matching) -> 24 kHz waveform.
- :class:`LatentDiffusion` (Tango / AudioLDM): text -> UNet (DDPM + CFG) on mel-VAE latents -> HiFi-GAN -> 16 kHz.
- :func:`load_pipeline` / :func:`detect_model_kind`: whichever of them (or AudioGen) a model directory holds.

``LatentDiffusion`` and the detection helpers are imported lazily, so ``import sara.pipelines`` does not import
diffusers.
"""

from __future__ import annotations

import importlib
from typing import Any

from sara.pipelines.text_to_audio import TextToAudio

_LAZY: dict[str, str] = {
    "LatentDiffusion": "sara.pipelines.latent_diffusion",
    "LDMDefaults": "sara.pipelines.latent_diffusion",
    "detect_model_kind": "sara.pipelines.detect",
    "load_pipeline": "sara.pipelines.detect",
}

__all__ = ["LDMDefaults", "LatentDiffusion", "TextToAudio", "detect_model_kind", "load_pipeline"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sara.pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
