"""Raw label normalisation and the curated label table (``sara/data/labels.csv``).

A raw label is whatever a source gives us (a file stem, a folder + stem, a description line). It is
normalised (:func:`normalize_label`) and looked up in the table: first as an exact ``pattern``, then by the
longest pattern that occurs in it as whole words ("animal dog" matches "dog"). Each row maps to a class,
a caption phrase (a noun phrase such as "a dog barking"), a coarse group and a drop flag; rows may be
restricted to one source package. A label that matches nothing is skipped and reported, never guessed.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sara.errors import ConfigError

__all__ = ["GROUPS", "LabelEntry", "LabelTable", "normalize_label", "take_stem"]

# the 13 coarse sound groups of DATA_SOURCES.md, plus speech and music
GROUPS: tuple[str, ...] = (
    "animals",
    "vehicles",
    "household",
    "tools",
    "impacts",
    "weapons",
    "water",
    "weather and fire",
    "human non-speech",
    "percussion",
    "melodic instruments",
    "ui and alerts",
    "machines and ambience",
    "speech",
    "music",
)

_ARTICLES = {"a", "an", "the", "some"}


def normalize_label(text: str) -> str:
    """Lower-case words of a raw label, without take numbers, articles or punctuation.

    ``"Animal/Dog1.wav"`` -> ``"animal dog"``; ``"horse-hit-2"`` -> ``"horse hit"``;
    ``"A baby sheep (a lamb)."`` -> ``"baby sheep lamb"``; ``"HorseGallop"`` -> ``"horse gallop"``.
    """
    text = re.sub(r"\.(wav|ogg|flac|mp3|oga|aif|aiff)$", "", text.strip(), flags=re.IGNORECASE)
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)  # camelCase
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", text)
    text = text.lower().replace("’", "'")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    # take numbers: "dog1" -> "dog", "death01a" -> "death", "01" -> ""; "3d" stays
    words = ["" if w.isdigit() else re.sub(r"(?<=[a-z])\d+[a-z]?$", "", w) for w in text.split()]
    return " ".join(w for w in words if w and w not in _ARTICLES and w != "'")


def take_stem(stem: str) -> str:
    """Strip take/velocity numbers so near-duplicate takes share a key: ``hit-3``, ``hit_03b`` -> ``hit``."""
    stem = original = re.sub(r"\.(wav|ogg|flac|mp3)$", "", stem, flags=re.IGNORECASE).lower()
    previous = None
    while previous != stem:
        previous, stem = stem, re.sub(r"[\s_\-.]*\d+[a-z]?$", "", stem)
    return stem or original


@dataclass(frozen=True)
class LabelEntry:
    """One row of the label table.

    Attributes:
        pattern: normalised words to match.
        class_name: the class this label maps to.
        phrase: caption noun phrase ("a dog barking").
        group: one of :data:`GROUPS`.
        drop: True if clips with this label are excluded (fictional, cryptic or unusable).
        source: restrict the row to this source package ("" = any).
    """

    pattern: str
    class_name: str
    phrase: str
    group: str
    drop: bool = False
    source: str = ""


class LabelTable:
    """Lookup of normalised raw labels in the curated table."""

    def __init__(self, entries: list[LabelEntry]) -> None:
        for e in entries:
            if e.group not in GROUPS and not e.drop:
                raise ConfigError(f"label table: unknown group {e.group!r} for pattern {e.pattern!r}")
        self.entries = entries
        self._exact: dict[tuple[str, str], LabelEntry] = {}
        for e in entries:
            self._exact.setdefault((e.source, e.pattern), e)
        # longest patterns first; stable within equal length (file order)
        self._by_length = sorted(entries, key=lambda e: -len(e.pattern.split()))

    @classmethod
    def from_csv(cls, path: str | Path | None = None) -> LabelTable:
        """Read the table (the packaged ``labels.csv`` when ``path`` is None)."""
        if path is None:
            text = resources.files("sara.data").joinpath("labels.csv").read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        rows = csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))
        entries = [_row_to_entry(row) for row in rows]
        return cls(entries)

    def lookup(self, raw: str, source: str = "") -> LabelEntry | None:
        """Map a raw label to its table entry (source-specific rows win), or None if nothing matches."""
        label = normalize_label(raw)
        if not label:
            return None
        for key in ((source, label), ("", label)):
            if key in self._exact:
                return self._exact[key]
        padded = f" {label} "
        best: LabelEntry | None = None
        for e in self._by_length:
            if e.source not in ("", source) or f" {e.pattern} " not in padded:
                continue
            if best is None or len(e.pattern.split()) > len(best.pattern.split()):
                best = e
            elif len(e.pattern.split()) == len(best.pattern.split()) and e.source and not best.source:
                best = e
        return best

    @property
    def classes(self) -> list[str]:
        """All (non-dropped) class names in the table, sorted."""
        return sorted({e.class_name for e in self.entries if not e.drop})


def _row_to_entry(row: dict[str, str]) -> LabelEntry:
    """Convert one csv row; ``drop`` is "1"/"yes"/"true" for dropped labels."""
    flag = (row.get("drop") or "").strip().lower()
    if flag not in ("", "0", "1"):
        raise ConfigError(
            f"label table: drop must be empty, 0 or 1 (pattern {row.get('pattern')!r}, got {flag!r})"
        )
    try:
        drop = flag == "1"
        return LabelEntry(
            pattern=normalize_label(row["pattern"]),
            class_name=row["class"].strip(),
            phrase=row["phrase"].strip(),
            group=row["group"].strip(),
            drop=drop,
            source=(row.get("source") or "").strip(),
        )
    except KeyError as exc:
        raise ConfigError(f"label table: missing column {exc}") from None
