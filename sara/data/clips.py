"""The unit of work of the corpus builder: a labelled source clip before processing, and the skip log."""

from __future__ import annotations

import hashlib
import io
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from sara.errors import AudioError

__all__ = ["RawClip", "SkipLog", "clip_rng", "read_audio", "stable_hash"]

Loader = Callable[[], tuple[np.ndarray, int]]


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of ``parts`` that is stable across runs and machines (unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def clip_rng(seed: int, *parts: object) -> random.Random:
    """A generator seeded by ``seed`` and the clip identity, independent of processing order."""
    return random.Random(stable_hash(seed, *parts))


def read_audio(src: str | Path | bytes) -> tuple[np.ndarray, int]:
    """Decode an audio file (path or in-memory bytes) to ``([T] float32 mono, sample_rate)``.

    Raises:
        AudioError: the data cannot be decoded.
    """
    name = "<bytes>" if isinstance(src, bytes) else str(src)
    try:
        handle = io.BytesIO(src) if isinstance(src, bytes) else str(src)
        data, sr = sf.read(handle, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(f"{name}: cannot decode ({str(exc).strip()[:80]})") from None
    return data.mean(axis=1), int(sr)


@dataclass(frozen=True)
class RawClip:
    """A labelled clip from one source, not yet resampled or cut.

    Attributes:
        source: source package (or synthesizer) name, e.g. ``"openttd-opensfx"``.
        uid: unique id within the source, file-system safe; output files are named after it.
        load: returns ``([T] float32 mono, sample_rate)``.
        class_name: class label.
        group: coarse group (see :data:`sara.data.labels.GROUPS`).
        captions: captions, canonical first.
        license: licence of this clip.
        split_key: clips sharing a key always land in the same split (same file, takes of one sound).
        kind: "sfx", "speech", "instrument", "music", "ui" or "mixture".
        raw_label: the label as found in the source (for auditing).
        synthetic: True for synthesizer output.
        max_segments: how many consecutive ``max_duration`` segments a long file may yield (1 = crop).
        extra: additional manifest fields (transcript, language, gender, ...).
    """

    source: str
    uid: str
    load: Loader
    class_name: str
    group: str
    captions: tuple[str, ...]
    license: str
    split_key: str
    kind: str
    raw_label: str = ""
    synthetic: bool = False
    max_segments: int = 1
    extra: dict = field(default_factory=dict)


@dataclass
class SkipLog:
    """Counts of skipped items per ``(source, reason)`` with a few examples each."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def add(self, source: str, reason: str, item: str = "") -> None:
        """Record that ``item`` of ``source`` was skipped because of ``reason``."""
        key = (source, reason)
        self.counts[key] += 1
        examples = self.examples.setdefault(key, [])
        if item and len(examples) < 5:
            examples.append(item)

    def lines(self) -> list[str]:
        """Human-readable report lines, sorted by source then count."""
        rows = sorted(self.counts.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))
        out = []
        for (source, reason), n in rows:
            ex = ", ".join(self.examples.get((source, reason), []))
            out.append(f"{source}: {n} skipped: {reason}" + (f" (e.g. {ex})" if ex else ""))
        return out

    def to_dict(self) -> list[dict]:
        """JSON-friendly form for ``skipped.json``."""
        return [
            {"source": s, "reason": r, "count": n, "examples": self.examples.get((s, r), [])}
            for (s, r), n in sorted(self.counts.items())
        ]
