"""Listening samples during ``sara train ldm`` and the full-pipeline export of a trained UNet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["export_pipeline", "write_samples"]


@torch.no_grad()
def write_samples(unet: nn.Module, conditioner: Any, cfg: Any, latent_shape: tuple[int, int, int],
                  out_dir: Path) -> list[Path]:
    """Sample ``cfg.sample_prompts`` with DPM-Solver++ (Karras sigmas) and CFG; write ``<i>.safetensors``
    (``latents [C, H, W]``), and with ``cfg.vae`` ``mel [1, T, F]`` too, and with ``cfg.vocoder`` ``<i>.wav``.

    Args:
        unet: the (EMA) UNet; conditioner: its :class:`~sara.ldm.conditioning.TextConditioner`.
        cfg: the :class:`~sara.ldm.training.LDMTrainConfig` (prompts, steps, guidance, seed, vae, vocoder).
        latent_shape: ``(C, H, W)`` of one clip's latent (the cache's).

    Returns:
        The files written.
    """
    from safetensors.torch import save_file

    from sara.ldm.sampling import sample_latents
    from sara.ldm.schedulers import make_scheduler

    device = next(unet.parameters()).device
    conditioner.to(device)
    prompts = list(cfg.sample_prompts)
    cond, uncond = conditioner.encode_for_guidance(prompts)
    noise = torch.randn((len(prompts), *latent_shape), generator=torch.Generator().manual_seed(cfg.seed))
    latents = sample_latents(unet.eval(), make_scheduler("dpmsolver++", cfg.scheduler, karras_sigmas=True), cond,
                             uncond, noise.to(device), cfg.sample_steps, cfg.sample_guidance)
    mel = _decode_mel(cfg.vae, latents)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, lat in enumerate(latents):
        tensors = {"latents": lat.float().cpu().contiguous()}
        if mel is not None:
            tensors["mel"] = mel[i].float().cpu().contiguous()
        save_file(tensors, str(out_dir / f"{i}.safetensors"), metadata={"prompt": prompts[i]})
        written.append(out_dir / f"{i}.safetensors")
    if mel is not None and cfg.vocoder is not None:
        written += _write_audio(cfg.vocoder, mel, out_dir)
    (out_dir / "prompts.json").write_text(json.dumps(prompts, indent=1) + "\n")
    return written


def _decode_mel(vae_path: str | None, latents: torch.Tensor) -> torch.Tensor | None:
    """``[B, C, H, W]`` diffusion latents -> mel ``[B, 1, T, F]`` with the VAE release (None without one)."""
    if vae_path is None:
        return None
    from sara.mel.vae import MelVAE

    vae = MelVAE.from_pretrained(vae_path, map_location=latents.device)
    return vae.decode(latents)


def _write_audio(vocoder_path: str, mel: torch.Tensor, out_dir: Path) -> list[Path]:
    from sara.audio.io import save_audio
    from sara.mel.hifigan import HiFiGAN

    vocoder = HiFiGAN.from_pretrained(vocoder_path, map_location=mel.device)
    wav = vocoder(mel[:, 0]).float().cpu()
    paths = [out_dir / f"{i}.wav" for i in range(wav.shape[0])]
    for path, w in zip(paths, wav, strict=True):
        save_audio(path, w[None], vocoder.sample_rate)
    return paths


def export_pipeline(unet: nn.Module, cfg: Any, out_dir: Path) -> Path:
    """Write a LatentDiffusion release from a trained UNet and the task's ``vae``, ``vocoder`` and text spec."""
    from sara.mel.hifigan import HiFiGAN
    from sara.mel.vae import MelVAE
    from sara.pipelines.latent_diffusion import LatentDiffusion, ldm_text_encoder

    vae, vocoder = MelVAE.from_pretrained(cfg.vae), HiFiGAN.from_pretrained(cfg.vocoder)
    text = ldm_text_encoder(cfg.text_encoder, Path.cwd())
    pipe = LatentDiffusion(unet.cpu().eval(), vae, vocoder, text, scheduler_config=cfg.scheduler,
                           text_encoder_spec=cfg.text_encoder)
    return pipe.save_pretrained(out_dir)
