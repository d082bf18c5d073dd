"""The semantic encoder itself as an embedder: frames = latents at 25 Hz, clip = their time mean."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor

from sara.eval.embedders.base import AudioEmbedder, EmbedderOutput, file_fingerprint

__all__ = ["SemanticEmbedder"]


class SemanticEmbedder(AudioEmbedder):
    """Wraps anything with ``sample_rate`` and ``encode(wav [B, C, T], sr) -> [B, D, N]`` (``sara.SemanticEncoder``).

    ``frames`` = ``[N, D]`` latents (25 Hz), ``clip`` = mean over frames ``[D]``; no logits.
    """

    name = "semantic"

    def __init__(self, encoder: Any, weights_id: str = "in-memory") -> None:
        self.encoder = encoder
        self.sample_rate = int(encoder.sample_rate)
        self._weights_id = weights_id

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str]) -> SemanticEmbedder:
        """Load ``sara.SemanticEncoder.from_pretrained(path)``."""
        from sara.hub import local_path

        path = local_path(path)  # a hub id or URL -> its cached copy
        from sara.encoder import SemanticEncoder

        return cls(SemanticEncoder.from_pretrained(path), file_fingerprint(path))

    @property
    def cache_id(self) -> str:
        return f"semantic-{self._weights_id}"

    @torch.inference_mode()
    def run(self, wav: Tensor, sample_rate: int) -> EmbedderOutput:
        x = wav.reshape(1, -1, wav.shape[-1]).float()  # [1, C, T]
        latents = self.encoder.encode(x, sample_rate)[0]  # [D, N]
        frames = latents.transpose(0, 1).float().cpu()
        return EmbedderOutput(frames=frames, clip=frames.mean(0))
