"""Synthesized speech with exact transcripts (espeak-ng).

Voice = language voice + variant (``en-us+f3``); the speaker gender comes from the variant's entry in
``espeak-ng --voices=variant`` (F/M), so captions say "a woman"/"a man" only when espeak says so. Texts are
seeded template sentences (English) plus, when available, Tux Paint's stamp descriptions and their
translations for the other languages.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Iterator
from functools import lru_cache, partial

import numpy as np

from sara.data.captions import speech_captions
from sara.data.clips import RawClip, clip_rng, read_audio
from sara.errors import SaraError

__all__ = [
    "ENGLISH_VOICES",
    "OTHER_VOICES",
    "VARIANTS",
    "english_sentence",
    "iter_espeak_clips",
    "variant_genders",
]

SOURCE = "synth-espeak-ng"
LICENSE = "GPL-3+ (espeak-ng output)"
ENGLISH_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
OTHER_VOICES = ("fr", "es", "de", "it", "pt", "nl", "ca", "ro", "ru", "da", "el", "pl")
# human-sounding variants only (no robots, whispers or monsters)
VARIANTS = (
    "f2",
    "f3",
    "f4",
    "f5",
    "Alicia",
    "Andrea",
    "Annie",
    "belinda",
    "linda",
    "steph",
    "anika",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "adam",
    "Andy",
    "david",
    "john",
    "max",
    "paul",
    "robert",
    "edward",
)

_SUBJECTS = (
    "the old man",
    "my sister",
    "the teacher",
    "a little dog",
    "the children",
    "our neighbour",
    "the train",
    "the doctor",
    "everyone",
    "the farmer",
    "a bird",
    "the captain",
    "my friend",
)
_VERBS = (
    "is waiting",
    "will arrive",
    "was singing",
    "has left",
    "is reading",
    "can swim",
    "was running",
    "is cooking dinner",
    "will call back",
    "is sleeping",
    "was laughing",
    "is painting the fence",
)
_PLACES = (
    "at the station",
    "in the garden",
    "near the river",
    "after lunch",
    "on Monday morning",
    "in the kitchen",
    "by the window",
    "at the end of the street",
    "before sunset",
    "in the library",
)
_EXTRAS = (
    "Please close the door.",
    "What time is it?",
    "Thank you very much.",
    "I think it will rain today.",
    "Turn left at the next corner.",
    "The meeting starts at nine.",
    "Could you repeat that, please?",
    "Welcome to the museum.",
    "The shop is closed on Sundays.",
    "Let's go for a walk.",
)


def english_sentence(rng: random.Random) -> str:
    """A short seeded English sentence ("The teacher is waiting at the station.")."""
    if rng.random() < 0.2:
        return rng.choice(_EXTRAS)
    text = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_PLACES)}."
    return text[0].upper() + text[1:]


@lru_cache(maxsize=1)
def variant_genders() -> dict[str, str]:
    """``{variant: "female"|"male"}`` parsed from ``espeak-ng --voices=variant``."""
    exe = _espeak()
    listing = subprocess.run([exe, "--voices=variant"], capture_output=True, text=True, check=True).stdout
    genders = {}
    for line in listing.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5 and cols[4].startswith("!v/"):
            genders[cols[4][3:]] = {"F": "female", "M": "male"}.get(cols[2][-1:], "unknown")
    return genders


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SaraError("espeak-ng is not installed: apt-get install -y espeak-ng")
    return exe


def synthesize(text: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, int]:
    """Run espeak-ng and return ``([T] float32, sample_rate)`` (22.05 kHz)."""
    cmd = [
        _espeak(),
        "-v",
        voice,
        "-s",
        str(rate),
        "-p",
        str(pitch),
        "--stdout",
    ]  # text on stdin: never an option
    wav = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=True).stdout
    return read_audio(wav)


def iter_espeak_clips(
    num_clips: int, seed: int, texts: dict[str, list[str]], english_share: float = 0.7
) -> Iterator[RawClip]:
    """``num_clips`` utterances over voices and variants.

    Args:
        num_clips: how many clips.
        seed: corpus seed.
        texts: extra texts per language code (e.g. Tux Paint translations); English uses templates too.
        english_share: fraction of English utterances.
    """
    genders = variant_genders()
    variants = [v for v in VARIANTS if v in genders]
    others = [lang for lang in OTHER_VOICES if texts.get(lang)]
    for i in range(num_clips):
        uid = f"espeak-{i:05d}"
        rng = clip_rng(seed, SOURCE, uid)
        if rng.random() < english_share or not others:
            lang, voice = "en", rng.choice(ENGLISH_VOICES)
            pool = texts.get("en", [])
            text = rng.choice(pool) if pool and rng.random() < 0.4 else english_sentence(rng)
        else:
            lang = voice = rng.choice(others)
            text = rng.choice(texts[lang])
        variant = rng.choice(variants)
        gender = genders[variant]
        rate, pitch = rng.randrange(130, 191, 5), rng.randrange(30, 71, 5)
        caps = speech_captions(text, rng, gender=gender, language=lang)
        yield RawClip(
            source=SOURCE,
            uid=uid,
            load=partial(synthesize, text, f"{voice}+{variant}", rate, pitch),
            class_name={"female": "woman speaking", "male": "man speaking"}.get(gender, "person speaking"),
            group="speech",
            captions=tuple(caps),
            license=LICENSE,
            split_key=uid,
            kind="speech",
            raw_label=text,
            synthetic=True,
            extra={
                "transcript": text,
                "language": lang,
                "gender": gender,
                "voice": f"{voice}+{variant}",
                "rate": rate,
                "pitch": pitch,
            },
        )
