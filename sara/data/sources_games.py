"""Readers for the allowed game / desktop packages whose labels come from folder and file names.

Raw labels are ``"<folder> <stem>"`` strings looked up in the label table (source-specific rows map
game-speak to real-world events; fictional sounds are dropped there).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sara.data.clips import RawClip
from sara.data.containers import iter_rcc_files, iter_zip_files
from sara.data.labels import take_stem
from sara.data.sources_common import SourceContext, labelled_clip, slug

__all__ = [
    "read_bucklespring",
    "read_freedesktop",
    "read_gcompris",
    "read_libreoffice",
    "read_lmms",
    "read_minetest",
    "read_ufoai",
    "read_wesnoth_data",
    "read_widelands_sfx",
]

_AUDIO = (".ogg", ".wav", ".flac", ".mp3", ".oga")


def _files(base: Path) -> list[Path]:
    """Audio files under ``base``, sorted."""
    return sorted(p for p in base.rglob("*") if p.suffix.lower() in _AUDIO and p.is_file())


def _tree_reader(
    ctx: SourceContext,
    source: str,
    base: Path,
    license: str,
    *,
    parent_first: bool = True,
    context: str = "",
    only: tuple[str, ...] | None = None,
) -> Iterator[RawClip]:
    """Label each file by ``"<parent> <stem>"`` then ``"<stem>"``; takes of one stem share a split key.

    ``only`` restricts the walk to these top-level folders of ``base``.
    """
    for path in _files(base):
        rel = path.relative_to(base)
        if only is not None and rel.parts[0] not in only:
            continue
        parent = rel.parent.as_posix().replace("/", " ")
        labels = [f"{parent} {path.stem}", path.stem] if parent_first and parent != "." else [path.stem]
        clip = labelled_clip(
            ctx,
            source,
            slug(rel.with_suffix("").as_posix()),
            path,
            labels,
            license=license,
            split_key=f"{rel.parent.as_posix()}/{take_stem(path.stem)}",
            context=context,
        )
        if clip:
            yield clip


def read_ufoai(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """UFO:AI ``0snd.pk3`` (zip): ``sound/<category>/<name>.ogg``."""
    source = "ufoai-sound"
    for pk3 in sorted(root.rglob("*.pk3")):
        for name, data in iter_zip_files(pk3, _AUDIO):
            rel = Path(name.removeprefix("sound/"))
            folder = rel.parent.as_posix().replace("/", " ")
            clip = labelled_clip(
                ctx,
                source,
                slug(rel.with_suffix("").as_posix()),
                data,
                [f"{folder} {rel.stem}", rel.stem],
                license="CC-BY-3.0 / GPL-2+",
                split_key=f"{rel.parent.as_posix()}/{take_stem(rel.stem)}",
                max_segments=2,
            )
            if clip:
                yield clip


_GCOMPRIS_RCC = (
    "instruments",
    "explore_farm_animals",
    "memory-sound",
    "melody",
    "canal_lock",
    "watercycle",
    "mining",
    "traffic",
    "railroad",
    "clickgame",
    "money",
)


def _gcompris_stem(stem: str) -> str:
    """``"LRTrain_slowing_down_01_LA_cut"`` -> ``"Train_slowing_down_01"`` (memory-sound naming)."""
    stem = stem.removeprefix("LR")
    for suffix in ("_LA_cut", "LACut", "_LA", "LA"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def read_gcompris(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """GCompris sounds stored in Qt ``.rcc`` bundles (instruments, farm animals, memory-game sounds)."""
    source = "gcompris-qt-data"
    base = root / "usr/share/gcompris-qt/rcc"
    for bundle in _GCOMPRIS_RCC:
        path = base / f"{bundle}.rcc"
        if not path.is_file():
            continue
        for name, data in iter_rcc_files(path):
            if not name.lower().endswith(_AUDIO):
                continue
            stem = _gcompris_stem(Path(name).stem)
            clip = labelled_clip(
                ctx,
                source,
                slug(f"{bundle}-{Path(name).stem}"),
                data,
                [f"{bundle} {stem}", stem],
                license="GPL-3+",
                split_key=f"{bundle}/{take_stem(stem)}",
            )
            if clip:
                yield clip


def read_libreoffice(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """LibreOffice gallery sounds (file names only; cryptic ones are dropped in the table)."""
    base = root / "usr/lib/libreoffice/share/gallery/sounds"
    yield from _tree_reader(ctx, "libreoffice-common", base, "MPL-2.0", parent_first=False)


def read_wesnoth_data(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """Battle for Wesnoth sound effects: ``sounds/[ambient/]<creature-or-weapon>-<event>-N.ogg``."""
    for base in sorted(root.glob("usr/share/games/wesnoth/*/data/core/sounds")):
        yield from _tree_reader(ctx, "wesnoth-1.16-data", base, "GPL-2+")


def read_minetest(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """Minetest Game sounds: ``mods/<mod>/sounds/<mod>_<material>_<event>.N.ogg``."""
    source = "minetest-data"
    for path in sorted(root.glob("usr/share/games/minetest/games/minetest_game/mods/*/sounds/*.ogg")):
        stem = path.name.split(".")[0]
        clip = labelled_clip(
            ctx,
            source,
            slug(path.stem),
            path,
            [stem],
            license="CC-BY-SA-3.0 / LGPL-2.1+",
            split_key=f"minetest/{stem}",
        )
        if clip:
            yield clip


def read_widelands_sfx(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """Widelands sound effects (``data/sound`` and ``data/world``); music is read separately."""
    base = root / "usr/share/games/widelands/data"
    for sub in ("sound", "world"):
        if (base / sub).is_dir():
            yield from _tree_reader(ctx, "widelands-data", base / sub, "GPL-2+")


def read_lmms(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """LMMS sample library: ``samples/<category>/<name>NN.ogg`` (waveforms and shapes are dropped)."""
    categories = (
        "basses",
        "bassloops",
        "beats",
        "drums",
        "effects",
        "instruments",
        "latin",
        "misc",
        "stringsnpads",
    )
    yield from _tree_reader(ctx, "lmms-common", root / "usr/share/lmms/samples", "GPL-2+", only=categories)


def read_bucklespring(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """Bucklespring: IBM Model M key press/release recordings (one class)."""
    source = "bucklespring-data"
    for path in _files(root / "usr/share/buckle/wav"):
        key_code, _, updown = path.stem.partition("-")
        what = "released" if updown == "1" else "pressed"
        clip = labelled_clip(
            ctx,
            source,
            slug(path.stem),
            path,
            ["mechanical keyboard key"],
            license="GPL-2+",
            split_key=f"buckle/{key_code}",
            context=f"being {what}",
        )
        if clip:
            yield clip


def read_freedesktop(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """freedesktop.org sound theme: event names (``dialog-warning``, ``phone-incoming-call``, ...)."""
    base = root / "usr/share/sounds/freedesktop/stereo"
    yield from _tree_reader(ctx, "sound-theme-freedesktop", base, "CC-BY-SA-3.0 / GPL-2+", parent_first=False)
