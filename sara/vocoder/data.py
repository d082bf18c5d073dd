"""Training data for the vocoder: random frame-aligned segments of audio, with optional cached latents.

Sources are corpus manifests (``*.jsonl``, one object per clip with ``path`` relative to the manifest and
``split``) or audio files / directories.  Each item is a ``segment_samples``-long crop at 24 kHz starting
on a latent-frame boundary (a multiple of 960 samples), so that cached latents ``[D, N]`` written by
``sara encode`` line up with it.  Silent crops are retried (RMS threshold) and, when latents are computed
on the fly, the segment is normalised to a random peak level (loudness augmentation).  Cached latents were
computed from the clip at its original level, and dasheng latents encode level, so with a cache the
audio keeps its original level (otherwise target and condition would disagree).  Only the crop is read.

The latent cache is either layout of :func:`sara.data.latent_store.open_latent_cache` (per-file, or the
sharded store, looked up by clip key).  :class:`SegmentDecoder` makes the same items from the clips of
WebDataset shards (``--shards``; latents from the shards' ``latents.npy`` members or from a cache).
"""

from __future__ import annotations

import io
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf
import torch
from torch import Tensor
from torch.utils.data import Dataset

from sara.audio.dsp import resample
from sara.audio.io import AUDIO_EXTENSIONS
from sara.data.balance import class_weights
from sara.data.manifest import load_manifest, report_skipped
from sara.errors import AudioError, ConfigError

__all__ = ["ClipRef", "SegmentDataset", "SegmentDecoder", "collate_segments", "list_clips", "read_segment",
           "segment_stream", "shard_latent_source"]


@dataclass(frozen=True)
class ClipRef:
    """One training clip: its audio file, the path of its latent-cache file relative to the cache root, its
    key in a sharded latent store (the manifest ``id``; None: ``cache_rel`` without suffix) and its manifest
    ``class`` (None for plain files; used by class-balanced sampling)."""

    path: Path
    cache_rel: Path
    key: str | None = None
    label: str | None = None

    @property
    def store_key(self) -> str:
        """The clip's key in a sharded latent store."""
        return self.key if self.key is not None else self.cache_rel.with_suffix("").as_posix()


def _manifest_clips(manifest: Path, split: str) -> list[ClipRef]:
    """Clips of ``split`` in a corpus manifest (ConfigError for malformed lines, before training starts)."""
    from sara.data.shards import clip_key

    clips = []
    for item in load_manifest(manifest, required_keys=("path",)):
        if item.get("split", "train") == split:
            rel = Path(item["path"])
            clips.append(ClipRef(manifest.parent / rel, rel.with_suffix(".safetensors"), clip_key(item),
                                 item.get("class")))
    return clips


def list_clips(sources: tuple[str, ...], split: str = "train") -> list[ClipRef]:
    """Expand manifests (items of ``split``), directories (all audio inside) and files into clips."""
    clips: list[ClipRef] = []
    for src in sources:
        p = Path(src)
        if p.suffix == ".jsonl" and p.is_file():
            clips += _manifest_clips(p, split)
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
            clips += [ClipRef(f, f.relative_to(p).with_suffix(".safetensors")) for f in files]
        elif p.is_file():
            clips.append(ClipRef(p, Path(p.name).with_suffix(".safetensors")))
        else:
            raise ConfigError(f"{p}: no such manifest, directory or audio file")
    return clips


