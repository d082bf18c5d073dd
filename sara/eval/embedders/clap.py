"""LAION-CLAP through ``transformers.ClapModel`` loaded from a local directory (never downloaded).

Audio is made mono, resampled to 48 kHz and passed through the directory's feature extractor (which
repeat-pads / crops to 10 s as the checkpoint was trained); text goes through its tokenizer.  Both
embeddings are L2-normalised (``[D]``, 512 for the LAION checkpoints).  ``frames`` is the clip embedding
as one frame, so FAD over CLAP equals FD over CLAP, as in gudgud96's ``clap`` model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor

from sara.errors import CheckpointError
from sara.eval.embedders.base import AudioEmbedder, EmbedderOutput, file_fingerprint, prepare_mono

__all__ = ["ClapEmbedder"]


def _pooled(out: object) -> Tensor:
    """transformers 4.x returns a tensor from ``get_*_features``; 5.x an output whose ``pooler_output`` is it."""
    return out if isinstance(out, Tensor) else out.pooler_output  # type: ignore[attr-defined]


class ClapEmbedder(AudioEmbedder):
    """CLAP audio/text embedder from a local Hugging Face directory (``config.json`` + weights + processor)."""

    name = "clap"
    sample_rate = 48000

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from transformers import AutoFeatureExtractor, AutoTokenizer, ClapModel

        if not os.path.isdir(path):
            raise CheckpointError(f"{path}: CLAP needs a local model directory")
        try:
            self.model = ClapModel.from_pretrained(str(path), local_files_only=True).eval()
            self.feature_extractor = AutoFeatureExtractor.from_pretrained(str(path), local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except OSError as exc:
            raise CheckpointError(f"{path}: cannot load a CLAP model ({str(exc).splitlines()[0]})") from None
        self._weights_id = file_fingerprint(path)

    @property
    def cache_id(self) -> str:
        return f"clap-{self._weights_id}"

    @torch.inference_mode()
    def run(self, wav: Tensor, sample_rate: int) -> EmbedderOutput:
        x = prepare_mono(wav, sample_rate, self.sample_rate)
        inputs = self.feature_extractor(x.numpy(), sampling_rate=self.sample_rate, return_tensors="pt")
        emb = _pooled(self.model.get_audio_features(**inputs))[0].float()
        emb = emb / emb.norm().clamp(min=1e-12)
        return EmbedderOutput(frames=emb[None], clip=emb)

    @torch.inference_mode()
    def embed_text(self, texts: Sequence[str]) -> Tensor:
        """Normalised text embeddings ``[len(texts), D]``."""
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, max_length=77, return_tensors="pt")
        emb = _pooled(self.model.get_text_features(**tokens)).float()
        return emb / emb.norm(dim=-1, keepdim=True).clamp(min=1e-12)
