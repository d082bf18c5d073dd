"""Readers for the allowed speech (Asterisk, KTuberling) and music (Wesnoth, Widelands, GCompris, Lomiri) packages.

Music only has titles, so each source gets one hand-written style line; long tracks are cut into
consecutive 10 s segments that share the track's split key.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from sara.data.captions import LANGUAGE_NAMES, music_captions, speech_captions
from sara.data.clips import RawClip, clip_rng, read_audio
from sara.data.containers import iter_rcc_files
from sara.data.sources_common import SourceContext, slug

__all__ = [
    "read_asterisk",
    "read_gcompris_music",
    "read_ktuberling",
    "read_lomiri",
    "read_wesnoth_music",
    "read_widelands_music",
]


def _asterisk_transcripts(root: Path) -> dict[str, str]:
    """``{relative path without extension: transcript}`` from ``core-sounds-en.txt.gz``."""
    found = sorted(root.parent.glob("asterisk-core-sounds-en/usr/share/doc/*/core-sounds-en.txt.gz"))
    found += sorted(root.rglob("core-sounds-en.txt.gz"))
    if not found:
        return {}
    out = {}
    for line in gzip.open(found[0], "rt", encoding="utf-8", errors="replace"):
        m = re.match(r"^([^;:\s][^:]*):\s*(.+)$", line.strip())
        if m:
            out[m.group(1).strip()] = m.group(2).strip()
    return out


def read_asterisk(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """Asterisk English prompts (one female voice, 8 kHz) with exact transcripts."""
    source = "asterisk-core-sounds-en-wav"
    transcripts = _asterisk_transcripts(root)
    if not transcripts:
        ctx.skips.add(source, "transcripts (asterisk-core-sounds-en) not found", str(root))
        return
    base = root / "usr/share/asterisk/sounds/en_US_f_Allison"
    for path in sorted(base.rglob("*.wav")):
        key = path.relative_to(base).with_suffix("").as_posix()
        text = transcripts.get(key)
        if not text or text.startswith(("[", "(")) or key.startswith("silence/"):
            ctx.skips.add(source, "no spoken transcript (silence, tone or unlisted)", key)
            continue
        uid = slug(key)
        if not ctx.keep_speech(uid):
            continue
        rng = clip_rng(ctx.seed, source, uid)
        caps = speech_captions(text, rng, gender="female", quality="telephone-quality")
        yield RawClip(
            source=source,
            uid=uid,
            load=partial(read_audio, path),
            class_name="woman speaking",
            group="speech",
            captions=tuple(caps),
            license="CC-BY-SA-3.0",
            split_key=f"asterisk/{key}",
            kind="speech",
            raw_label=text,
            max_segments=2,
            extra={"transcript": text, "language": "en", "gender": "female"},
        )


def read_ktuberling(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """KTuberling spoken object names: exact in English, "the <Language> word for X" otherwise."""
    source = "ktuberling-data"
    for path in sorted((root / "usr/share/ktuberling/sounds").glob("*/*.ogg")):
        lang = path.parent.name
        if lang not in LANGUAGE_NAMES:
            continue
        word = path.stem.split("_", 1)[-1].replace("_", " ")
        uid = slug(f"{lang}-{path.stem}")
        if not ctx.keep_speech(uid):
            continue
        rng = clip_rng(ctx.seed, source, uid)
        if lang == "en":
            caps = tuple(speech_captions(word, rng))
        else:
            name = LANGUAGE_NAMES[lang]
            caps = (
                f'a person says the {name} word for "{word}"',
                f"a single word spoken in {name}",
                f'someone naming "{word}" in {name}',
            )
        yield RawClip(
            source=source,
            uid=uid,
            load=partial(read_audio, path),
            class_name="person speaking",
            group="speech",
            captions=caps,
            license="GPL-2+",
            split_key=f"ktuberling/{path.stem}",
            kind="speech",
            raw_label=path.stem,
            extra={"transcript": word if lang == "en" else "", "language": lang, "gender": "unknown"},
        )


def _music_clip(
    ctx: SourceContext,
    source: str,
    uid: str,
    audio: Path | bytes,
    style: str,
    cls: str,
    title: str,
    license: str,
    max_segments: int,
) -> RawClip:
    """A music track cut into up to ``max_segments`` 10 s segments."""
    rng = clip_rng(ctx.seed, source, uid)
    return RawClip(
        source=source,
        uid=uid,
        load=partial(read_audio, audio),
        class_name=cls,
        group="music",
        captions=tuple(music_captions(style, rng, title=title)),
        license=license,
        split_key=f"{source}/{uid}",
        kind="music",
        raw_label=title,
        max_segments=max_segments,
        extra={"title": title},
    )


def read_wesnoth_music(root: Path, ctx: SourceContext, max_segments: int = 8) -> Iterator[RawClip]:
    """Battle for Wesnoth soundtrack (orchestral fantasy score)."""
    for path in sorted(root.glob("usr/share/games/wesnoth/*/data/core/music/*.ogg")):
        if path.stem == "silence":
            continue
        title = path.stem.replace("_", " ").replace("-", " ")
        yield _music_clip(
            ctx,
            "wesnoth-1.16-music",
            slug(path.stem),
            path,
            "orchestral fantasy film-score music",
            "orchestral music",
            title,
            "GPL-2+",
            max_segments,
        )


def read_widelands_music(root: Path, ctx: SourceContext, max_segments: int = 4) -> Iterator[RawClip]:
    """Widelands in-game music (calm orchestral / acoustic strategy-game music)."""
    for path in sorted(root.glob("usr/share/games/widelands/data/music/*.ogg")):
        yield _music_clip(
            ctx,
            "widelands-data",
            "music-" + slug(path.stem),
            path,
            "calm orchestral strategy-game music",
            "orchestral music",
            "",
            "GPL-2+",
            max_segments,
        )


_WORLD_MUSIC = {
    "africa": "traditional African music with drums",
    "america": "American folk music",
    "australia": "Australian aboriginal music with didgeridoo",
    "beethoven": "classical piano music by Beethoven",
    "ireland": "traditional Irish folk music",
    "italy": "traditional Italian music",
    "japan": "traditional Japanese music",
    "mexico": "traditional Mexican music",
    "middleeast": "traditional Middle Eastern music",
}


def read_gcompris_music(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """GCompris "explore world music" clips, captioned by region."""
    path = root / "usr/share/gcompris-qt/rcc/explore_world_music.rcc"
    if not path.is_file():
        return
    for name, data in iter_rcc_files(path):
        stem = Path(name).stem
        if stem in _WORLD_MUSIC and name.lower().endswith((".ogg", ".wav", ".mp3")):
            cls = "classical music" if stem == "beethoven" else "world music"
            yield _music_clip(
                ctx, "gcompris-qt-data", "music-" + slug(stem), data, _WORLD_MUSIC[stem], cls, "", "GPL-3+", 3
            )


def read_lomiri(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """Lomiri ringtones and notification sounds (titles such as "Koto chords", "Wind chime")."""
    source = "lomiri-sounds"
    for path in sorted((root / "usr/share/sounds/lomiri").rglob("*.ogg")):
        kind = path.parent.name
        if kind not in ("ringtones", "notifications"):
            continue
        title = path.stem.replace("_", " ").lower()
        noun = "phone ringtone" if kind == "ringtones" else "notification sound"
        caps = [f'a {noun} called "{title}"', f"a melodic {noun}", f"a short {noun} melody"]
        yield RawClip(
            source=source,
            uid=slug(f"{kind}-{path.stem}"),
            load=partial(read_audio, path),
            class_name="ringtone" if kind == "ringtones" else "notification",
            group="ui and alerts",
            captions=tuple(caps),
            license="CC-BY-3.0 / CC0",
            split_key=f"lomiri/{path.stem}",
            kind="ui",
            raw_label=path.stem,
        )
