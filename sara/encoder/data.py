"""Encoder training data: audio files from a directory or a corpus manifest, as fixed-length crops.

Manifest: jsonl, one clip per line with ``path`` (relative to the manifest's directory), ``split`` and
``class`` (a string, or a list of strings for multi-label data).  Directory: every audio file under it; its
class is the path of the folder it sits in, relative to the root (files at the root are unlabelled).
Shards (``--shards``): :class:`AudioCropDecoder` makes the same items from the clips of WebDataset shards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from sara.audio.io import AUDIO_EXTENSIONS, load_audio
from sara.errors import ConfigError

__all__ = ["AudioCropDataset", "AudioCropDecoder", "Clip", "clips_from_dir", "clips_from_manifest", "labels_of",
           "readable_clips"]


@dataclass(frozen=True)
class Clip:
    """An audio file and its class names (empty when unlabelled)."""

    path: Path
    labels: tuple[str, ...] = ()


def clips_from_dir(root: str | Path) -> list[Clip]:
    """All audio files under ``root`` (sorted), labelled by their parent folder (root files: no label)."""
    base = Path(root)
    if not base.is_dir():
        raise ConfigError(f"{base}: no such data directory")
    files = sorted(f for f in base.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
    return [Clip(f, (f.parent.relative_to(base).as_posix(),) if f.parent != base else ()) for f in files]


def clips_from_manifest(manifest: str | Path, split: str | None) -> list[Clip]:
    """Clips of ``split`` (all when None) from a jsonl manifest (ConfigError for a malformed line)."""
    from sara.data.manifest import load_manifest

    path = Path(manifest)
    clips = []
    for row in load_manifest(path, required_keys=("path",)):
        if split is not None and row.get("split") != split:
            continue
        clips.append(Clip(path.parent / row["path"], labels_of(row)))
    return clips


def labels_of(record: dict[str, Any]) -> tuple[str, ...]:
    """The class names of a manifest record (``class``: a string or a list of strings; none when absent)."""
    label = record.get("class")
    return tuple(str(x) for x in label) if isinstance(label, list) else ((str(label),) if label is not None else ())


def readable_clips(clips: list[Clip]) -> list[Clip]:
    """The clips whose audio file can be opened; the others are reported (a line each and a count) and dropped."""
    import soundfile as sf

    from sara.data.manifest import report_skipped

    kept, problems = [], []
    for clip in clips:
        try:
            sf.info(str(clip.path))
            kept.append(clip)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            reason = "no such file" if not clip.path.exists() else (str(exc).strip().splitlines() or ["unreadable"])[0]
            problems.append(f"{clip.path}: {reason}")
    report_skipped("clips", problems, len(clips))
    return kept


class _CropMaker:
    """The crop, random gain and label encoding shared by the dataset and the shard decoder."""

    def __init__(self, crop_samples: int, sample_rate: int, random_crop: bool, gain_db: tuple[float, float] | None,
                 class_names: tuple[str, ...], multi_label: bool) -> None:
        self.crop_samples, self.sample_rate = crop_samples, sample_rate
        self.random_crop, self.gain_db = random_crop, gain_db
        self.class_index = {name: i for i, name in enumerate(class_names)}
        self.multi_label = multi_label

    def _item(self, wav: Tensor, labels: tuple[str, ...]) -> dict[str, Tensor]:
        """Mono ``wav [T]`` -> ``{"audio": [crop_samples], "label": ...}`` (crop, gain, labels)."""
        audio = self.crop(wav)
        if self.gain_db is not None:
            lo, hi = self.gain_db
            audio = audio * 10.0 ** ((lo + (hi - lo) * float(torch.rand(()))) / 20.0)
        item = {"audio": audio}
        if self.class_index:
            item["label"] = self.encode_labels(labels)
        return item

    def crop(self, wav: Tensor) -> Tensor:
        """``[T]`` -> ``[crop_samples]``: a random (or leading) window, zero-padded at the end if short."""
        n = self.crop_samples
        if wav.shape[-1] <= n:
            return torch.nn.functional.pad(wav, (0, n - wav.shape[-1]))
        start = int(torch.randint(0, wav.shape[-1] - n + 1, ())) if self.random_crop else 0
        return wav[start : start + n]

    def encode_labels(self, labels: tuple[str, ...]) -> Tensor:
        """Class names -> multi-hot ``[C]`` (multi-label) or a class index (single label)."""
        unknown = [lab for lab in labels if lab not in self.class_index]
        if unknown:
            raise ConfigError(f"labels {unknown} are not among the task's classes")
        if self.multi_label:
            target = torch.zeros(len(self.class_index))
            target[[self.class_index[lab] for lab in labels]] = 1.0
            return target
        if len(labels) != 1:
            raise ConfigError(f"single-label training needs exactly one class per clip, got {list(labels)}")
        return torch.tensor(self.class_index[labels[0]])


class AudioCropDataset(_CropMaker, Dataset):
    """Mono 16 kHz crops of ``crop_samples`` (zero-padded when shorter), with optional random gain.

    Items are ``{"audio": [T] float32, "label": [C] float32 multi-hot (or scalar int64 class index)}``;
    ``label`` is present only when ``class_names`` is given.
    """

    def __init__(
        self,
        clips: list[Clip],
        crop_samples: int,
        *,
        sample_rate: int = 16000,
        random_crop: bool = True,
        gain_db: tuple[float, float] | None = None,
        class_names: tuple[str, ...] = (),
        multi_label: bool = False,
    ) -> None:
        super().__init__(crop_samples, sample_rate, random_crop, gain_db, class_names, multi_label)
        self.clips = readable_clips(clips)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        clip = self.clips[index]
        wav, _ = load_audio(clip.path, sample_rate=self.sample_rate, mono=True)
        return self._item(wav[0], clip.labels)


class AudioCropDecoder(_CropMaker):
    """The items of :class:`AudioCropDataset` from clips of WebDataset shards (a ``ShardStream`` decoder);
    the class names come from each clip's ``json`` record.  Arguments as for :class:`AudioCropDataset`."""

    def __init__(self, crop_samples: int, *, sample_rate: int = 16000, random_crop: bool = True,
                 gain_db: tuple[float, float] | None = None, class_names: tuple[str, ...] = (),
                 multi_label: bool = False) -> None:
        super().__init__(crop_samples, sample_rate, random_crop, gain_db, class_names, multi_label)

    def __call__(self, sample: Any, position: int) -> dict[str, Tensor]:
        """The item of one :class:`~sara.data.shard_source.ShardSample`."""
        from sara.data.shard_source import load_sample_audio

        wav, _ = load_sample_audio(sample, sample_rate=self.sample_rate, mono=True)
        return self._item(wav[0], labels_of(sample.meta))


def crop_samples_for(seconds: float, sample_rate: int) -> int:
    """Crop length in samples (rounded up)."""
    return int(math.ceil(seconds * sample_rate))