def read_segment(path: Path | bytes, start: int, length: int, sample_rate: int = 24000, *,
                 name: str | None = None) -> Tensor:
    """Read ``length`` samples starting at ``start`` (both at ``sample_rate``) as mono float32 ``[<=length]``.

    Only the needed part of the file is decoded; other rates are resampled with a small context margin.

    Args:
        path: the audio file, or its bytes (a clip read from a shard).
        name: what errors call it (default: ``path``).

    Raises:
        AudioError: the file cannot be read (e.g. deleted or damaged after training started) or holds
            non-finite samples.
    """
    name = name if name is not None else str(path)
    try:
        with sf.SoundFile(io.BytesIO(path) if isinstance(path, bytes) else str(path)) as f:
            sr = f.samplerate
            margin = 0 if sr == sample_rate else 64
            a = max(0, math.floor(start * sr / sample_rate) - margin)
            b = min(f.frames, math.ceil((start + length) * sr / sample_rate) + margin)
            f.seek(a)
            data = f.read(max(0, b - a), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{name}: cannot read audio ({_first_line(exc)})") from None
    wav = torch.from_numpy(data.mean(axis=1))
    if not torch.isfinite(wav).all():
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    if sr != sample_rate:
        wav = resample(wav, sr, sample_rate)
        offset = round((start * sr / sample_rate - a) * sample_rate / sr)
        wav = wav[offset:]
    return wav[:length]


class _SegmentMaker:
    """The crop, silence retry and loudness augmentation shared by the dataset and the shard decoder."""

    def __init__(self, segment_samples: int, sample_rate: int, hop_length: int, train: bool, min_rms: float,
                 rms_tries: int, peak_db: tuple[float, float] | None) -> None:
        if segment_samples % hop_length:
            raise ConfigError(f"segment_samples {segment_samples} is not a multiple of hop_length {hop_length}")
        self.segment, self.sample_rate, self.hop = segment_samples, sample_rate, hop_length
        self.train, self.min_rms, self.rms_tries, self.peak_db = train, min_rms, rms_tries, peak_db

    def _crop(self, read: Callable[[int], Tensor], num_frames: int, rng: random.Random) -> tuple[int, Tensor, bool]:
        """``(start frame, audio [<= segment], loud_enough)`` after up to ``rms_tries`` attempts;
        ``read(start sample)`` reads ``segment`` samples."""
        seg_frames = self.segment // self.hop
        last = max(0, num_frames - seg_frames)
        for _ in range(self.rms_tries):
            f0 = rng.randint(0, last) if self.train else 0
            wav = read(f0 * self.hop)
            if wav.numel() and float(wav.pow(2).mean().sqrt()) >= self.min_rms:
                return f0, wav, True
            if not self.train:
                break
        return f0, wav, False

    def _item(self, read: Callable[[int], Tensor], num_frames: int, rng: random.Random,
              latents: Callable[[int], Tensor] | None) -> dict[str, Tensor]:
        """One item (see :meth:`SegmentDataset.__getitem__`); ``latents(f0)`` gives ``[D, segment / hop]``."""
        f0, wav, loud = self._crop(read, num_frames, rng)
        length = wav.numel()
        peak = float(wav.abs().max()) if length else 0.0
        if self.peak_db is not None and peak > 0:
            level = rng.uniform(*self.peak_db) if self.train else self.peak_db[0]
            wav = wav * (10.0 ** (level / 20.0) / peak)
        item = {"audio": torch.nn.functional.pad(wav, (0, self.segment - length)),
                "length": torch.tensor(length), "loud": torch.tensor(loud)}
        if latents is not None:
            item["latents"] = latents(f0)
        return item

    def _rng(self, index: int) -> random.Random:
        """Random (train: from the global torch RNG, seeded per item by the loop) or fixed per index."""
        return random.Random(torch.randint(0, 2**62, ()).item()) if self.train else random.Random(index)

    def _pad_latents(self, z: Tensor) -> Tensor:
        """``[D, <= n]`` -> float32 ``[D, n]`` (``n = segment / hop``), zero-padded past the clip's end."""
        n = self.segment // self.hop
        return torch.nn.functional.pad(z.float(), (0, n - z.shape[-1]))


class SegmentDataset(_SegmentMaker, Dataset):
    """Random (train) or fixed (valid) frame-aligned segments.

    Args:
        clips: the clips.
        segment_samples: crop length at ``sample_rate`` (a multiple of ``hop_length``).
        sample_rate: training rate in Hz (24000).
        hop_length: samples per latent frame (960).
        latent_cache: a latent cache (per-file directory or sharded store), or None to encode on the fly.
        train: random crops (and random ``peak_db`` levels); otherwise the first crop (at ``peak_db[0]``).
        min_rms, rms_tries: a crop with RMS below ``min_rms`` is retried up to ``rms_tries`` times.
        peak_db: ``(low, high)`` peak level range in dBFS for the loudness augmentation; None keeps the
            original level (always the case with a latent cache).
        class_balance: exponent ``a`` of class re-balancing (0 = off): :attr:`sample_weights` become
            ``n_class ** -a`` so that thin classes are drawn more often (clips without a class count as one class).

    Attributes:
        sample_weights: ``[len(self)]`` float64 weights for the training loop's sampler, or None (uniform).
    """

    def __init__(self, clips: list[ClipRef], segment_samples: int, *, sample_rate: int = 24000, hop_length: int = 960,
                 latent_cache: str | os.PathLike[str] | None = None, train: bool = True, min_rms: float = 0.005,
                 rms_tries: int = 3, peak_db: tuple[float, float] | None = (-6.0, -1.0),
                 class_balance: float = 0.0) -> None:
        super().__init__(segment_samples, sample_rate, hop_length, train, min_rms, rms_tries,
                         None if latent_cache is not None else peak_db)
        from sara.data.latent_store import open_latent_cache

        self.cache = open_latent_cache(latent_cache) if latent_cache is not None else None
        self._latent_refs: list[str | None] = []
        self.clips, self._frames = self._usable(clips)
        self.sample_weights = class_weights([c.label for c in self.clips], class_balance)

    def _usable(self, clips: list[ClipRef]) -> tuple[list[ClipRef], dict[int, int]]:
        """Clips whose audio is readable (and, with a cache, whose latents exist), with their frame counts;
        the others are reported (one line each and a count) and skipped."""
        kept, frames, problems = [], {}, []
        for clip in clips:
            try:
                info = sf.info(str(clip.path))
            except (sf.LibsndfileError, RuntimeError, OSError) as exc:
                problems.append(f"{clip.path}: {'no such file' if not clip.path.exists() else _first_line(exc)}")
                continue
            ref = self.cache.locate(clip.store_key, clip.cache_rel, clip.path) if self.cache is not None else None
            if self.cache is not None and ref is None:  # e.g. too short for `sara encode`
                problems.append(f"{clip.path}: no cached latents in {self.cache}")
                continue
            frames[len(kept)] = int(info.frames * self.sample_rate // info.samplerate) // self.hop
            self._latent_refs.append(ref)
            kept.append(clip)
        report_skipped("clips", problems, len(clips))
        return kept, frames

    def __len__(self) -> int:
        return len(self.clips)

    def _latents(self, index: int, f0: int) -> Tensor:
        """Cached latents ``[D, segment / hop]`` for frames ``f0..``, zero-padded past the clip's end."""
        ref = self._latent_refs[index]
        if ref is None or self.cache is None:
            raise AudioError(f"{self.clips[index].path}: no cached latents in {self.cache}; run `sara encode` first")
        return self._pad_latents(self.cache.read(ref, f0, self.segment // self.hop))

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """``{"audio": [S], "length": [], "loud": [] bool, "latents": [D, S / hop] (with a cache)}``."""
        rng = self._rng(index)
        path = self.clips[index].path

        def read(start: int) -> Tensor:
            return read_segment(path, start, self.segment, self.sample_rate)

        latents = (lambda f0: self._latents(index, f0)) if self.cache is not None else None
        return self._item(read, self._frames[index], rng, latents)


class SegmentDecoder(_SegmentMaker):
    """The items of :class:`SegmentDataset` from clips of WebDataset shards (a ``ShardStream`` decoder).

    Args:
        segment_samples, sample_rate, hop_length, train, min_rms, rms_tries, peak_db: as for
            :class:`SegmentDataset` (``peak_db`` is ignored with latents).
        latents: ``"shards"`` (the shards' ``latents.npy`` members), a latent cache path (looked up by clip
            key), or None (latents computed on the fly by the task).
    """

    def __init__(self, segment_samples: int, *, sample_rate: int = 24000, hop_length: int = 960,
                 latents: str | None = None, train: bool = True, min_rms: float = 0.005, rms_tries: int = 3,
                 peak_db: tuple[float, float] | None = (-6.0, -1.0)) -> None:
        super().__init__(segment_samples, sample_rate, hop_length, train, min_rms, rms_tries,
                         None if latents is not None else peak_db)
        self.latents = latents
        self._cache: Any = None

    def __call__(self, sample: Any, position: int) -> dict[str, Tensor]:
        """The item of one :class:`~sara.data.shard_source.ShardSample` (``position``: its stream place)."""
        if sample.audio is None:
            raise AudioError(f"{sample.where}: no audio member in the shard")
        try:
            info = sf.info(io.BytesIO(sample.audio))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioError(f"{sample.where}: cannot read audio ({_first_line(exc)})") from None
        frames = int(info.frames * self.sample_rate // info.samplerate) // self.hop

        def read(start: int) -> Tensor:
            return read_segment(sample.audio, start, self.segment, self.sample_rate, name=sample.where)

        latents = (lambda f0: self._latents_of(sample, f0)) if self.latents is not None else None
        return self._item(read, frames, self._rng(position), latents)

    def _latents_of(self, sample: Any, f0: int) -> Tensor:
        """``[D, segment / hop]`` latents of the clip from frame ``f0`` (zero-padded)."""
        n = self.segment // self.hop
        if self.latents == "shards":
            if sample.latents is None:
                raise AudioError(f"{sample.where}: no latents.npy member (shard with `sara data shard --latent-cache`)")
            return self._pad_latents(torch.from_numpy(sample.latents[:, f0:f0 + n].copy()))
        if self._cache is None:
            from sara.data.latent_store import open_latent_cache

            self._cache = open_latent_cache(self.latents)  # type: ignore[arg-type]
        ref = self._cache.locate(sample.clip_key, Path(str(sample.meta.get("path", sample.clip_key))))
        if ref is None:
            raise AudioError(f"{sample.where}: no cached latents for {sample.clip_key} in {self._cache}")
        return self._pad_latents(self._cache.read(ref, f0, n))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": None}  # reopened in each worker


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def collate_segments(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Stack items, dropping silent crops (all are kept if every crop is silent)."""
    loud = [it for it in items if bool(it["loud"])]
    items = loud or items
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def shard_latent_source(spec: str, latent_cache: str | None) -> str | None:
    """Where a stream's latents come from: ``latent_cache`` when given, else ``"shards"`` when the shards
    hold latents (``sara data shard --latent-cache``), else None (computed on the fly)."""
    if latent_cache is not None:
        return latent_cache
    from sara.data.shard_source import resolve_shards

    _, index = resolve_shards(spec)
    return "shards" if index is not None and index.latent_dim is not None else None


def segment_stream(spec: str, segment_samples: int, *, split: str, train: bool, shuffle_buffer: int = 512,
                   **decoder: Any) -> Any:
    """A :class:`~sara.data.stream.ShardStream` of :class:`SegmentDecoder` items (``decoder``: its keywords)."""
    from sara.data.stream import ShardStream

    return ShardStream(spec, SegmentDecoder(segment_samples, train=train, **decoder), split=split, train=train,
                       shuffle_buffer=shuffle_buffer)
