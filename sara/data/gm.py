"""General MIDI program table: program -> (class, instrument phrase, group, lowest note, highest note).

Note ranges keep each instrument inside the register where FluidR3_GM has samples (some programs render
silence outside it, e.g. Contrabass at MIDI 60-72). Programs 120-127 are the GM sound effects.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GM_PROGRAMS", "GM_SFX", "GmProgram", "GmSfx"]


@dataclass(frozen=True)
class GmProgram:
    """A melodic GM program. ``low``/``high`` are MIDI note numbers."""

    program: int
    class_name: str
    instrument: str
    low: int
    high: int
    group: str = "melodic instruments"


def _p(
    program: int, class_name: str, instrument: str, low: int, high: int, group: str = "melodic instruments"
):
    return GmProgram(program, class_name, instrument, low, high, group)


GM_PROGRAMS: tuple[GmProgram, ...] = (
    _p(0, "piano", "piano", 48, 84),
    _p(1, "piano", "bright piano", 48, 84),
    _p(2, "piano", "electric grand piano", 48, 84),
    _p(3, "piano", "honky-tonk piano", 48, 84),
    _p(4, "electric piano", "electric piano", 48, 84),
    _p(5, "electric piano", "electric piano", 48, 84),
    _p(6, "harpsichord", "harpsichord", 48, 84),
    _p(7, "harpsichord", "clavinet", 48, 84),
    _p(8, "celesta", "celesta", 60, 96),
    _p(9, "glockenspiel", "glockenspiel", 72, 100),
    _p(10, "music box", "music box", 60, 96),
    _p(11, "vibraphone", "vibraphone", 53, 89),
    _p(12, "marimba", "marimba", 48, 84),
    _p(13, "xylophone", "xylophone", 65, 96),
    _p(14, "tubular bells", "tubular bells", 60, 77),
    _p(15, "dulcimer", "dulcimer", 60, 84),
    _p(16, "organ", "electric organ", 48, 84),
    _p(17, "organ", "percussive organ", 48, 84),
    _p(18, "organ", "rock organ", 48, 84),
    _p(19, "church organ", "church organ", 36, 84),
    _p(20, "organ", "reed organ", 48, 84),
    _p(21, "accordion", "accordion", 53, 84),
    _p(22, "harmonica", "harmonica", 60, 84),
    _p(23, "accordion", "bandoneon", 53, 84),
    _p(24, "acoustic guitar", "nylon-string guitar", 40, 76),
    _p(25, "acoustic guitar", "steel-string guitar", 40, 76),
    _p(26, "electric guitar", "jazz guitar", 40, 76),
    _p(27, "electric guitar", "clean electric guitar", 40, 76),
    _p(28, "electric guitar", "muted electric guitar", 40, 76),
    _p(29, "distorted guitar", "overdriven guitar", 40, 76),
    _p(30, "distorted guitar", "distorted guitar", 40, 76),
    _p(31, "electric guitar", "guitar harmonics", 52, 76),
    _p(32, "bass guitar", "acoustic bass", 28, 55),
    _p(33, "bass guitar", "fingered electric bass", 28, 55),
    _p(34, "bass guitar", "picked electric bass", 28, 55),
    _p(35, "bass guitar", "fretless bass", 28, 55),
    _p(36, "bass guitar", "slap bass", 28, 55),
    _p(37, "bass guitar", "slap bass", 28, 55),
    _p(38, "synth bass", "synth bass", 28, 55),
    _p(39, "synth bass", "synth bass", 28, 55),
    _p(40, "violin", "violin", 55, 88),
    _p(41, "viola", "viola", 48, 81),
    _p(42, "cello", "cello", 36, 69),
    _p(43, "contrabass", "double bass", 28, 55),
    _p(44, "strings", "tremolo strings", 48, 84),
    _p(45, "plucked strings", "pizzicato strings", 43, 79),
    _p(46, "harp", "harp", 36, 91),
    _p(47, "timpani", "timpani", 40, 55, "percussion"),
    _p(48, "strings", "string ensemble", 48, 84),
    _p(49, "strings", "slow string ensemble", 48, 84),
    _p(50, "synth strings", "synth strings", 48, 84),
    _p(51, "synth strings", "synth strings", 48, 84),
    _p(52, "choir", "choir singing aah", 48, 79),
    _p(53, "choir", "voices singing ooh", 48, 79),
    _p(54, "synth voice", "synth voice", 48, 79),
    _p(55, "orchestra hit", "orchestra hit", 48, 72),
    _p(56, "trumpet", "trumpet", 55, 82),
    _p(57, "trombone", "trombone", 40, 72),
    _p(58, "tuba", "tuba", 28, 58),
    _p(59, "trumpet", "muted trumpet", 55, 82),
    _p(60, "french horn", "french horn", 41, 77),
    _p(61, "brass section", "brass section", 48, 79),
    _p(62, "brass section", "synth brass", 48, 79),
    _p(63, "brass section", "synth brass", 48, 79),
    _p(64, "saxophone", "soprano saxophone", 56, 87),
    _p(65, "saxophone", "alto saxophone", 49, 80),
    _p(66, "saxophone", "tenor saxophone", 44, 75),
    _p(67, "saxophone", "baritone saxophone", 36, 68),
    _p(68, "oboe", "oboe", 58, 89),
    _p(69, "oboe", "english horn", 52, 81),
    _p(70, "bassoon", "bassoon", 34, 67),
    _p(71, "clarinet", "clarinet", 50, 86),
    _p(72, "flute", "piccolo", 74, 100),
    _p(73, "flute", "flute", 60, 93),
    _p(74, "recorder", "recorder", 60, 89),
    _p(75, "pan flute", "pan flute", 60, 89),
    _p(76, "pan flute", "blown bottle", 60, 84),
    _p(77, "shakuhachi", "shakuhachi", 55, 84),
    _p(78, "whistle", "whistle", 72, 96),
    _p(79, "ocarina", "ocarina", 60, 84),
    _p(80, "synth lead", "square-wave synth lead", 48, 84),
    _p(81, "synth lead", "sawtooth synth lead", 48, 84),
    _p(82, "synth lead", "calliope synth lead", 48, 84),
    _p(83, "synth lead", "chiff synth lead", 48, 84),
    _p(84, "synth lead", "charang synth lead", 48, 84),
    _p(85, "synth lead", "voice synth lead", 48, 84),
    _p(86, "synth lead", "fifths synth lead", 48, 84),
    _p(87, "synth lead", "bass and lead synth", 40, 76),
    _p(88, "synth pad", "new age synth pad", 48, 84),
    _p(89, "synth pad", "warm synth pad", 48, 84),
    _p(90, "synth pad", "polysynth pad", 48, 84),
    _p(91, "synth pad", "choir synth pad", 48, 84),
    _p(92, "synth pad", "bowed synth pad", 48, 84),
    _p(93, "synth pad", "metallic synth pad", 48, 84),
    _p(94, "synth pad", "halo synth pad", 48, 84),
    _p(95, "synth pad", "sweep synth pad", 48, 84),
    _p(104, "sitar", "sitar", 48, 77),
    _p(105, "banjo", "banjo", 48, 84),
    _p(106, "shamisen", "shamisen", 50, 79),
    _p(107, "koto", "koto", 55, 84),
    _p(108, "kalimba", "kalimba", 60, 84),
    _p(109, "bagpipe", "bagpipe", 60, 77),
    _p(110, "violin", "fiddle", 55, 88),
    _p(111, "oboe", "shehnai", 60, 84),
    _p(112, "bells", "tinkle bell", 72, 96, "percussion"),
    _p(113, "cowbell", "agogo bells", 60, 84, "percussion"),
    _p(114, "steel drum", "steel drums", 52, 76, "percussion"),
    _p(115, "woodblock", "woodblock", 60, 84, "percussion"),
    _p(116, "taiko drum", "taiko drum", 36, 60, "percussion"),
    _p(117, "tom drum", "melodic tom", 40, 64, "percussion"),
    _p(118, "electronic drum", "synth drum", 40, 64, "percussion"),
)


@dataclass(frozen=True)
class GmSfx:
    """A GM sound-effect program (120-127): how to play it and how to caption it."""

    program: int
    class_name: str
    phrase: str
    group: str
    note: int
    hit_seconds: float  # length of one note-on
    hits: tuple[int, int]  # min/max number of notes


GM_SFX: tuple[GmSfx, ...] = (
    GmSfx(
        120,
        "guitar fret noise",
        "guitar strings squeaking under fingers",
        "melodic instruments",
        60,
        0.6,
        (3, 6),
    ),
    GmSfx(121, "breathing", "someone breathing", "human non-speech", 60, 1.6, (2, 4)),
    GmSfx(122, "waves", "waves on a seashore", "water", 60, 7.0, (1, 1)),
    GmSfx(123, "bird song", "a bird tweeting", "animals", 72, 0.8, (3, 7)),
    GmSfx(124, "telephone ring", "a telephone ringing", "ui and alerts", 60, 2.5, (1, 3)),
    GmSfx(125, "helicopter", "a helicopter flying", "vehicles", 60, 7.0, (1, 1)),
    GmSfx(126, "applause", "an audience applauding", "human non-speech", 60, 6.0, (1, 1)),
    GmSfx(127, "gunshot", "gunshots", "weapons", 48, 0.7, (1, 5)),
)
