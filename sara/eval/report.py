"""JSON + Markdown reports for ``sara eval`` results."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sara.outputs import write_text_atomically

__all__ = ["format_value", "markdown_table", "write_report"]


def format_value(value: Any) -> str:
    """Floats with 4 decimals (scientific when tiny or huge), None as "-", the rest as ``str``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3e}"
        return f"{value:.4f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A GitHub Markdown table; columns are the union of row keys in first-seen order."""
    cols: list[str] = []
    for row in rows:
        cols += [k for k in row if k not in cols]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(format_value(row.get(c)) for c in cols) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_report(result: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike[str],
                 name: str, *, title: str) -> tuple[Path, Path, str]:
    """Write ``<out_dir>/<name>.json`` (full result) and ``<name>.md`` (title + table).

    Returns:
        ``(json_path, md_path, table_markdown)``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows)
    jpath, mpath = out / f"{name}.json", out / f"{name}.md"
    write_text_atomically(jpath, json.dumps(result, indent=2, default=str) + "\n")
    write_text_atomically(mpath, f"# {title}\n\n{table}")
    return jpath, mpath, table
