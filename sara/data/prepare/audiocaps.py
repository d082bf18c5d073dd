"""AudioCaps caption CSVs (``audiocap_id,youtube_id,start_time,caption``; one row per caption).

A clip is a ``(youtube_id, start_time)`` pair: the val/test CSVs have five rows (captions) per clip.  The
audio comes from YouTube, so each download tool names it its own way; a clip is found under any of:

* ``<youtube_id>_<start>`` -- aac-datasets (``{youtube_id}_{start_time}.flac``);
* ``<youtube_id>_<start>-<end>`` -- audioset-download (``{ytid}_{start_seconds}-{end_seconds}.{ext}``);
* ``Y<youtube_id>_<start>.000_<end>.000`` -- DCASE / AudioSet style (``Y--4gqARaEJE_0.000_10.000.wav``);
* ``<youtube_id>_<start>_<end>``, with or without the ``Y`` prefix, seconds as ``30``, ``30.0`` or ``30.000``;
* ``<youtube_id>_<start ms>`` -- AudioSet-strong segment ids;
* ``Y<youtube_id>`` / ``<youtube_id>`` -- audioset_tagging_cnn style (the ``Y`` guards ids starting with ``-``);
* ``<audiocap_id>`` -- the audiocaps-download package (one file per caption row, ``{audiocap_id}.{ext}``).

Clips are 10 s from ``start_time``; any audio extension is accepted.  YouTube ids contain ``_`` and ``-``,
so file names are never parsed: the candidates are built from each row and looked up.
"""

from __future__ import annotations

from pathlib import Path

from sara.data.prepare.entries import Entry, Problems, Skip
from sara.data.prepare.tables import Row, read_csv

__all__ = ["LICENSE", "SOURCE", "candidate_stems", "read_audiocaps"]

SOURCE = "audiocaps"
LICENSE = "AudioCaps captions CC-BY-4.0; audio from YouTube (uploaders' rights)"
REQUIRED = ("youtube_id", "start_time", "caption")
CLIP_SECONDS = 10.0


def read_audiocaps(path: Path, problems: Problems) -> list[Entry]:
    """One entry per caption row (merged into clips later); unusable rows go to ``problems``."""
    _, rows = read_csv(path, REQUIRED, "an AudioCaps CSV (audiocap_id,youtube_id,start_time,caption)")
    entries = []
    for row in rows:
        try:
            entries.append(_entry(row))
        except Skip as skip:
            problems.add(skip)
    return entries


def _entry(item: Row) -> Entry:
    """The entry of one CSV row."""
    where, row = item
    yid, caption = (row.get("youtube_id") or "").strip(), (row.get("caption") or "").strip()
    if not yid or not caption:
        raise Skip("bad row", f"{where}: empty youtube_id or caption")
    try:
        start = float((row.get("start_time") or "").strip())
    except ValueError:
        raise Skip("bad row", f"{where}: start_time {row.get('start_time')!r} is not a number") from None
    cap_id = (row.get("audiocap_id") or "").strip()
    cap_ids: list[int | str] = [int(cap_id) if cap_id.isdigit() else cap_id] if cap_id else []
    start_value: int | float = int(start) if start.is_integer() else start
    return Entry(
        key=f"{yid}_{_seconds(start)[0]}",
        captions=[caption],
        where=where,
        stems=(*candidate_stems(yid, start), *((cap_id,) if cap_id else ())),
        extra={"youtube_id": yid, "start_time": start_value, "audiocap_ids": cap_ids},
    )


def _seconds(t: float) -> list[str]:
    """The spellings of a time in file names: ``30``, ``30.0``, ``30.000`` (``30.5``, ``30.500``)."""
    t = float(t)
    forms = [str(int(t)) if t.is_integer() else repr(t), f"{t:.1f}", f"{t:.3f}"]
    return list(dict.fromkeys(forms))


def candidate_stems(youtube_id: str, start: float, seconds: float = CLIP_SECONDS) -> list[str]:
    """File names (without extension) the common download tools give the clip, most specific first."""
    starts, ends = _seconds(start), _seconds(start + seconds)
    out = []
    for base in (youtube_id, f"Y{youtube_id}"):
        for s, e in zip(starts, ends):
            out += [f"{base}_{s}_{e}", f"{base}_{s}-{e}", f"{base}_{s}"]
    out += [f"{youtube_id}_{round(start * 1000)}", f"Y{youtube_id}", youtube_id]
    return list(dict.fromkeys(out))
