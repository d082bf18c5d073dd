"""WavCaps JSON (``{"num_captions_per_audio": 1, "data": [...]}``, one file per subset).

Fields per subset (``json_files/<subset>/*_final.json`` of the cvssp/WavCaps release):

* AudioSet_SL (``as_final.json``): ``id`` (``"Yb0RFKhbpFJA.wav"``), ``caption``, ``audio``, ``duration``;
* BBC_Sound_Effects (``bbc_final.json``): ``id`` (``"07066104"``), ``caption``, ``description``,
  ``category``, ``audio``, ``duration``, ``download_link`` (``.../07066104.wav.zip``);
* FreeSound (``fsd_final.json``): ``id`` (``"180913"``), ``file_name``, ``href``, ``tags``, ``description``,
  ``author``, ``caption``, ``audio``, ``duration``, ``download_link`` (``.../180913__user__name.wav``);
* SoundBible (``sb_final.json``): ``id`` (``"2219"``), ``title``, ``description``, ``author``, ``href``,
  ``caption``, ``audio``, ``duration``, ``download_link``.

In the release ``audio`` is the placeholder ``"wav_path"``; the audio zips unpack to
``<Subset>_flac/<id>.flac`` (AudioSet_SL: ``Y<ytid>.flac``).  So an ``audio`` / ``wav_path`` value is used
as a path when it is a real one, else the clip is looked up by ``id`` (without ``.wav``) and, for FreeSound,
by the name of its download link.  Files with ``num_captions_per_audio`` > 1 use ``caption_1`` ... keys.
Point ``--audio-dir`` at one subset's directory: FreeSound and SoundBible ids are both plain numbers.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from sara.data.prepare.entries import Entry, Problems, Skip
from sara.data.prepare.tables import Row, read_json_records, require_keys

__all__ = ["LICENSE", "SOURCE", "read_wavcaps"]

SOURCE = "wavcaps"
LICENSE = "WavCaps: academic use only (audio: FreeSound / BBC Sound Effects / SoundBible / AudioSet terms)"
PLACEHOLDER = "wav_path"
_BY_FILE = {"as": "AudioSet_SL", "bbc": "BBC_Sound_Effects", "fsd": "FreeSound", "sb": "SoundBible"}
_BY_LINK = {"freesound.org": "FreeSound", "bbcrewind": "BBC_Sound_Effects", "soundbible.com": "SoundBible"}


def read_wavcaps(path: Path, problems: Problems) -> list[Entry]:
    """One entry per ``data`` item; items without an id or caption go to ``problems``."""
    rows = read_json_records(path)
    require_keys(rows, ("id",), 'a WavCaps JSON ({"data": [{"id", "caption", ...}]})')
    file_subset = _BY_FILE.get(path.stem.split("_")[0].lower())
    entries = []
    for row in rows:
        try:
            entries.append(_entry(row, file_subset))
        except Skip as skip:
            problems.add(skip)
    return entries


def _entry(item: Row, file_subset: str | None) -> Entry:
    """The entry of one WavCaps item."""
    where, obj = item
    if not isinstance(obj, dict) or not str(obj.get("id") or "").strip():
        raise Skip("bad row", f"{where}: not an object with an id")
    captions = _captions(obj)
    if not captions:
        raise Skip("bad row", f"{where}: no caption")
    wid = str(obj["id"]).strip()
    stem = wid[:-4] if wid.lower().endswith(".wav") else wid
    subset = file_subset or _subset(obj, stem)
    return Entry(
        key=f"{subset}/{stem}",
        captions=captions,
        where=where,
        paths=tuple(v for k in ("audio", "wav_path", "path") if _is_path(v := obj.get(k))),
        stems=_stems(stem, subset, obj),
        extra={"wavcaps_id": wid, "subset": subset},
    )


def _captions(obj: dict[str, Any]) -> list[str]:
    """``caption``, or ``caption_1`` ... ``caption_N``."""
    keys = ["caption"] + [f"caption_{i}" for i in range(1, 10)]
    return [str(obj[k]).strip() for k in keys if isinstance(obj.get(k), str) and obj[k].strip()]


def _is_path(value: object) -> bool:
    """Whether an ``audio`` value is a real path (not empty, not the release's ``"wav_path"`` placeholder)."""
    return isinstance(value, str) and bool(value.strip()) and value.strip() != PLACEHOLDER


def _subset(obj: dict[str, Any], stem: str) -> str:
    """The subset an item of an unrecognised file name comes from (by its download link, or its id)."""
    link = str(obj.get("download_link") or "")
    hit = next((name for host, name in _BY_LINK.items() if host in link), None)
    if hit:
        return hit
    return "AudioSet_SL" if stem.startswith("Y") and not stem[1:].isdigit() else "WavCaps"


def _stems(stem: str, subset: str, obj: dict[str, Any]) -> tuple[str, ...]:
    """Names the clip's audio may have: its id, AudioSet ids with and without ``Y``, a download link's name."""
    out = [stem]
    if subset == "AudioSet_SL":
        out.append(stem[1:] if stem.startswith("Y") else f"Y{stem}")
    link_name = PurePosixPath(str(obj.get("download_link") or "").split("?")[0]).name
    if link_name.lower().endswith((".wav", ".flac", ".mp3", ".ogg")):
        out.append(link_name.rsplit(".", 1)[0])
    return tuple(dict.fromkeys(out))
