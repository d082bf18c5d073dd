"""Finding a clip's audio file under the audio directory, and reading its header (never its samples).

A clip names its audio by paths (exact, relative to the audio directory; the same path with another audio
extension is accepted too) and by stems (a file name without extension, searched anywhere below the
directory through a one-time index).  A stem found in several directories is ambiguous and skipped, never
guessed; several files of one stem in one directory (``x.wav`` and ``x.flac``) are the same clip, and the
first extension of :data:`AUDIO_SUFFIXES` wins.  Stems are compared in Unicode NFC, case-sensitively
(YouTube ids are case-sensitive).
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePath

import soundfile as sf

from sara.audio.io import AUDIO_EXTENSIONS, MAX_CHANNELS, MAX_DURATION_S, MAX_SAMPLE_RATE
from sara.data.prepare.entries import Entry, Skip

__all__ = ["AUDIO_SUFFIXES", "AudioIndex", "AudioInfo", "probe"]

# lookup order; .m4a is looked up so that such a clip is reported as unreadable rather than missing
AUDIO_SUFFIXES = (*AUDIO_EXTENSIONS, ".m4a")


def _nfc(text: str) -> str:
    """``text`` in Unicode NFC (macOS file systems hand out NFD names)."""
    return unicodedata.normalize("NFC", text)


class AudioIndex:
    """Resolves :class:`~sara.data.prepare.entries.Entry` audio names to files below ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._stems: dict[str, list[Path]] | None = None

    def resolve(self, entry: Entry) -> Path:
        """The entry's audio file: its paths first, then its stems (and the stems of bare file names).

        Raises:
            Skip: ``missing audio`` or ``ambiguous audio``.
        """
        for rel in entry.paths:
            hit = self._exact(rel)
            if hit is not None:
                return hit
        bare = [_stem(rel) for rel in entry.paths if len(PurePath(rel).parts) == 1]
        for stem in (*entry.stems, *bare):
            hit = self._by_stem(stem)
            if hit is not None:
                return hit
        named = f" ({entry.paths[0]})" if entry.paths and _stem(entry.paths[0]) != entry.key else ""
        raise Skip("missing audio", f"{entry.key} [{entry.where}]{named}")

    def _exact(self, rel: str) -> Path | None:
        """``rel`` below the root (or absolute) if it is a file, else the same path with an audio suffix."""
        p = Path(rel) if Path(rel).is_absolute() else self.root / rel
        if p.is_file():
            return p
        base = p.name[: -len(p.suffix)] if p.suffix.lower() in AUDIO_SUFFIXES else p.name
        return next((q for ext in AUDIO_SUFFIXES if (q := p.with_name(base + ext)).is_file()), None)

    def _by_stem(self, stem: str) -> Path | None:
        """The one file of this stem below the root (None when there is none)."""
        if self._stems is None:
            self._stems = _index(self.root)
        hits = self._stems.get(_nfc(stem), [])
        if len({h.parent for h in hits}) > 1:
            shown = ", ".join(str(h.relative_to(self.root)) for h in hits[:3])
            raise Skip("ambiguous audio", f"{stem}: {len(hits)} files ({shown})")
        return min(hits, key=lambda h: AUDIO_SUFFIXES.index(h.suffix.lower()), default=None)


def _stem(name: str) -> str:
    """``name`` without its audio suffix (other dots are part of the name)."""
    suffix = PurePath(name).suffix
    return name[: -len(suffix)] if suffix.lower() in AUDIO_SUFFIXES else name


def _index(root: Path) -> dict[str, list[Path]]:
    """Audio files below ``root`` by NFC stem (hidden entries skipped; symlinked directories followed once)."""
    index: dict[str, list[Path]] = defaultdict(list)
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            stem, ext = os.path.splitext(name)
            if ext.lower() in AUDIO_SUFFIXES and not name.startswith("."):
                index[_nfc(stem)].append(Path(dirpath, name))
    return index


@dataclass(frozen=True)
class AudioInfo:
    """What a manifest records of an audio file (from its header)."""

    duration: float
    sample_rate: int


def probe(path: Path) -> AudioInfo:
    """Duration and sample rate from the file's header (``soundfile.info``; the samples are not decoded).

    Raises:
        Skip: ``unreadable audio`` (not audio, a format libsndfile cannot read, a corrupt header, no
            samples) or ``too long`` (over the :data:`~sara.audio.io.MAX_DURATION_S` limit of ``load_audio``).
    """
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as exc:
        reason = re.sub(r"^Error opening .*?: ", "", " ".join(str(exc).split())) or type(exc).__name__
        hint = " (m4a/AAC is not readable by libsndfile: convert to flac)" if path.suffix.lower() == ".m4a" else ""
        raise Skip("unreadable audio", f"{path.name}: {reason}{hint}") from None
    bad = _bad_header(info)
    if bad:
        raise Skip("unreadable audio", f"{path.name}: {bad}")
    duration = info.frames / info.samplerate
    if duration > MAX_DURATION_S:
        raise Skip("too long", f"{path.name}: {duration:.0f} s (the limit is {MAX_DURATION_S:.0f} s)")
    return AudioInfo(round(duration, 3), int(info.samplerate))


def _bad_header(info: sf._SoundFileInfo) -> str | None:
    """Why a readable header still describes unusable audio, or None."""
    if not 1 <= info.samplerate <= MAX_SAMPLE_RATE:
        return f"invalid sample rate {info.samplerate}"
    if not 1 <= info.channels <= MAX_CHANNELS:
        return f"{info.channels} channels"
    if info.frames <= 0:
        return "no samples"
    return None
