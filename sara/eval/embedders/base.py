"""The one interface every evaluation embedding model implements.

An :class:`AudioEmbedder` turns one clip into an :class:`EmbedderOutput`:

* ``frames [N_frames, D]``: per-frame embeddings (FAD statistics, frame-level probes);
* ``clip [D_clip]``: one clip-level vector (FD statistics, clip-level probes);
* ``logits [C]`` or None: pre-activation class scores (KL, IS) where the model is a classifier.

Each embedder declares the ``sample_rate`` it runs at and resamples its input itself, so callers may pass
audio at any rate.  ``cache_id`` identifies the model and its weights for the on-disk embedding cache.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch
from torch import Tensor

from sara.audio.dsp import resample
from sara.errors import AudioError

__all__ = ["AudioEmbedder", "EmbedderOutput", "file_fingerprint", "prepare_mono"]


@dataclass
class EmbedderOutput:
    """Embeddings of one clip (float32, CPU).

    Attributes:
        frames: ``[N_frames, D]`` per-frame embeddings.
        clip: ``[D_clip]`` clip-level embedding.
        logits: ``[C]`` class logits (before softmax/sigmoid), or None.
    """

    frames: Tensor
    clip: Tensor
    logits: Tensor | None = None


class AudioEmbedder(ABC):
    """Base class: subclasses set ``name``, ``sample_rate``, ``activation`` and implement :meth:`run`."""

    name: ClassVar[str]
    #: how ``logits`` become probabilities: "softmax" (multiclass), "sigmoid" (multilabel) or None
    activation: ClassVar[Literal["softmax", "sigmoid"] | None] = None
    sample_rate: int

    @abstractmethod
    def run(self, wav: Tensor, sample_rate: int) -> EmbedderOutput:
        """Embed one clip ``wav [C, T]`` or ``[T]`` at ``sample_rate`` Hz."""

    @property
    @abstractmethod
    def cache_id(self) -> str:
        """A string that changes whenever the embeddings would change (model kind, config, weights)."""

    def embed(self, wav: Tensor, sample_rate: int) -> Tensor:
        """Per-frame embeddings ``[N_frames, D]``."""
        return self.run(wav, sample_rate).frames

    def logits(self, wav: Tensor, sample_rate: int) -> Tensor | None:
        """Clip logits ``[C]`` or None for models without a classifier head."""
        return self.run(wav, sample_rate).logits

    def probs(self, wav: Tensor, sample_rate: int) -> Tensor | None:
        """Class probabilities ``[C]`` (softmax or sigmoid, as the model was trained) or None."""
        logits = self.logits(wav, sample_rate)
        if logits is None or self.activation is None:
            return None
        return logits.softmax(-1) if self.activation == "softmax" else logits.sigmoid()


def prepare_mono(
    wav: Tensor,
    sample_rate: int,
    target_rate: int,
    *,
    channel: Literal["first", "mean"] = "mean",
    remove_dc: bool = False,
    min_samples: int = 0,
) -> Tensor:
    """Bring a clip to the mono float32 ``[T]`` signal an embedding model expects.

    Args:
        wav: ``[T]`` or ``[C, T]``.
        sample_rate: Hz of ``wav``.
        target_rate: Hz the model runs at (torchaudio-default sinc resampling).
        channel: keep the first channel (audioldm_eval) or average channels.
        remove_dc: subtract the clip mean (audioldm_eval does).
        min_samples: zero-pad at the end to at least this many samples (after resampling).

    Returns:
        ``[T']`` float32 at ``target_rate``.
    """
    if wav.dim() == 1:
        x = wav
    elif wav.dim() == 2:
        x = wav[0] if channel == "first" else wav.mean(0)
    else:
        raise AudioError(f"expected audio [T] or [C, T], got {tuple(wav.shape)}")
    x = x.float()
    if x.numel() == 0:
        raise AudioError("audio is empty")
    if remove_dc:
        x = x - x.mean()
    if sample_rate != target_rate:
        x = resample(x, sample_rate, target_rate)
    if x.shape[-1] < min_samples:
        x = torch.nn.functional.pad(x, (0, min_samples - x.shape[-1]))
    return x


def file_fingerprint(path: str | os.PathLike[str], *, max_bytes: int = 1 << 20) -> str:
    """Short hash of a weights file's size, mtime and first ``max_bytes`` (for ``cache_id``)."""
    p = Path(path)
    h = hashlib.sha1()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(max_bytes))
    return h.hexdigest()[:16]
