"""The corpus manifest: one JSON object per clip (``manifest.jsonl``), ``classes.json`` and their hashes.

Record fields (the contract): ``path`` (relative to the manifest's directory), ``captions`` (list),
``caption`` (first), ``class``, ``group``, ``source``, ``license``, ``duration`` (s), ``split``,
``sample_rate``; plus ``id``, ``kind``, ``synthetic``, ``raw_label``, ``split_key``, ``sha256`` (of the wav
file) and source-specific extras (``transcript``, ``language``, ``gender``, ``key``, ``bpm``, ...).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

from sara.data.clips import RawClip
from sara.errors import ConfigError, SaraError
from sara.serialization import write_text_atomically

__all__ = [
    "load_manifest",
    "make_record",
    "manifest_hash",
    "manifest_text",
    "report_skipped",
    "write_classes",
    "write_manifest",
]

_FIRST = (
    "id",
    "path",
    "caption",
    "captions",
    "class",
    "group",
    "source",
    "license",
    "duration",
    "split",
    "sample_rate",
    "kind",
    "synthetic",
)


def make_record(clip: RawClip, segment: dict, split: str, sample_rate: int) -> dict:
    """The manifest record of one written segment of ``clip``."""
    rid = segment["path"].removeprefix("audio/").removesuffix(".wav")
    record = {
        "id": rid,
        "path": segment["path"],
        "caption": clip.captions[0],
        "captions": list(clip.captions),
        "class": clip.class_name,
        "group": clip.group,
        "source": clip.source,
        "license": clip.license,
        "duration": segment["duration"],
        "split": split,
        "sample_rate": sample_rate,
        "kind": clip.kind,
        "synthetic": clip.synthetic,
        "raw_label": clip.raw_label,
        "split_key": clip.split_key,
        "sha256": segment["sha256"],
    }
    record.update({k: v for k, v in sorted(clip.extra.items()) if k not in record})
    return record


def manifest_text(records: list[dict]) -> str:
    """The manifest jsonl text of ``records``: sorted by id, contract fields first (those a record has), then
    the rest sorted by name -- stable bytes for equal content.

    Raises:
        SaraError: two records share an id.
    """
    records = sorted(records, key=lambda r: r["id"])
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        dup = next(i for i, n in Counter(ids).items() if n > 1)
        raise SaraError(f"duplicate clip id in manifest: {dup}")
    keys = [(*(k for k in _FIRST if k in r), *sorted(set(r) - set(_FIRST))) for r in records]
    return "".join(json.dumps({k: r[k] for k in ks}, ensure_ascii=False) + "\n" for r, ks in zip(records, keys))


def write_manifest(records: list[dict], path: Path) -> str:
    """Write records sorted by id (stable bytes for equal content); returns the file's sha256."""
    text = manifest_text(records)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_classes(records: list[dict], path: Path) -> dict:
    """Write ``classes.json``: sorted class list, class -> group, and clip counts per class and split."""
    counts: dict[str, Counter] = defaultdict(Counter)
    group_of: dict[str, str] = {}
    for r in records:
        counts[r["class"]][r["split"]] += 1
        group_of.setdefault(r["class"], r["group"])
    classes = sorted(counts)
    data = {
        "classes": classes,
        "groups": {c: group_of[c] for c in classes},
        "counts": {c: dict(sorted(counts[c].items())) for c in classes},
    }
    write_text_atomically(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return data


def load_manifest(path: str | Path, *, required_keys: tuple[str, ...] = ()) -> list[dict]:
    """Read a manifest jsonl (blank lines skipped).

    Args:
        path: the manifest.
        required_keys: keys every record must have; ``"path"`` must moreover be a non-empty string.

    Raises:
        ConfigError: the file is missing or unreadable, or a line is not a JSON object or lacks a required
            key (``FILE:LINE: ...``) -- raised before any training starts.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such manifest")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read manifest ({getattr(exc, 'strerror', None) or exc})") from None
    return [_record(line, f"{p}:{n}", required_keys) for n, line in enumerate(lines, 1) if line.strip()]


def _record(line: str, where: str, required_keys: tuple[str, ...]) -> dict:
    """One manifest line as a dict, checked."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise ConfigError(f"{where}: not a JSON line") from None
    if not isinstance(record, dict):
        raise ConfigError(f"{where}: not a JSON object")
    missing = [k for k in required_keys if k not in record]
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    if "path" in record and (not isinstance(record["path"], str) or not record["path"].strip()):
        raise ConfigError(f"{where}: 'path' must be a non-empty string")
    return record


def report_skipped(what: str, problems: list[str], total: int, *, limit: int = 20) -> None:
    """Tell the user (stderr) which inputs were skipped and why: one line per file (the first ``limit``),
    then the count."""
    if not problems:
        return
    for line in problems[:limit]:
        print(f"[sara] skipped {line}", file=sys.stderr)
    more = f" ({len(problems) - limit} more not listed)" if len(problems) > limit else ""
    print(f"[sara] skipped {len(problems)} of {total} {what}{more}", file=sys.stderr)


def manifest_hash(path: str | Path) -> str:
    """sha256 of a manifest file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
