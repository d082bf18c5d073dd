"""Reading corpus manifests (jsonl, one clip per line; ``path`` relative to the manifest's directory)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from sara.errors import SaraError

__all__ = ["Clip", "keep_frequent_classes", "read_captions", "read_manifest"]


@dataclass(frozen=True)
class Clip:
    """One manifest entry: absolute ``path``, ``label`` (the ``class`` field), ``split``, ``caption``, ``group``."""

    path: Path
    label: str
    split: str
    caption: str
    group: str


def read_manifest(path: str | os.PathLike[str]) -> list[Clip]:
    """Parse a corpus manifest.

    Raises:
        SaraError: missing file, invalid JSON, or an entry without ``path``.
    """
    p = Path(path)
    if not p.is_file():
        raise SaraError(f"{p}: no such manifest")
    clips = []
    for lineno, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SaraError(f"{p}:{lineno}: invalid JSON ({exc.msg})") from None
        if "path" not in row:
            raise SaraError(f"{p}:{lineno}: entry has no 'path'")
        caps = row.get("captions") or []
        clips.append(Clip(path=(p.parent / row["path"]).resolve(), label=str(row.get("class", "")),
                          split=str(row.get("split", "train")), caption=str(row.get("caption") or (caps[0] if caps else "")),
                          group=str(row.get("group", ""))))
    if not clips:
        raise SaraError(f"{p}: manifest is empty")
    return clips


def keep_frequent_classes(clips: list[Clip], min_train_clips: int) -> list[Clip]:
    """Clips whose class has at least ``min_train_clips`` clips in the train split."""
    counts: dict[str, int] = {}
    for c in clips:
        if c.split == "train":
            counts[c.label] = counts.get(c.label, 0) + 1
    return [c for c in clips if counts.get(c.label, 0) >= min_train_clips]


def read_captions(path: str | os.PathLike[str]) -> dict[str, str]:
    """Captions keyed by audio file stem, from a jsonl manifest (``path`` + ``caption``/``captions``), a CSV
    with a header naming a file column (``file``/``name``/``path``/``audio``) and ``caption``, or ``name<TAB>caption``
    lines.

    Raises:
        SaraError: unreadable file or no caption found.
    """
    import csv

    p = Path(path)
    if not p.is_file():
        raise SaraError(f"{p}: no such captions file")
    text = p.read_text()
    out: dict[str, str] = {}
    if p.suffix in (".jsonl", ".json"):
        for clip in read_manifest(p):
            out[clip.path.stem] = clip.caption
    elif p.suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        key = next((k for k in ("file", "name", "path", "audio", "file_name") if rows and k in rows[0]), None)
        if key is None or "caption" not in rows[0]:
            raise SaraError(f"{p}: CSV needs a 'caption' column and one of file/name/path/audio")
        out = {Path(r[key]).stem: r["caption"] for r in rows}
    else:
        for line in text.splitlines():
            name, sep, caption = line.partition("\t")
            if sep:
                out[Path(name).stem] = caption.strip()
    if not out:
        raise SaraError(f"{p}: no captions found")
    return out
