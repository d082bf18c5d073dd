"""Reconstruction through an EnCodec tokenizer: waveform -> codes (all codebooks) -> decoded waveform, behind
the ``reconstruct`` interface of :func:`sara.eval.runner.evaluate_reconstruction` (so ``sara eval
reconstruction`` scores a codec, or an AudioGen model's codec, like a SARA vocoder).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sara.audio.dsp import resample

__all__ = ["CodecReconstructor"]


class CodecReconstructor:
    """``reconstruct(wav [1, C, T], sr) -> [1, T']`` at the codec's rate (mono, the codec's channel count 1).

    Args:
        codec: an :class:`~sara.codec.model.EncodecCodec` (or any object with ``encode`` / ``decode`` /
            ``sample_rate``), e.g. ``AudioGen.codec``.
    """

    def __init__(self, codec: Any) -> None:
        self.codec = codec
        self.sample_rate = int(codec.sample_rate)

    @torch.inference_mode()
    def reconstruct(self, wav: Tensor, sample_rate: int, steps: int | None = None, seed: int = 0) -> Tensor:
        """Mono mix of ``wav [1, C, T]`` at ``sample_rate`` -> ``[1, T']`` at ``self.sample_rate``, trimmed to the
        input length (``steps`` / ``seed`` are unused: the codec is deterministic)."""
        mono = resample(wav.reshape(wav.shape[-2] if wav.dim() == 3 else 1, -1).mean(0), sample_rate,
                        self.sample_rate)
        device = next(iter(self.codec.parameters())).device if hasattr(self.codec, "parameters") else "cpu"
        codes = self.codec.encode(mono[None, None].to(device))
        return self.codec.decode(codes)[:, 0, : mono.numel()].cpu()
