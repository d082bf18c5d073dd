"""Log-mel spectrogram features: the baseline the semantic latents are compared with in probes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sara.audio.dsp import mel_filterbank, spectrogram
from sara.eval.embedders.base import AudioEmbedder, EmbedderOutput, prepare_mono

__all__ = ["MelConfig", "MelEmbedder", "log_mel"]


@dataclass(frozen=True)
class MelConfig:
    """Log-mel front end: 16 kHz, 64 ms window, 10 ms hop, 128 HTK mels, ``log(mel + 1e-5)`` of power."""

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 160
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None
    log_offset: float = 1e-5


def log_mel(x: Tensor, config: MelConfig, fb: Tensor | None = None) -> Tensor:
    """``[..., T]`` at ``config.sample_rate`` -> log-mel ``[..., N, n_mels]`` (frames first)."""
    if fb is None:
        fb = mel_filterbank(config.n_fft // 2 + 1, config.n_mels, config.sample_rate, config.f_min, config.f_max)
    power = spectrogram(x, config.n_fft, config.hop_length)  # [..., F, N]
    return torch.log(torch.matmul(power.transpose(-1, -2), fb) + config.log_offset)


class MelEmbedder(AudioEmbedder):
    """``frames`` = log-mel frames ``[N, n_mels]`` at 100 Hz, ``clip`` = their mean; no logits."""

    name = "mel"

    def __init__(self, config: MelConfig | None = None) -> None:
        self.config = config or MelConfig()
        self.sample_rate = self.config.sample_rate
        self._fb = mel_filterbank(self.config.n_fft // 2 + 1, self.config.n_mels, self.sample_rate,
                                  self.config.f_min, self.config.f_max)

    @property
    def cache_id(self) -> str:
        c = self.config
        return f"mel-{c.sample_rate}-{c.n_fft}-{c.hop_length}-{c.n_mels}-{c.f_min}-{c.f_max}-{c.log_offset}"

    @torch.inference_mode()
    def run(self, wav: Tensor, sample_rate: int) -> EmbedderOutput:
        x = prepare_mono(wav, sample_rate, self.sample_rate, min_samples=self.config.n_fft)
        frames = log_mel(x, self.config, self._fb).float()
        return EmbedderOutput(frames=frames, clip=frames.mean(0))
