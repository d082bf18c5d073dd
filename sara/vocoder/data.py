"""Training data for the vocoder: random frame-aligned segments of audio, with optional cached latents.

Sources are corpus manifests (``*.jsonl``, one object per clip with ``path`` relative to the manifest and
``split``) or audio files / directories.  Each item is a ``segment_samples``-long crop at 24 kHz starting
on a latent-frame boundary (a multiple of 960 samples), so that cached latents ``[D, N]`` written by
``sara encode`` line up with it.  Silent crops are retried (RMS threshold) and, when latents are computed
on the fly, the segment is normalised to a random peak level (loudness augmentation).  Cached latents were
computed from the clip at its original level, and dasheng latents encode level, so with a cache the
audio keeps its original level (otherwise target and condition would disagree).  Only the crop is read.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
import torch
from safetensors import safe_open
from torch import Tensor
from torch.utils.data import Dataset

from sara.audio.dsp import resample
from sara.audio.io import AUDIO_EXTENSIONS
from sara.data.manifest import load_manifest, report_skipped
from sara.encoder.cache import find_cached_latents
from sara.errors import AudioError, ConfigError

__all__ = ["ClipRef", "SegmentDataset", "collate_segments", "list_clips", "read_segment"]


@dataclass(frozen=True)
class ClipRef:
    """One training clip: its audio file and the path of its latent-cache file relative to the cache root."""

    path: Path
    cache_rel: Path


def _manifest_clips(manifest: Path, split: str) -> list[ClipRef]:
    """Clips of ``split`` in a corpus manifest (ConfigError for malformed lines, before training starts)."""
    clips = []
    for item in load_manifest(manifest, required_keys=("path",)):
        if item.get("split", "train") == split:
            rel = Path(item["path"])
            clips.append(ClipRef(manifest.parent / rel, rel.with_suffix(".safetensors")))
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


def read_segment(path: Path, start: int, length: int, sample_rate: int = 24000) -> Tensor:
    """Read ``length`` samples starting at ``start`` (both at ``sample_rate``) as mono float32 ``[<=length]``.

    Only the needed part of the file is decoded; other rates are resampled with a small context margin.

    Raises:
        AudioError: the file cannot be read (e.g. deleted or damaged after training started) or holds
            non-finite samples.
    """
    try:
        info = sf.info(str(path))
        sr = info.samplerate
        margin = 0 if sr == sample_rate else 64
        a = max(0, math.floor(start * sr / sample_rate) - margin)
        b = min(info.frames, math.ceil((start + length) * sr / sample_rate) + margin)
        data, _ = sf.read(str(path), start=a, stop=b, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{path}: cannot read audio ({_first_line(exc)})") from None
    wav = torch.from_numpy(data.mean(axis=1))
    if not torch.isfinite(wav).all():
        raise AudioError(f"{path}: audio contains NaN or infinite samples")
    if sr != sample_rate:
        wav = resample(wav, sr, sample_rate)
        offset = round((start * sr / sample_rate - a) * sample_rate / sr)
        wav = wav[offset:]
    return wav[:length]


class SegmentDataset(Dataset):
    """Random (train) or fixed (valid) frame-aligned segments.

    Args:
        clips: the clips.
        segment_samples: crop length at ``sample_rate`` (a multiple of ``hop_length``).
        sample_rate: training rate in Hz (24000).
        hop_length: samples per latent frame (960).
        latent_cache: root of the latent cache (``<cache_rel>`` files), or None to encode on the fly.
        train: random crops (and random ``peak_db`` levels); otherwise the first crop (at ``peak_db[0]``).
        min_rms, rms_tries: a crop with RMS below ``min_rms`` is retried up to ``rms_tries`` times.
        peak_db: ``(low, high)`` peak level range in dBFS for the loudness augmentation; None keeps the
            original level (always the case with a latent cache).
    """

    def __init__(self, clips: list[ClipRef], segment_samples: int, *, sample_rate: int = 24000, hop_length: int = 960,
                 latent_cache: str | os.PathLike[str] | None = None, train: bool = True, min_rms: float = 0.005,
                 rms_tries: int = 3, peak_db: tuple[float, float] | None = (-6.0, -1.0)) -> None:
        if segment_samples % hop_length:
            raise ConfigError(f"segment_samples {segment_samples} is not a multiple of hop_length {hop_length}")
        self.segment, self.sample_rate, self.hop = segment_samples, sample_rate, hop_length
        self.cache = Path(latent_cache) if latent_cache is not None else None
        self._latent_paths: list[Path | None] = []
        self.clips, self._frames = self._usable(clips)
        self.train, self.min_rms, self.rms_tries = train, min_rms, rms_tries
        self.peak_db = None if self.cache is not None else peak_db

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
            latent = find_cached_latents(self.cache, clip.cache_rel, clip.path) if self.cache is not None else None
            if self.cache is not None and latent is None:  # e.g. too short for `sara encode`
                problems.append(f"{clip.path}: no cached latents in {self.cache}")
                continue
            frames[len(kept)] = int(info.frames * self.sample_rate // info.samplerate) // self.hop
            self._latent_paths.append(latent)
            kept.append(clip)
        report_skipped("clips", problems, len(clips))
        return kept, frames

    def __len__(self) -> int:
        return len(self.clips)

    def _num_frames(self, index: int) -> int:
        """Whole latent frames in the clip at ``sample_rate``."""
        return self._frames[index]

    def _crop(self, index: int, rng: random.Random) -> tuple[int, Tensor, bool]:
        """``(start frame, audio [<= segment], loud_enough)`` after up to ``rms_tries`` attempts."""
        seg_frames = self.segment // self.hop
        last = max(0, self._num_frames(index) - seg_frames)
        for _ in range(self.rms_tries):
            f0 = rng.randint(0, last) if self.train else 0
            wav = read_segment(self.clips[index].path, f0 * self.hop, self.segment, self.sample_rate)
            if wav.numel() and float(wav.pow(2).mean().sqrt()) >= self.min_rms:
                return f0, wav, True
            if not self.train:
                break
        return f0, wav, False

    def _latents(self, index: int, f0: int) -> Tensor:
        """Cached latents ``[D, segment / hop]`` for frames ``f0..``, zero-padded past the clip's end."""
        path = self._latent_paths[index]
        if path is None:
            raise AudioError(f"{self.clips[index].path}: no cached latents in {self.cache}; run `sara encode` first")
        n = self.segment // self.hop
        with safe_open(str(path), framework="pt") as f:
            z = f.get_slice("latents")[:, f0 : f0 + n]
        return torch.nn.functional.pad(z.float(), (0, n - z.shape[-1]))

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """``{"audio": [S], "length": [], "loud": [] bool, "latents": [D, S / hop] (with a cache)}``."""
        rng = random.Random(torch.randint(0, 2**62, ()).item()) if self.train else random.Random(index)
        f0, wav, loud = self._crop(index, rng)
        length = wav.numel()
        peak = float(wav.abs().max()) if length else 0.0
        if self.peak_db is not None and peak > 0:
            level = rng.uniform(*self.peak_db) if self.train else self.peak_db[0]
            wav = wav * (10.0 ** (level / 20.0) / peak)
        item = {"audio": torch.nn.functional.pad(wav, (0, self.segment - length)),
                "length": torch.tensor(length), "loud": torch.tensor(loud)}
        if self.cache is not None:
            item["latents"] = self._latents(index, f0)
        return item


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def collate_segments(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Stack items, dropping silent crops (all are kept if every crop is silent)."""
    loud = [it for it in items if bool(it["loud"])]
    items = loud or items
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}
