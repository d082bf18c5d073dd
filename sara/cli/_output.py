"""Output paths for the CLI: checked before any work starts, safe file names, collisions kept apart.

The writers themselves are in the library (:func:`sara.serialization.write_output_atomically`,
:func:`sara.audio.io.save_audio`): atomic, and refusing directories, devices and FIFOs.  This module adds
what only a command knows: that ``-o`` must be a directory (or a file) *before* a model is loaded, and how
to turn captions into file names that are valid, bounded and distinct.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from pathlib import Path

from sara.errors import OutputPathError
from sara.serialization import check_output_file

__all__ = ["MAX_NAME_BYTES", "UniqueNames", "check_output_dir", "check_output_file", "safe_file_name"]

MAX_NAME_BYTES = 200  # well under the 255-byte limit of common file systems, leaving room for "-N" and temp names
_UNSAFE = re.compile(r'[\\/*?:"<>|]')


def check_output_dir(path: str | Path, flag: str = "-o") -> Path:
    """``path`` as an output directory: refused (one line) when it exists and is not a directory.

    The directory itself is created by the writers, so a command that fails early leaves nothing behind.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{flag} {p}: exists and is not a directory")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(f"{flag} {p}: {parent} is not a directory")
            break
    return p


def safe_file_name(text: str, *, suffix: str = ".wav", max_bytes: int = MAX_NAME_BYTES) -> str:
    """A file name made from free text (e.g. a caption): no NUL or control characters, no path separators or
    characters Windows forbids, no leading dots (hidden files, ``..``), at most ``max_bytes`` UTF-8 bytes
    including ``suffix`` (cut on a character boundary); ``"clip"`` when nothing is left."""
    text = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    text = _UNSAFE.sub("_", text).strip().lstrip(".").strip() or "clip"
    budget = max_bytes - len(suffix.encode("utf-8"))
    encoded = text.encode("utf-8")[:budget]
    return encoded.decode("utf-8", errors="ignore").rstrip() + suffix


class UniqueNames:
    """Hands out distinct file names: a name already given becomes ``stem-2.ext``, ``stem-3.ext``, ...

    The mapping depends only on the order of the requests, so a rerun over the same inputs (resuming a batch
    that skips existing files) gets the same names.  Each collision is reported on stderr once.
    """

    def __init__(self, command: str) -> None:
        self.command = command
        self._taken: set[str] = set()
        self.collisions = 0

    def claim(self, name: str, what: str = "") -> str:
        """A name not handed out before, derived from ``name``."""
        if name.lower() not in self._taken:
            self._taken.add(name.lower())
            return name
        stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
        n = 2
        while f"{stem}-{n}{dot}{ext}".lower() in self._taken:
            n += 1
        unique = f"{stem}-{n}{dot}{ext}"
        self._taken.add(unique.lower())
        self.collisions += 1
        label = f" ({what})" if what else ""
        print(f"sara {self.command}: {name} is already used by another input; writing{label} as {unique}",
              file=sys.stderr)
        return unique
