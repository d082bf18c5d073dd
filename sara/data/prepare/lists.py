"""Path + caption lists: the SemanticVocoder ``caption.jsonl`` and a generic folder's CSV / JSON lines.

* ``semanticvocoder``: one ``{"audio_id": ..., "caption": ...}`` per line (the official release's format,
  also read by ``sara generate --captions``); ``audio_id`` is a path relative to the audio directory, or
  absolute.
* ``folder``: a CSV with a header, or JSON lines, naming a path column (``path``, ``file_name``, ``file``,
  ``audio`` or ``audio_id``) and a caption column (``caption`` or ``text``; in JSON also ``captions``, a
  list); an optional ``split`` column sets a row's split.

Rows naming the same path are one clip with several captions.
"""

from __future__ import annotations

from pathlib import Path, PurePath, PurePosixPath
from typing import Any

from sara.data.prepare.audio import AUDIO_SUFFIXES
from sara.data.prepare.entries import Entry, Problems, Skip
from sara.data.prepare.tables import Row, pick_column, read_csv, read_json_records, require_keys
from sara.errors import ConfigError

__all__ = ["LICENSE", "clip_key", "read_folder_csv", "read_folder_json", "read_semanticvocoder"]

LICENSE = "unknown"
PATH_COLUMNS = ("path", "file_name", "file", "audio", "audio_id")
CAPTION_COLUMNS = ("caption", "text", "captions")
_FOLDER = "a folder caption list (columns path and caption)"


def read_semanticvocoder(path: Path, problems: Problems) -> list[Entry]:
    """One entry per line of a SemanticVocoder caption.jsonl."""
    rows = read_json_records(path)
    require_keys(rows, ("audio_id", "caption"), 'a SemanticVocoder caption.jsonl ({"audio_id", "caption"})')
    return _entries(rows, "audio_id", "caption", problems)


def read_folder_csv(path: Path, problems: Problems) -> list[Entry]:
    """One entry per row of a ``path,caption`` CSV."""
    header, rows = read_csv(path, (), _FOLDER)
    return _entries(rows, *_columns(path, header), problems)


def read_folder_json(path: Path, problems: Problems) -> list[Entry]:
    """One entry per object of a JSON-lines (or JSON array) ``{"path", "caption"}`` list."""
    rows = read_json_records(path)
    first = rows[0][1] if rows else {}
    return _entries(rows, *_columns(path, list(first) if isinstance(first, dict) else []), problems)


def _columns(path: Path, header: list[str]) -> tuple[str, str]:
    """The path and caption column names of a folder list.

    Raises:
        ConfigError: the header lacks one of them.
    """
    path_col, caption_col = pick_column(header, PATH_COLUMNS), pick_column(header, CAPTION_COLUMNS)
    if path_col is None or caption_col is None:
        found = ", ".join(header[:8]) or "nothing"
        raise ConfigError(f"{path}: not {_FOLDER}: needs a path column ({'/'.join(PATH_COLUMNS)}) and a caption "
                          f"column ({'/'.join(CAPTION_COLUMNS)}); the header has {found}")
    return path_col, caption_col


def _entries(rows: list[Row], path_col: str, caption_col: str, problems: Problems) -> list[Entry]:
    """Entries of the rows; rows without a path or caption go to ``problems``."""
    entries = []
    for where, row in rows:
        try:
            entries.append(_entry(where, row, path_col, caption_col))
        except Skip as skip:
            problems.add(skip)
    return entries


def _entry(where: str, row: Any, path_col: str, caption_col: str) -> Entry:
    """The entry of one row."""
    if not isinstance(row, dict):
        raise Skip("bad row", f"{where}: not an object")
    rel = str(row.get(path_col) or "").strip()
    raw = row.get(caption_col)
    captions = [str(c).strip() for c in (raw if isinstance(raw, list) else [raw]) if str(c or "").strip()]
    if not rel or not captions:
        raise Skip("bad row", f"{where}: empty {path_col} or {caption_col}")
    split = str(row.get("split") or "").strip() or None
    return Entry(key=clip_key(rel), captions=captions, where=where, paths=(rel,), split=split,
                 extra={path_col: rel} if path_col == "audio_id" else {})


def clip_key(rel: str) -> str:
    """A clip id from its path: POSIX, without the audio suffix, without a leading ``/`` or ``./``."""
    p = PurePosixPath(PurePath(rel).as_posix())
    text = str(p.with_suffix("")) if p.suffix.lower() in AUDIO_SUFFIXES else str(p)
    return text.removeprefix("./").lstrip("/")
