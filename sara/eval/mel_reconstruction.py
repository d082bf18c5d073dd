"""Reconstruction through a latent-diffusion system's autoencoder path: waveform -> Tango's log-mel -> mel-VAE
latents (posterior mode) -> VAE decode -> HiFi-GAN -> 16 kHz waveform, behind the ``reconstruct`` interface of
:func:`sara.eval.runner.evaluate_reconstruction` (so ``sara eval reconstruction`` scores it like a SARA vocoder).

Tango's front end removes the mean and scales the peak to 0.5 before the mel; the output is scaled back by the
same factor so that level-sensitive distances compare like with like.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from sara.audio.dsp import resample

__all__ = ["MelReconstructor"]


class MelReconstructor:
    """``reconstruct(wav [1, C, T], sr) -> [1, T16]`` through ``pipe.vae`` and ``pipe.vocoder``.

    Args:
        pipe: a :class:`~sara.pipelines.latent_diffusion.LatentDiffusion` (or DCLDM).
    """

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.sample_rate = int(pipe.sample_rate)

    def _frames(self, num_samples: int) -> int:
        """Mel frames covering ``num_samples`` at 16 kHz, rounded up to the VAE's downsampling factor."""
        hop, factor = self.pipe.mel_config.hop_length, int(self.pipe.vae.downsample_factor)
        return max(factor, math.ceil(math.ceil(num_samples / hop) / factor) * factor)

    @torch.inference_mode()
    def reconstruct(self, wav: Tensor, sample_rate: int, steps: int | None = None, seed: int = 0) -> Tensor:
        """Mono mix of ``wav [1, C, T]`` at ``sample_rate`` -> reconstruction ``[1, T16]`` at 16 kHz
        (``steps`` / ``seed`` are unused: the path is deterministic)."""
        mono = resample(wav.reshape(wav.shape[-2] if wav.dim() == 3 else 1, -1).mean(0), sample_rate,
                        self.sample_rate)
        frames = self._frames(mono.numel())
        mel = self.pipe.log_mel(mono[None], self.sample_rate, frames=frames)
        z = self.pipe.vae.encode_latents(mel[:, None].to(self.pipe.device), sample=False)
        audio = self.pipe.decode_latents(z)[:, : mono.numel()].cpu()
        peak = float((mono - mono.mean()).abs().max())
        return audio * (peak / 0.5) if peak > 0 else audio
