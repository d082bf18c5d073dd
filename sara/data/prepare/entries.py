"""What a format reader yields (:class:`Entry`, one per caption row), merging rows into clips, skip tallies."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Entry", "Problems", "Skip", "guess_split", "merge_entries"]


@dataclass
class Entry:
    """One clip of a source dataset, as read from its caption file (before the audio is looked up).

    Attributes:
        key: the clip's id within the dataset (rows with the same key are one clip).
        captions: its captions, in file order.
        where: ``FILE:LINE`` of its first row, for messages.
        paths: audio paths named by the caption file (relative to the audio directory, or absolute).
        stems: file names without extension under which the audio may lie anywhere below the audio directory.
        extra: dataset-specific manifest fields (lists are concatenated when rows merge).
        split: the row's own split, if the caption file has one.
    """

    key: str
    captions: list[str]
    where: str
    paths: tuple[str, ...] = ()
    stems: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    split: str | None = None

    def absorb(self, other: Entry) -> None:
        """Merge a further row of the same clip: its captions, names and list-valued extras."""
        self.captions += [c for c in other.captions if c not in self.captions]
        self.paths += tuple(p for p in other.paths if p not in self.paths)
        self.stems += tuple(s for s in other.stems if s not in self.stems)
        for k, v in other.extra.items():
            if isinstance(v, list) and isinstance(self.extra.get(k), list):
                self.extra[k] += [x for x in v if x not in self.extra[k]]
            else:
                self.extra.setdefault(k, v)


def merge_entries(entries: list[Entry]) -> list[Entry]:
    """One entry per key, in order of first appearance, with the captions of all its rows."""
    by_key: dict[str, Entry] = {}
    for entry in entries:
        if entry.key in by_key:
            by_key[entry.key].absorb(entry)
        else:
            by_key[entry.key] = entry
    return list(by_key.values())


class Skip(Exception):
    """A clip (or row) that cannot be used: ``reason`` (the tally's bucket) and ``detail`` (an example)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Problems:
    """Skipped clips tallied by reason, with the first few examples of each."""

    def __init__(self, examples: int = 3) -> None:
        self.examples = examples
        self.counts: dict[str, int] = {}
        self.samples: dict[str, list[str]] = {}

    def add(self, skip: Skip) -> None:
        """Count one skipped clip."""
        self.counts[skip.reason] = self.counts.get(skip.reason, 0) + 1
        samples = self.samples.setdefault(skip.reason, [])
        if len(samples) < self.examples:
            samples.append(skip.detail)

    def __len__(self) -> int:
        return sum(self.counts.values())

    def summary(self, total: int) -> str:
        """One line: ``skipped N of TOTAL clips: C1 REASON1 (e.g. ...); C2 REASON2 (...)``."""
        parts = [f"{n} {reason} (e.g. {'; '.join(self.samples[reason])})" for reason, n in self.counts.items()]
        return f"skipped {len(self)} of {total} clips: " + "; ".join(parts)


_SPLIT_WORDS = {
    "test": "test", "eval": "test", "evaluation": "test",
    "val": "valid", "valid": "valid", "validation": "valid",
    "train": "train", "training": "train", "development": "train",
}


def guess_split(file_name: str) -> str | None:
    """The split a caption file's name implies (AudioCaps ``val.csv`` -> valid, Clotho
    ``clotho_captions_development.csv`` -> train, ``..._evaluation.csv`` -> test), or None."""
    words = re.split(r"[^a-z]+", file_name.lower())
    return next((_SPLIT_WORDS[w] for w in words if w in _SPLIT_WORDS), None)
