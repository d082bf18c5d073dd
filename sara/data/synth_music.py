"""Synthesized instrument phrases, drum patterns and GM sound effects with exact captions (tinysoundfont).

Every clip is described by a small, fully seeded score (program, notes, tempo, key), rendered in process
with ``tinysoundfont`` from a General MIDI SoundFont (FluidR3_GM by default) at the corpus sample rate.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from sara.data.captions import phrase_captions, sfx_captions
from sara.data.clips import RawClip, clip_rng
from sara.data.gm import GM_PROGRAMS, GM_SFX, GmProgram, GmSfx
from sara.errors import SaraError

__all__ = [
    "NOTE_NAMES",
    "Score",
    "iter_drum_clips",
    "iter_gm_sfx_clips",
    "iter_phrase_clips",
    "make_phrase",
    "render",
]

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
SOURCE = "synth-tinysoundfont"
LICENSE = "MIT (FluidR3_GM soundfont)"


@dataclass(frozen=True)
class Score:
    """A monophonic score: ``notes`` are ``(midi_note, start_s, duration_s, velocity)``."""

    program: int
    notes: tuple[tuple[int, float, float, int], ...]
    drums: bool = False
    tail_s: float = 0.8

    @property
    def duration(self) -> float:
        """Length in seconds including the release tail."""
        return max(s + d for _, s, d, _ in self.notes) + self.tail_s


def make_phrase(prog: GmProgram, rng: random.Random) -> tuple[Score, dict]:
    """A random diatonic phrase inside the program's range; returns the score and its description."""
    root, mode = rng.randrange(12), rng.choice(("major", "minor"))
    bpm, num_notes = rng.randrange(70, 161, 2), rng.randint(4, 10)
    beat = 60.0 / bpm
    scale = [n for n in range(prog.low, prog.high + 1) if (n - root) % 12 in _SCALES[mode]]
    idx, t, notes = rng.randrange(len(scale) // 4, max(len(scale) * 3 // 4, len(scale) // 4 + 1)), 0.0, []
    for _ in range(num_notes):
        length = rng.choice((0.5, 1.0, 1.0, 2.0)) * beat
        notes.append((scale[idx], round(t, 4), round(length * 0.95, 4), rng.randint(70, 115)))
        t += length
        idx = min(max(idx + rng.choice((-2, -1, -1, 1, 1, 2, 3)), 0), len(scale) - 1)
        if t > 8.5:
            break
    info = {"key": f"{NOTE_NAMES[root]} {mode}", "bpm": bpm, "num_notes": len(notes)}
    return Score(prog.program, tuple(notes)), info


@lru_cache(maxsize=2)
def _load_synth(soundfont: str, sample_rate: int):  # noqa: ANN202 - (tinysoundfont.Synth, soundfont id)
    """Load a SoundFont once per process (0.3-0.5 s each); renders reset the voices before use."""
    try:
        import tinysoundfont
    except ImportError:
        raise SaraError(
            "tinysoundfont is missing: pip install --no-deps tinysoundfont (the 'data' extra)"
        ) from None
    synth = tinysoundfont.Synth(samplerate=sample_rate, gain=-3.0)
    return synth, synth.sfload(soundfont)


def render(score: Score, soundfont: str | Path, sample_rate: int) -> tuple[np.ndarray, int]:
    """Render a score to ``([T] float32 mono, sample_rate)`` with tinysoundfont.

    Raises:
        SaraError: tinysoundfont is not installed.
    """
    synth, sfid = _load_synth(str(soundfont), sample_rate)
    # sounds_off() only starts a quick release; render it out so no voice of the previous score leaks into
    # this one (otherwise the audio would depend on render order and incremental builds would differ)
    synth.sounds_off()
    synth.generate(sample_rate // 10)
    chan = 9 if score.drums else 0
    synth.program_select(chan, sfid, 128 if score.drums else 0, score.program, score.drums)
    events = sorted(
        [(s, 1, n, v) for n, s, _, v in score.notes] + [(s + d, 0, n, 0) for n, s, d, _ in score.notes]
    )
    out, now = [], 0
    for time_s, on, note, vel in events:
        target = int(round(time_s * sample_rate))
        if target > now:
            out.append(np.frombuffer(synth.generate(target - now), dtype=np.float32).copy())
            now = target
        synth.noteon(chan, note, vel) if on else synth.noteoff(chan, note)
    out.append(np.frombuffer(synth.generate(int(score.tail_s * sample_rate)), dtype=np.float32).copy())
    stereo = np.concatenate(out).reshape(-1, 2)
    return stereo.mean(axis=1), sample_rate


def iter_phrase_clips(num_clips: int, seed: int, soundfont: Path, sample_rate: int) -> Iterator[RawClip]:
    """``num_clips`` melodic phrases cycling over the melodic GM programs."""
    for i in range(num_clips):
        prog = GM_PROGRAMS[i % len(GM_PROGRAMS)]
        uid = f"phrase-{i:05d}-p{prog.program:03d}"
        rng = clip_rng(seed, SOURCE, uid)
        score, info = make_phrase(prog, rng)
        caps = phrase_captions(
            prog.instrument, rng, num_notes=info["num_notes"], key=info["key"], bpm=info["bpm"]
        )
        yield RawClip(
            source=SOURCE,
            uid=uid,
            load=partial(render, score, soundfont, sample_rate),
            class_name=prog.class_name,
            group=prog.group,
            captions=tuple(caps),
            license=LICENSE,
            split_key=uid,
            kind="instrument",
            raw_label=f"gm program {prog.program} ({prog.instrument})",
            synthetic=True,
            extra={"gm_program": prog.program, **info},
        )


# GM percussion keys: 36 kick, 38 snare, 42 closed hat, 46 open hat, 49 crash, 51 ride, 45/48/50 toms
_DRUM_STYLES: dict[str, tuple[tuple[int, tuple[int, ...]], ...]] = {
    "rock": ((36, (0, 8)), (38, (4, 12)), (42, (0, 2, 4, 6, 8, 10, 12, 14))),
    "disco": ((36, (0, 4, 8, 12)), (38, (4, 12)), (46, (2, 6, 10, 14))),
    "funk": ((36, (0, 3, 10)), (38, (4, 12, 15)), (42, tuple(range(16)))),
    "half-time": ((36, (0,)), (38, (8,)), (51, (0, 4, 8, 12))),
    "shuffle": ((36, (0, 8)), (38, (4, 12)), (42, (0, 3, 4, 7, 8, 11, 12, 15))),
    "tom groove": ((36, (0, 8)), (45, (2, 10)), (48, (4, 12)), (50, (6, 14))),
}


def _drum_score(style: str, bpm: int, bars: int, rng: random.Random) -> Score:
    """A drum-kit pattern of ``bars`` bars of 16 sixteenths, with a crash on the downbeat."""
    step = 60.0 / bpm / 4
    notes = [(49, 0.0, 0.5, 100)]
    for bar in range(bars):
        for key, steps in _DRUM_STYLES[style]:
            for s in steps:
                t = (bar * 16 + s) * step
                notes.append((key, round(t, 4), round(step * 0.9, 4), rng.randint(70, 120)))
    return Score(0, tuple(sorted(notes, key=lambda n: n[1])), drums=True, tail_s=1.0)


def iter_drum_clips(num_clips: int, seed: int, soundfont: Path, sample_rate: int) -> Iterator[RawClip]:
    """Drum-kit patterns in several styles and tempos (GM percussion bank)."""
    styles = sorted(_DRUM_STYLES)
    for i in range(num_clips):
        style = styles[i % len(styles)]
        uid = f"drums-{i:05d}-{style.replace(' ', '-')}"
        rng = clip_rng(seed, SOURCE, uid)
        bpm = rng.randrange(80, 161, 4)
        bars = max(1, min(4, int(8.0 / (240.0 / bpm))))
        caps = (
            f"a drum kit playing a {style} beat at {bpm} bpm",
            f"a {style} drum pattern",
            f"drums playing a steady {style} rhythm, {bars} bars",
        )
        yield RawClip(
            source=SOURCE,
            uid=uid,
            load=partial(render, _drum_score(style, bpm, bars, rng), soundfont, sample_rate),
            class_name="drum kit",
            group="percussion",
            captions=caps,
            license=LICENSE,
            split_key=uid,
            kind="instrument",
            raw_label=f"gm drums {style}",
            synthetic=True,
            extra={"bpm": bpm, "style": style},
        )


def _sfx_score(fx: GmSfx, rng: random.Random) -> Score:
    """Notes for a GM sound-effect program: ``hits`` note-ons of about ``hit_seconds`` each."""
    notes, t = [], 0.0
    for _ in range(rng.randint(*fx.hits)):
        length = fx.hit_seconds * rng.uniform(0.7, 1.3)
        notes.append((fx.note + rng.randint(-5, 5), round(t, 4), round(length, 4), rng.randint(90, 127)))
        t += length + rng.uniform(0.05, 0.6)
    return Score(fx.program, tuple(notes), tail_s=0.5)


def iter_gm_sfx_clips(
    num_per_program: int, seed: int, soundfont: Path, sample_rate: int
) -> Iterator[RawClip]:
    """Renders of the GM sound-effect programs 120-127 (seashore, bird tweet, telephone, ...)."""
    for fx in GM_SFX:
        for i in range(num_per_program):
            uid = f"gmsfx-p{fx.program}-{i:04d}"
            rng = clip_rng(seed, SOURCE, uid)
            caps = tuple(sfx_captions(fx.phrase, rng))
            yield RawClip(
                source=SOURCE,
                uid=uid,
                load=partial(render, _sfx_score(fx, rng), soundfont, sample_rate),
                class_name=fx.class_name,
                group=fx.group,
                captions=caps,
                license=LICENSE,
                split_key=uid,
                kind="sfx",
                raw_label=f"gm program {fx.program}",
                synthetic=True,
                extra={"gm_program": fx.program},
            )
