"""One ``generate(captions) -> [B, N]`` callable for whichever text-to-audio system a pipeline is, so the
evaluations (``sara eval relevance``) score SARA, latent-diffusion (Tango / sara LDM / DC-LDM) and AudioGen
models with one protocol."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from sara.errors import ConfigError

__all__ = ["SARA_EVAL_STEPS", "caption_generator"]

SARA_EVAL_STEPS = 50  # DiT steps of the SARA demo evaluation protocol when none are given

Generate = Callable[[list[str]], Tensor]


def caption_generator(pipe: Any, *, duration: float, steps: int | None = None, cfg: float | None = None,
                      vocoder_steps: int | None = None) -> tuple[Generate, dict[str, Any]]:
    """``(generate, settings)`` for ``pipe`` (a TextToAudio, LatentDiffusion / DCLDM or AudioGen).

    ``generate(captions)`` returns ``[B, N]`` float waveforms at ``pipe.sample_rate``, drawing its noise from
    the global RNG (seed it once before the loop); options left None take the model's defaults.
    ``settings`` records what was used (system, steps, cfg).

    Raises:
        ConfigError: an option the system does not read (``--vocoder-steps`` / ``--steps`` where they do not apply).
    """
    from sara.pipelines.text_to_audio import TextToAudio

    if isinstance(pipe, TextToAudio):
        return _sara(pipe, duration, steps, cfg, vocoder_steps)
    if vocoder_steps is not None:
        raise ConfigError("--vocoder-steps applies to SARA models only")
    if hasattr(pipe, "defaults") and hasattr(pipe, "generate_latents"):
        return _latent_diffusion(pipe, duration, steps, cfg)
    if steps is not None:
        raise ConfigError("--steps does not apply to AudioGen models")
    return _audiogen(pipe, duration, cfg)


def _sara(pipe: Any, duration: float, steps: int | None, cfg: float | None,
          vocoder_steps: int | None) -> tuple[Generate, dict[str, Any]]:
    steps = SARA_EVAL_STEPS if steps is None else steps
    cfg = pipe.default_guidance if cfg is None else cfg

    def generate(captions: list[str]) -> Tensor:
        with torch.inference_mode():
            return pipe(captions, duration=duration, steps=steps, guidance_scale=cfg, vocoder_steps=vocoder_steps)

    return generate, {"system": "sara", "steps": steps, "solver": pipe.sampling.solver, "cfg": cfg}


def _latent_diffusion(pipe: Any, duration: float, steps: int | None,
                      cfg: float | None) -> tuple[Generate, dict[str, Any]]:
    steps = pipe.defaults.steps if steps is None else steps
    cfg = pipe.defaults.guidance_scale if cfg is None else cfg

    def generate(captions: list[str]) -> Tensor:
        seed = int(torch.randint(0, 2**31 - 1, ()))  # from the global RNG: one seeded stream per evaluation
        with torch.inference_mode():
            return pipe(captions, duration=duration, steps=steps, guidance_scale=cfg, seed=seed)

    return generate, {"system": type(pipe).__name__, "steps": steps, "cfg": cfg,
                      "sampler": pipe.defaults.sampler}


def _audiogen(pipe: Any, duration: float, cfg: float | None) -> tuple[Generate, dict[str, Any]]:
    cfg = pipe.config.cfg_coef if cfg is None else cfg

    def generate(captions: list[str]) -> Tensor:
        seed = int(torch.randint(0, 2**31 - 1, ()))
        with torch.inference_mode():
            return pipe(captions, duration=duration, cfg_coef=cfg, seed=seed)

    return generate, {"system": "AudioGen", "steps": None, "cfg": cfg}
