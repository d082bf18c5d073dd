"""Turn a :class:`~sara.data.clips.RawClip` into corpus wav files: mono, resampled, trimmed, cut, normalised.

Results are cached per clip in ``<out>/.cache/clips/<source>/<uid>.json`` (the written segments or the
reason for skipping), so a second run reuses finished work without decoding audio again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from sara.audio.dsp import resample
from sara.data.clips import RawClip
from sara.errors import AudioError

__all__ = ["ProcessConfig", "cut_segments", "process_clip", "trim_silence"]

CACHE_VERSION = 1


@dataclass(frozen=True)
class ProcessConfig:
    """Audio processing settings.

    Attributes:
        sample_rate: output rate in Hz.
        max_duration: longest output clip in seconds.
        min_duration: shorter clips (after trimming) are dropped, seconds.
        min_last_segment: a trailing segment of a long file is kept only if at least this long, seconds.
        silence_db: frames this far below the clip's peak count as silence when trimming, dB.
        min_rms: clips with a lower RMS (after trimming) are dropped as silent (before normalisation).
        peak: peak level the clip is normalised to (linear).
    """

    sample_rate: int = 24000
    max_duration: float = 10.0
    min_duration: float = 0.1
    min_last_segment: float = 3.0
    silence_db: float = 50.0
    min_rms: float = 3e-4
    peak: float = 0.9

    def cache_tag(self) -> str:
        """A short string that changes whenever a setting that affects the audio changes."""
        return hashlib.sha256(repr((CACHE_VERSION, self)).encode()).hexdigest()[:8]


def to_rate(wav: np.ndarray, sr: int, target: int) -> np.ndarray:
    """Resample ``[T]`` float32 audio from ``sr`` to ``target`` Hz with :func:`sara.audio.dsp.resample`."""
    if sr == target:
        return wav.astype(np.float32)
    return resample(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)), sr, target).numpy()


def trim_silence(wav: np.ndarray, sr: int, silence_db: float, margin_s: float = 0.05) -> np.ndarray:
    """Cut leading/trailing frames (10 ms) quieter than ``silence_db`` below the peak frame, keeping a margin."""
    hop = max(1, sr // 100)
    n = len(wav) // hop
    if n == 0:
        return wav
    rms = np.sqrt(np.mean(wav[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(rms > rms.max() * 10 ** (-silence_db / 20))[0]
    if len(loud) == 0:
        return wav[:0]
    margin = int(margin_s * sr)
    start = max(0, loud[0] * hop - margin)
    end = min(len(wav), (loud[-1] + 1) * hop + margin)
    return wav[start:end]


def _fade(wav: np.ndarray, sr: int, seconds: float = 0.01) -> np.ndarray:
    """Short linear fade in/out so cuts do not click."""
    n = min(len(wav) // 2, int(seconds * sr))
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        wav = wav.copy()
        wav[:n] *= ramp
        wav[-n:] *= ramp[::-1]
    return wav


def cut_segments(wav: np.ndarray, sr: int, cfg: ProcessConfig, max_segments: int) -> list[np.ndarray]:
    """Consecutive ``max_duration`` segments (at most ``max_segments``); a short tail is dropped unless alone."""
    size = int(cfg.max_duration * sr)
    if len(wav) <= size:
        return [wav]
    segments = []
    for start in range(0, len(wav), size):
        piece = wav[start : start + size]
        if segments and len(piece) < cfg.min_last_segment * sr:
            break
        segments.append(_fade(piece, sr))
        if len(segments) >= max_segments:
            break
    return segments


def _write(path: Path, wav: np.ndarray, sr: int) -> str:
    """Write 16-bit PCM wav atomically and return the sha256 of the file (first 16 hex digits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.wav")
    sf.write(str(tmp), np.clip(wav, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
    tmp.replace(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _render(clip: RawClip, out_dir: Path, cfg: ProcessConfig) -> dict:
    """Decode and process one clip; returns the cache entry ``{"segments": [...]}`` or ``{"skip": reason}``."""
    try:
        wav, sr = clip.load()
    except (AudioError, OSError, RuntimeError) as exc:
        return {"skip": f"cannot decode audio ({str(exc)[:60]})"}
    if not np.all(np.isfinite(wav)) or len(wav) == 0:
        return {"skip": "empty or non-finite audio"}
    wav = trim_silence(to_rate(wav, sr, cfg.sample_rate), cfg.sample_rate, cfg.silence_db)
    sr = cfg.sample_rate
    if len(wav) < cfg.min_duration * sr:
        return {"skip": f"shorter than {cfg.min_duration} s after trimming silence"}
    if float(np.sqrt(np.mean(wav**2))) < cfg.min_rms:
        return {"skip": "silent (RMS below threshold)"}
    wav = wav * (cfg.peak / max(float(np.abs(wav).max()), 1e-9))
    segments = []
    pieces = cut_segments(wav, sr, cfg, clip.max_segments)
    for i, piece in enumerate(pieces):
        rel = f"audio/{clip.source}/{clip.uid}" + (f"-s{i}" if len(pieces) > 1 else "") + ".wav"
        digest = _write(out_dir / rel, piece.astype(np.float32), sr)
        segments.append({"path": rel, "duration": round(len(piece) / sr, 3), "sha256": digest, "segment": i})
    return {"segments": segments}


def _describe_arg(arg: object) -> object:
    """A stable, cheap identity for a loader argument: bytes by hash, files by path and size."""
    if isinstance(arg, (bytes, bytearray)):
        return "bytes:" + hashlib.sha256(arg).hexdigest()[:16]
    if isinstance(arg, Path):
        return f"{arg}:{arg.stat().st_size if arg.is_file() else -1}"
    return repr(arg)


def _recipe(clip: RawClip) -> str:
    """Hash of everything that determines a clip's audio: its loader (function and arguments: the source
    file or bytes, the synth score or text) and the fields that shape processing."""
    load = clip.load
    origin = [getattr(load, "__qualname__", repr(load))]
    if isinstance(load, partial):
        origin = [load.func.__qualname__, *(_describe_arg(a) for a in load.args)]
    text = json.dumps(
        [origin, clip.raw_label, clip.captions, clip.max_segments, clip.extra], sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def process_clip(clip: RawClip, out_dir: Path, cfg: ProcessConfig) -> dict:
    """Process ``clip`` into ``out_dir`` (or reuse the cached result) and return the cache entry.

    Returns:
        ``{"segments": [{"path", "duration", "sha256", "segment"}, ...]}`` or ``{"skip": reason}``.
    """
    cache = out_dir / ".cache" / f"clips-{cfg.cache_tag()}" / clip.source / f"{clip.uid}.json"
    recipe = _recipe(clip)
    if cache.is_file():
        entry = json.loads(cache.read_text())
        fresh = entry.get("recipe") == recipe
        if fresh and ("skip" in entry or all((out_dir / s["path"]).is_file() for s in entry["segments"])):
            return entry
    entry = {**_render(clip, out_dir, cfg), "recipe": recipe}
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(entry))
    return entry
