"""Writing output files safely: checked targets and atomic replacement (shared by every writer in sara).

:func:`write_output_atomically` writes into a temporary file beside the target and renames it into place,
so an interrupted or failed write (no space, ``RLIMIT_FSIZE``, a kill) never leaves a partial file and never
damages an existing one; :func:`check_output_file` refuses targets that are not (or cannot become) regular
files -- ``os.replace`` would otherwise swap a device such as ``/dev/null`` for a regular file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from sara.errors import OutputError, OutputPathError

__all__ = ["check_output_file", "write_bytes_atomically", "write_output_atomically", "write_text_atomically"]


def check_output_file(path: str | os.PathLike[str], *, suffixes: tuple[str, ...] | None = None) -> Path:
    """Refuse an output path that cannot safely receive a regular file; returns it as a ``Path``.

    Refused, with one line: an existing directory, device node, FIFO, socket or any other non-regular file
    in its place (``os.replace`` would otherwise swap a device such as ``/dev/null`` for a regular file), a
    parent that exists but is not a directory, an empty or over-long file name, and -- when ``suffixes``
    is given -- an extension not in it (case-insensitive).

    Raises:
        OutputPathError: the path is unusable (a bad argument).
    """
    p = Path(path)
    if not p.name or p.name in (".", ".."):
        raise OutputPathError(f"{p}: not a file name")
    if len(os.fsencode(p.name)) > 255:
        raise OutputPathError(f"{p.name[:40]}...: file name longer than 255 bytes")
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputPathError(f"{p}: cannot use as output ({exc.strerror})") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputPathError(f"{p}: is a directory (give a file name)")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputPathError(f"{p}: not a regular file (device, FIFO or socket); refusing to replace it")
    if p.parent.exists() and not p.parent.is_dir():
        raise OutputPathError(f"{p.parent}: not a directory")
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise OutputPathError(f"{p}: unsupported extension {p.suffix or '(none)'!r}; use one of {', '.join(suffixes)}")
    return p


def write_output_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], None], *,
                            suffixes: tuple[str, ...] | None = None) -> Path:
    """Write a file through ``write(binary_file)`` into a temporary file beside ``path``, then rename it in.

    The target is checked first (:func:`check_output_file`); parent directories are created.  On any
    failure (no space, ``RLIMIT_FSIZE``, permission, an exception in ``write``) the temporary file is
    removed and an existing ``path`` is left untouched, so nothing is ever half-written.  The new file gets
    the old file's permissions, or the umask default for a new one.

    Raises:
        OutputError: the path is unusable or the write failed (one line with the reason).
    """
    p = check_output_file(path, suffixes=suffixes)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name[:200]}.", suffix=".tmp", dir=p.parent)
    except OSError as exc:
        raise OutputError(f"{p}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _output_mode(p))
        os.replace(tmp, p)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{p}: cannot write ({exc.strerror or exc}); nothing was written") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes, **kwargs: Any) -> Path:
    """:func:`write_output_atomically` for a ready ``bytes`` payload."""
    return write_output_atomically(path, lambda f: f.write(data), **kwargs)


def write_text_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`write_output_atomically` for UTF-8 text (``run.json``, manifests, model cards)."""
    return write_bytes_atomically(path, text.encode("utf-8"))


def _output_mode(path: Path) -> int:
    """Permission bits for a new file at ``path``: the existing file's, else ``0o666`` minus the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask
