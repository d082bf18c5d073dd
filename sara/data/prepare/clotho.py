"""Clotho caption CSVs (``file_name,caption_1,...,caption_5``; one row per clip, five captions).

``clotho_captions_{development,validation,evaluation}.csv``; the audio is ``<file_name>`` (a Freesound
clip's own name, e.g. ``Distorted AM Radio noise.wav``) in the matching ``development/`` ... directory.  The
file is looked up as named, then with another audio extension, then by name anywhere below the audio
directory (so the parent of the split directories works too).
"""

from __future__ import annotations

import re
from pathlib import Path

from sara.data.prepare.entries import Entry, Problems, Skip
from sara.data.prepare.tables import read_csv

__all__ = ["LICENSE", "SOURCE", "read_clotho"]

SOURCE = "clotho"
LICENSE = "Clotho (Freesound audio, per-clip Creative Commons licences; captions: Tampere University)"


def read_clotho(path: Path, problems: Problems) -> list[Entry]:
    """One entry per row; rows without a file name or caption go to ``problems``."""
    header, rows = read_csv(path, ("file_name", "caption_1"), "a Clotho captions CSV (file_name,caption_1,...)")
    columns = sorted((c for c in header if re.fullmatch(r"caption_\d+", c)), key=lambda c: int(c[8:]))
    entries = []
    for where, row in rows:
        name = (row.get("file_name") or "").strip()
        captions = [c for c in ((row.get(col) or "").strip() for col in columns) if c]
        if not name or not captions:
            problems.add(Skip("bad row", f"{where}: empty file_name or no caption"))
            continue
        stem = Path(name).stem if Path(name).suffix else name
        entries.append(Entry(key=stem, captions=captions, where=where, paths=(name,), extra={"file_name": name}))
    return entries
