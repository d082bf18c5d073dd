"""Reading caption files: CSV with a checked header, JSON (an array or ``{"data": [...]}``) or JSON lines."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from sara.errors import ConfigError

__all__ = ["Row", "pick_column", "read_csv", "read_json_records", "require_keys"]

Row = tuple[str, dict[str, Any]]  # ("FILE:LINE", row)


def _text(path: Path) -> str:
    """The file's UTF-8 text (a leading byte-order mark dropped); ConfigError when missing or unreadable."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None


def read_csv(path: Path, required: tuple[str, ...], what: str) -> tuple[list[str], list[Row]]:
    """The header and rows of a CSV whose header must name ``required`` columns.

    Raises:
        ConfigError: missing/unreadable file, or a header without the required columns (one line naming
            the missing ones and what the header has instead).
    """
    reader = csv.DictReader(io.StringIO(_text(path), newline=""))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        rows = [(f"{path.name}:{reader.line_num}", row) for row in reader]
    except csv.Error as exc:
        raise ConfigError(f"{path}:{reader.line_num}: not a CSV ({exc})") from None
    missing = [c for c in required if c not in header]
    if missing:
        found = ", ".join(header[:8]) or "nothing"
        raise ConfigError(f"{path}: not {what}: no column {', '.join(missing)} (the header has {found})")
    return header, rows


def read_json_records(path: Path) -> list[Row]:
    """The objects of a JSON array, of ``{"data": [...]}`` (WavCaps) or of a JSON-lines file.

    Raises:
        ConfigError: missing/unreadable file, or content that is none of these (``FILE:LINE: ...``).
    """
    text = _text(path)
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        return _json_lines(path, text)
    if isinstance(whole, dict) and isinstance(whole.get("data"), list):
        whole = whole["data"]
    if isinstance(whole, dict):  # a one-line JSON-lines file
        whole = [whole]
    if not isinstance(whole, list):
        raise ConfigError(f"{path}: expected a JSON array, {{\"data\": [...]}} or JSON lines")
    return [(f"{path.name}:item {i}", item) for i, item in enumerate(whole, 1)]


def _json_lines(path: Path, text: str) -> list[Row]:
    """The objects of a JSON-lines text (blank lines skipped)."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((f"{path.name}:{n}", json.loads(line)))
        except json.JSONDecodeError:
            raise ConfigError(f"{path}:{n}: not JSON (expected one JSON object per line)") from None
    return rows


def require_keys(rows: list[Row], keys: tuple[str, ...], what: str) -> None:
    """The first record must be an object with ``keys`` (a JSON file's "header").

    Raises:
        ConfigError: it is not, with the keys it has.
    """
    if not rows:
        return
    where, first = rows[0]
    if not isinstance(first, dict):
        raise ConfigError(f"{where}: not {what}: expected a JSON object, got {type(first).__name__}")
    missing = [k for k in keys if k not in first]
    if missing:
        found = ", ".join(list(first)[:8]) or "nothing"
        raise ConfigError(f"{where}: not {what}: no key {', '.join(missing)} (it has {found})")


def pick_column(header: list[str], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` present in ``header``."""
    return next((n for n in names if n in header), None)
