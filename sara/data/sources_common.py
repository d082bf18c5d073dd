"""Helpers shared by the per-source readers: label lookup into clips, licences, ids."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

from sara.data.captions import sfx_captions
from sara.data.clips import RawClip, SkipLog, clip_rng, read_audio
from sara.data.labels import LabelTable

__all__ = ["SourceContext", "debian_licenses", "kind_of_group", "labelled_clip", "slug"]

_INSTRUMENT_GROUPS = {"percussion", "melodic instruments"}


class SourceContext:
    """What every reader needs: the label table, the seed, the skip log and the speech subsampling.

    Attributes:
        table: label table.
        seed: corpus seed.
        skips: skip log to report into.
        speech_fraction: fraction of real speech clips to keep (deterministic subsample), 0..1.
    """

    def __init__(self, table: LabelTable, seed: int, skips: SkipLog, speech_fraction: float = 1.0) -> None:
        self.table = table
        self.seed = seed
        self.skips = skips
        self.speech_fraction = speech_fraction

    def keep_speech(self, uid: str) -> bool:
        """Deterministic subsampling decision for one speech clip."""
        return clip_rng(self.seed, "speech-subsample", uid).random() < self.speech_fraction


def slug(text: str) -> str:
    """File-system-safe id: ``"Dsharp minor_DOWN_00"`` -> ``"dsharp-minor-down-00"``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def kind_of_group(group: str) -> str:
    """The clip kind implied by a coarse group."""
    if group in _INSTRUMENT_GROUPS:
        return "instrument"
    if group in ("speech", "music"):
        return group
    return "ui" if group == "ui and alerts" else "sfx"


def labelled_clip(
    ctx: SourceContext,
    source: str,
    uid: str,
    audio: str | Path | bytes | Callable,
    raw_labels: list[str],
    *,
    license: str,
    split_key: str,
    context: str = "",
    max_segments: int = 1,
) -> RawClip | None:
    """Look ``raw_labels`` up in order (first match wins) and build a clip with sfx-style captions.

    Returns None (and logs a skip) when no label matches or the match is a dropped label.
    """
    entry = None
    for raw in raw_labels:
        entry = ctx.table.lookup(raw, source)
        if entry is not None:
            break
    if entry is None:
        ctx.skips.add(source, "no label mapping", raw_labels[0])
        return None
    if entry.drop:
        ctx.skips.add(source, "label dropped (fictional, cryptic or unusable)", raw_labels[0])
        return None
    rng = clip_rng(ctx.seed, source, uid)
    load = audio if callable(audio) else partial(read_audio, audio)
    return RawClip(
        source=source,
        uid=uid,
        load=load,
        class_name=entry.class_name,
        group=entry.group,
        captions=tuple(sfx_captions(entry.phrase, rng, context=context)),
        license=license,
        split_key=split_key,
        kind=kind_of_group(entry.group),
        raw_label=raw_labels[0],
        max_segments=max_segments,
    )


def debian_licenses(root: Path, package: str) -> tuple[str, dict[str, str]]:
    """Parse ``usr/share/doc/<package>/copyright`` (DEP-5): ``(default licence, {file basename: licence})``.

    The default is the licence of the ``Files: *`` stanza ("" if the file is missing or not DEP-5).
    """
    path = root / "usr/share/doc" / package / "copyright"
    if not path.is_file():
        return "", {}
    default, per_file = "", {}
    for stanza in path.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        files = re.search(r"^Files:\s*(.+(?:\n\s+.+)*)", stanza, re.MULTILINE)
        lic = re.search(r"^License:\s*(\S.*)$", stanza, re.MULTILINE)
        if not files or not lic:
            continue
        for pattern in files.group(1).split():
            if pattern == "*":
                default = default or lic.group(1).strip()
            else:
                per_file[Path(pattern).name] = lic.group(1).strip()
    return default, per_file
