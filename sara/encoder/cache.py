"""Finding a clip's latents in a ``sara encode`` cache: by exact relative path, never by file name alone.

``sara encode DIR -o CACHE`` writes ``CACHE/<path relative to DIR>.safetensors``, so a clip listed in a
manifest as ``audio/a/x.wav`` may sit at ``CACHE/audio/a/x.safetensors`` (the corpus root was encoded),
``CACHE/a/x.safetensors`` (``audio/`` was encoded) or ``CACHE/x.safetensors``.  The full relative path is
taken as is; a shorter one is accepted only when the file's ``source`` metadata (the input path that
``sara encode`` read) is the clip's own audio file.  Matching by stem alone would pair ``a/x.wav`` with the
latents of ``b/x.wav``, or captions of a clip that does not exist with another clip's latents.
"""

from __future__ import annotations

import os
from pathlib import Path

from safetensors import safe_open

__all__ = ["find_cached_latents", "latent_source"]


def find_cached_latents(cache: Path, relative: Path, audio: Path | None = None) -> Path | None:
    """The cache file holding the latents of the clip ``relative`` (its manifest path), or None.

    Args:
        cache: root of the latent cache.
        relative: the clip's path relative to its manifest / input directory (any audio suffix).
        audio: the clip's audio file, required to accept a match on a shortened relative path.

    Returns:
        ``cache / relative.with_suffix(".safetensors")`` if it exists; else the first existing
        ``cache / <trailing parts>.safetensors`` whose ``source`` metadata is ``audio``; else None.
    """
    parts = relative.with_suffix(".safetensors").parts
    exact = cache.joinpath(*parts)
    if exact.is_file():
        return exact
    if audio is None:
        return None
    for i in range(1, len(parts)):
        candidate = cache.joinpath(*parts[i:])
        if candidate.is_file() and _same_file(latent_source(candidate), audio):
            return candidate
    return None


def latent_source(path: Path) -> str | None:
    """The ``source`` metadata of a latent cache file (None when absent or unreadable)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("source")
    except Exception:  # noqa: BLE001 - any unreadable header simply does not match
        return None


def _same_file(source: str | None, audio: Path) -> bool:
    """Whether the recorded ``source`` path names ``audio`` (the same inode, or the same resolved path)."""
    if not source:
        return False
    try:
        return os.path.samefile(source, audio)
    except OSError:
        return Path(source).resolve() == audio.resolve()
