"""Caption templates.

Every clip gets several captions (the first is the canonical ``caption``) so that text models do not
overfit one template. Template choice is drawn from a per-clip seeded generator, so captions do not
depend on processing order.
"""

from __future__ import annotations

import random

__all__ = [
    "LANGUAGE_NAMES",
    "instrument_note_captions",
    "mixture_captions",
    "music_captions",
    "phrase_captions",
    "sequence_captions",
    "sfx_captions",
    "speech_captions",
    "with_article",
]

LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "fr": "French",
    "ro": "Romanian",
    "ru": "Russian",
    "ca": "Catalan",
    "bg": "Bulgarian",
    "es": "Spanish",
    "be": "Belarusian",
    "el": "Greek",
    "da": "Danish",
    "lt": "Lithuanian",
    "nl": "Dutch",
    "pt": "Portuguese",
    "pt_BR": "Brazilian Portuguese",
    "de": "German",
    "it": "Italian",
    "sv": "Swedish",
    "pl": "Polish",
    "fi": "Finnish",
    "cs": "Czech",
    "hu": "Hungarian",
    "tr": "Turkish",
    "wa": "Walloon",
}

_SFX_TEMPLATES = ("the sound of {np}", "{np} can be heard", "a recording of {np}", "{np}, close up")
_SPEECH_NOUNS = {"female": "a woman", "male": "a man", "unknown": "a person", "child": "a child"}


def with_article(np: str) -> str:
    """Prefix ``a``/``an`` unless the phrase already starts with a determiner or is plural-looking."""
    first = np.split(" ", 1)[0].lower() if np else ""
    if first in {"a", "an", "the", "some", "two", "three", "several", "many", "people", "someone"}:
        return np
    last = np.rsplit(" ", 1)[-1].lower()
    if last.endswith("s") and not last.endswith(("ss", "us")):  # plural: "drums", "pizzicato strings"
        return np
    return ("an " if first[:1] in "aeiou" else "a ") + np


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _sample(templates: list[str], rng: random.Random, k: int) -> list[str]:
    """The first template plus ``k - 1`` others in seeded random order, deduplicated."""
    rest = templates[1:]
    rng.shuffle(rest)
    out: list[str] = []
    for t in [templates[0], *rest]:
        if t not in out:
            out.append(t)
    return out[:k]


def sfx_captions(phrase: str, rng: random.Random, k: int = 3, context: str = "") -> list[str]:
    """Captions for a sound event; ``phrase`` is a noun phrase ("a dog barking").

    Args:
        phrase: caption phrase from the label table.
        rng: per-clip generator.
        k: number of captions.
        context: optional suffix such as "in a retro video game".
    """
    suffix = f" {context}" if context else ""
    return _sample([t.format(np=phrase) + suffix for t in _SFX_TEMPLATES], rng, k)


def speech_captions(
    transcript: str,
    rng: random.Random,
    *,
    gender: str = "unknown",
    language: str = "en",
    k: int = 3,
    quality: str = "",
) -> list[str]:
    """Captions for speech with an exact transcript.

    Args:
        transcript: the words spoken.
        gender: "female", "male", "child" or "unknown".
        language: language code (key of :data:`LANGUAGE_NAMES`); non-English adds "in <Language>".
        quality: optional prefix adjective such as "telephone-quality".
    """
    who = _SPEECH_NOUNS.get(gender, "a person")
    lang = "" if language.split("_")[0] == "en" else f" in {LANGUAGE_NAMES.get(language, language)}"
    q = f"{quality} " if quality else ""
    templates = [
        f'{who} says "{transcript}"{lang}',
        f'{q}speech{lang}: {who} saying "{transcript}"',
        f'{_capital(who)} speaking{lang}: "{transcript}"',
        f"{who} speaking{lang}",
    ]
    return _sample(templates, rng, k)


def instrument_note_captions(
    instrument: str, rng: random.Random, *, detail: str = "", k: int = 3
) -> list[str]:
    """Captions for a single hit/note of an instrument ("a snare drum hit"); ``detail`` e.g. "soft"."""
    adj = f"{detail} " if detail else ""
    templates = [
        f"{with_article(adj + instrument)} hit"
        if "drum" in instrument or "cymbal" in instrument
        else f"{with_article(instrument)} playing a single {adj}note",
        f"a single {adj}{instrument} sound",
        f"the sound of {with_article(instrument)}",
        f"{with_article(instrument)} sample",
    ]
    return _sample(templates, rng, k)


def phrase_captions(
    instrument: str,
    rng: random.Random,
    *,
    num_notes: int,
    key: str,
    bpm: int,
    k: int = 3,
    synthetic: bool = True,
) -> list[str]:
    """Captions for a synthesized melodic phrase with known notes, key and tempo."""
    tempo = "slow" if bpm < 90 else "fast" if bpm > 135 else "moderate"
    templates = [
        f"{with_article(instrument)} playing {_a_num(num_notes)}-note melody in {key} at {bpm} bpm",
        f"a {tempo} {instrument} melody in {key}",
        f"{with_article(instrument)} playing a short phrase",
        f"a melody played on {with_article(instrument)}, {bpm} beats per minute",
    ]
    if synthetic:
        templates.append(f"a synthesized {instrument} playing {_a_num(num_notes)}-note phrase")
    return _sample(templates, rng, k)


def music_captions(style: str, rng: random.Random, *, title: str = "", k: int = 3) -> list[str]:
    """Captions for a music excerpt with a hand-written ``style`` line and an optional title."""
    named = f' called "{title}"' if title else ""
    templates = [f"{style}", f"an excerpt of {style}{named}", f"{style}, instrumental", f"a piece of {style}"]
    return _sample(templates, rng, k)


def mixture_captions(foreground: str, background: str, rng: random.Random, k: int = 3) -> list[str]:
    """Compositional captions for ``foreground`` over ``background`` (each a canonical caption)."""
    fg = _strip_sound_of(foreground)
    bg = _strip_sound_of(background)
    templates = [
        f"{fg} while {bg} in the background",
        f"{fg}, with {bg} in the background",
        f"{bg} in the background as {fg}",
        f"{fg} over {bg}",
    ]
    return _sample(templates, rng, k)


def sequence_captions(first: str, second: str, rng: random.Random, k: int = 3) -> list[str]:
    """Captions for ``first`` followed by ``second`` (each a canonical caption)."""
    a, b = _strip_sound_of(first), _strip_sound_of(second)
    templates = [f"{a}, followed by {b}", f"{a} and then {b}", f"first {a}, then {b}", f"{b} after {a}"]
    return _sample(templates, rng, k)


def _a_num(n: int) -> str:
    """``"a 5"`` / ``"an 8"`` / ``"an 11"``: the article a spoken number takes."""
    return f"an {n}" if str(n).startswith("8") or n in (11, 18) else f"a {n}"


def _strip_sound_of(caption: str) -> str:
    """``"the sound of a dog barking"`` -> ``"a dog barking"`` for composition."""
    for prefix in ("the sound of ", "a recording of "):
        if caption.startswith(prefix):
            return caption[len(prefix) :]
    return caption
