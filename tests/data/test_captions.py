"""Caption templates and compositional mixture captions."""

from __future__ import annotations

import random

from sara.data.captions import (
    mixture_captions,
    phrase_captions,
    sequence_captions,
    sfx_captions,
    speech_captions,
    with_article,
)


def test_sfx_captions_first_is_canonical_and_seeded():
    a = sfx_captions("a dog barking", random.Random(1))
    b = sfx_captions("a dog barking", random.Random(1))
    assert a == b
    assert a[0] == "the sound of a dog barking"
    assert len(a) == 3 and len(set(a)) == 3
    assert all("a dog barking" in c for c in a)


def test_sfx_context_is_appended():
    caps = sfx_captions("a coin pickup chime", random.Random(0), context="in a retro video game")
    assert all(c.endswith("in a retro video game") for c in caps)


def test_speech_captions_gender_and_language():
    en = speech_captions("Hello there.", random.Random(0), gender="female")
    assert en[0] == 'a woman says "Hello there."'
    fr = speech_captions("Un chat.", random.Random(0), gender="male", language="fr")
    assert fr[0] == 'a man says "Un chat." in French'
    unknown = speech_captions("Hi", random.Random(0))
    assert unknown[0].startswith("a person says")


def test_phrase_captions_carry_the_score_facts():
    caps = phrase_captions("violin", random.Random(0), num_notes=8, key="D minor", bpm=96)
    assert caps[0] == "a violin playing an 8-note melody in D minor at 96 bpm"


def test_mixture_caption_composition():
    caps = mixture_captions("the sound of a dog barking", "rain falling", random.Random(0))
    assert caps[0] == "a dog barking while rain falling in the background"
    assert all("dog barking" in c and "rain falling" in c for c in caps)
    seq = sequence_captions(
        "the sound of a door closing", "a recording of footsteps walking", random.Random(0)
    )
    assert seq[0] == "a door closing, followed by footsteps walking"


def test_with_article():
    assert with_article("owl hooting") == "an owl hooting"
    assert with_article("dog") == "a dog"
    assert with_article("the sea") == "the sea"
    assert with_article("drums") == "drums"
    assert with_article("pizzicato strings") == "pizzicato strings"
    assert with_article("synth bass") == "a synth bass"
