"""Codec training data: audio windows at the codec rate, and random crops drawn from checkpointed counters.

Sources are corpus manifests (``*.jsonl`` with ``path`` relative to the manifest and ``split``), audio
directories or files (:func:`sara.vocoder.data.list_clips`).  The dataset is deterministic: item ``i`` is a
fixed window (at most ``window_samples``; longer files are split into consecutive windows) decoded and
resampled to the codec rate (e.g. the corpus' 24 kHz to 16 kHz).  The random training crop is taken in
the task from that window with :func:`random_crops`, whose ``torch.Generator`` is seeded from
``(seed, batches seen)`` -- the batch counter being a buffer of the trained module, restored on resume.

Why not crop in the dataset with a generator seeded from ``(seed, epoch, index)``: the dataset does not
reliably know the epoch.  accelerate forwards ``set_epoch`` to the dataset only on its plain single-process
loader; the loader it builds to skip the consumed batches of a resumed epoch (and its multi-process sharded
loader) do not, so a run resumed mid-epoch would read other crops than an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import soundfile as sf
import torch
from torch import Tensor
from torch.utils.data import Dataset

from sara.vocoder.data import ClipRef, read_segment

__all__ = ["AudioWindow", "CodecWindowDataset", "collate_windows", "item_seed", "random_crops"]


def item_seed(seed: int, stream: int, index: int) -> int:
    """A 63-bit seed that is a fixed function of ``(seed, stream, index)``."""
    return ((seed * 1_000_003 + stream) * 1_000_000_007 + index) % (2**63 - 1)


@dataclass(frozen=True)
class AudioWindow:
    """``length`` samples of ``clip`` from ``start`` (both at the codec rate)."""

    clip: ClipRef
    start: int
    length: int


def split_windows(clips: list[ClipRef], window_samples: int, sample_rate: int) -> list[AudioWindow]:
    """Consecutive windows of at most ``window_samples`` covering every clip (empty clips are skipped)."""
    windows = []
    for clip in clips:
        info = sf.info(str(clip.path))
        total = int(info.frames * sample_rate // info.samplerate)
        windows += [AudioWindow(clip, s, min(window_samples, total - s)) for s in range(0, total, window_samples)]
    return windows


class CodecWindowDataset(Dataset):
    """Fixed audio windows ``{"audio": [L <= window_samples] float32}`` at ``sample_rate`` Hz.

    Args:
        clips: the clips.
        window_samples: longest window (longer files become several items).
        sample_rate: codec rate in Hz.
    """

    def __init__(self, clips: list[ClipRef], window_samples: int, *, sample_rate: int = 16000) -> None:
        self.sample_rate = sample_rate
        self.windows = split_windows(clips, window_samples, sample_rate)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, Tensor]:  # noqa: D105 - see class docstring
        w = self.windows[index]
        return {"audio": read_segment(w.clip.path, w.start, w.length, self.sample_rate)}


def collate_windows(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """``{"audio": [B, L_max] zero-padded, "length": [B] long}``."""
    lengths = torch.tensor([it["audio"].numel() for it in items], dtype=torch.long)
    audio = torch.zeros(len(items), int(lengths.max()))
    for i, it in enumerate(items):
        audio[i, : it["audio"].numel()] = it["audio"]
    return {"audio": audio, "length": lengths}


def random_crops(audio: Tensor, length: Tensor, segment: int, generator: torch.Generator | None, *,
                 min_rms: float = 0.0, tries: int = 1) -> Tensor:
    """One ``segment``-long crop per row of ``audio [B, L]`` (valid lengths ``length [B]``), zero-padded.

    With a ``generator`` the start is uniform over the valid range, re-drawn up to ``tries`` times while the
    crop's RMS is below ``min_rms``; without one every crop starts at 0 (validation).

    Returns:
        ``[B, segment]``.
    """
    padded = torch.nn.functional.pad(audio, (0, max(0, segment - audio.shape[-1])))
    crops = []
    for row, n in zip(padded, length.tolist()):
        last = max(0, n - segment)
        for _ in range(max(1, tries) if generator is not None else 1):
            start = int(torch.randint(0, last + 1, (), generator=generator)) if generator is not None else 0
            crop = row[start : start + segment]
            if float(crop.pow(2).mean().sqrt()) >= min_rms:
                break
        crops.append(crop)
    return torch.stack(crops)
