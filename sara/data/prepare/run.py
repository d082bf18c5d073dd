"""``prepare_manifest``: caption file + audio directory -> a sara manifest (``sara data prepare``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from sara.data.manifest import load_manifest, manifest_text
from sara.data.prepare import audiocaps, clotho, lists, wavcaps
from sara.data.prepare.audio import AudioIndex, AudioInfo, probe
from sara.data.prepare.entries import Entry, Problems, Skip, guess_split, merge_entries
from sara.errors import ConfigError, SaraError
from sara.outputs import check_output_file, write_text_atomically

__all__ = ["FORMATS", "PrepareResult", "prepare_manifest"]

Reader = Callable[[Path, Problems], list[Entry]]


@dataclass(frozen=True)
class _Format:
    """A dataset layout: its readers by caption-file kind, the manifest ``source`` and ``license``."""

    readers: dict[str, Reader]
    source: str | None  # None: the audio directory's name
    license: str


FORMATS: dict[str, _Format] = {
    "audiocaps": _Format({"csv": audiocaps.read_audiocaps}, audiocaps.SOURCE, audiocaps.LICENSE),
    "clotho": _Format({"csv": clotho.read_clotho}, clotho.SOURCE, clotho.LICENSE),
    "wavcaps": _Format({"json": wavcaps.read_wavcaps}, wavcaps.SOURCE, wavcaps.LICENSE),
    "semanticvocoder": _Format({"json": lists.read_semanticvocoder}, "semanticvocoder", lists.LICENSE),
    "folder": _Format({"csv": lists.read_folder_csv, "json": lists.read_folder_json}, None, lists.LICENSE),
}


@dataclass(frozen=True)
class PrepareResult:
    """What :func:`prepare_manifest` wrote.

    Attributes:
        manifest: the manifest file.
        clips: clips written from this caption file; ``total`` clips (and bad rows) it named.
        hours: their audio, in hours.
        splits: clip counts per split.
        skipped: the skipped clips by reason (``skipped.summary(total)`` is the report line).
        rows: records in the manifest (more than ``clips`` with ``append``).
    """

    manifest: Path
    clips: int
    total: int
    hours: float
    splits: dict[str, int]
    skipped: Problems
    rows: int


def prepare_manifest(fmt: str, captions: Path, kind: str, audio_dir: Path, output: Path, *,
                     split: str | None = None, append: bool = False, jobs: int = 8) -> PrepareResult:
    """Read ``captions`` (``kind`` "csv" or "json") in format ``fmt``, find and probe each clip's audio under
    ``audio_dir`` and write the manifest ``output`` atomically (paths relative to its directory).

    Args:
        split: every clip's split; default: the row's own (folder lists), else the one the caption file's
            name implies (``val.csv`` -> valid), else ``train``.
        append: keep the records of an existing ``output`` (those with the ids of clips prepared now are
            replaced).
        jobs: threads reading audio headers.

    Raises:
        ConfigError: a bad argument or caption file (wrong format, missing columns).
        SaraError: no clip could be used (nothing is written).
    """
    spec = _format(fmt, kind)
    if not captions.is_file():
        raise ConfigError(f"--{kind} {captions}: no such file")
    if not audio_dir.is_dir():
        raise ConfigError(f"--audio-dir {audio_dir}: no such directory")
    out = check_output_file(output)
    problems = Problems()
    entries = merge_entries(spec.readers[kind](captions, problems))
    total = len(entries) + len(problems)
    default = split or guess_split(captions.name) or "train"
    source = spec.source or (audio_dir.resolve().name or "folder")
    records = _records(entries, AudioIndex(audio_dir), out, problems, jobs)
    for r in records:
        own = r.pop("_split")
        r.update(id=f"{source}/{r['id']}", source=source, license=spec.license, split=split or own or default)
    if not records:
        raise SaraError(f"no usable clip in {captions} ({problems.summary(total) if problems else 'it is empty'})")
    rows = _with_existing(out, records) if append else records
    write_text_atomically(out, manifest_text(rows))
    return PrepareResult(out, len(records), total, sum(r["duration"] for r in records) / 3600,
                         _count_splits(records), problems, len(rows))


def _format(fmt: str, kind: str) -> _Format:
    """The format's description; ConfigError for an unknown format or a caption-file kind it does not read."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    spec = FORMATS[fmt]
    if kind not in spec.readers:
        flags = " or ".join(f"--{k}" for k in spec.readers)
        raise ConfigError(f"{fmt} captions are read with {flags}, not --{kind}")
    return spec


def _records(entries: list[Entry], index: AudioIndex, out: Path, problems: Problems, jobs: int) -> list[dict]:
    """Records of the entries whose audio is found and readable (the others go to ``problems``)."""
    found = _resolve_all(entries, index, problems)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        infos = list(tqdm(pool.map(_try_probe, [p for _, p in found]), total=len(found), desc="audio headers",
                          unit="file", disable=None, dynamic_ncols=True))
    records = []
    for (entry, path), info in zip(found, infos):
        if isinstance(info, Skip):
            problems.add(info)
        else:
            records.append(_record(entry, path, info, out.parent))
    return records


def _resolve_all(entries: list[Entry], index: AudioIndex, problems: Problems) -> list[tuple[Entry, Path]]:
    """Each entry with its audio file; an entry whose file another entry already has is skipped."""
    found: list[tuple[Entry, Path]] = []
    owner: dict[str, str] = {}
    for entry in entries:
        try:
            path = index.resolve(entry)
        except Skip as skip:
            problems.add(skip)
            continue
        key = os.path.normcase(os.path.abspath(path))
        if key in owner:
            problems.add(Skip("duplicate audio", f"{entry.key} [{entry.where}]: {path.name} is {owner[key]}'s"))
            continue
        owner[key] = entry.key
        found.append((entry, path))
    return found


def _try_probe(path: Path) -> AudioInfo | Skip:
    """:func:`probe`, with the skip returned rather than raised (for the thread pool)."""
    try:
        return probe(path)
    except Skip as skip:
        return skip


def _record(entry: Entry, path: Path, info: AudioInfo, root: Path) -> dict:
    """The manifest record of one clip (``source``, ``license`` and ``split`` are filled in by the caller)."""
    record = {
        "id": entry.key,
        "path": _relative(path, root),
        "caption": entry.captions[0],
        "captions": list(entry.captions),
        "class": "unlabelled",
        "group": "unlabelled",
        "duration": info.duration,
        "sample_rate": info.sample_rate,
        "kind": "general",
        "synthetic": False,
        "_split": entry.split,
    }
    record.update({k: v for k, v in entry.extra.items() if k not in record})
    return record


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to the manifest's directory (POSIX), or absolute when there is no relative path."""
    try:
        return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(os.path.abspath(path)).as_posix()


def _with_existing(out: Path, records: list[dict]) -> list[dict]:
    """``records`` plus those of the existing manifest ``out`` that they do not replace (same id)."""
    if not out.is_file():
        return records
    new = {r["id"] for r in records}
    return [r for r in load_manifest(out, required_keys=("id", "path")) if r["id"] not in new] + records


def _count_splits(records: list[dict]) -> dict[str, int]:
    """Clips per split, by split name."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r["split"]] = counts.get(r["split"], 0) + 1
    return dict(sorted(counts.items()))
