"""One error line and an exit status, never a traceback, for failures the user caused.

:func:`run_guarded` is what ``sara``'s entry point runs every command through, and what the scripts in
``recipes/`` run their ``main`` through, so both report bad input the same way:

* 2 -- :class:`~sara.errors.ConfigError` (bad arguments the parser could not catch);
* 1 -- any other :class:`~sara.errors.SaraError`, an ``OSError`` (missing file, permission denied, disk full),
  an unreadable JSON file, or running out of memory;
* 130 -- interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from sara.errors import ConfigError, SaraError


def print_error_line(label: str, message: str) -> None:
    """``LABEL: error: MESSAGE`` on stderr, on one line.

    An error re-raised from a DataLoader worker carries the worker's traceback in its message ("Caught
    AudioError in DataLoader worker process 0. Original Traceback ..."); only its last line, the original
    message, is shown.
    """
    text = str(message)
    if "Original Traceback" in text:
        last = [ln for ln in text.splitlines() if ln.strip()][-1]
        text = last.split(": ", 1)[1] if ": " in last and last.split(": ", 1)[0].endswith("Error") else last
    print(f"{label}: error: {' '.join(text.split()) or 'failed'}", file=sys.stderr)


def os_error_line(exc: OSError) -> str:
    """``FILE: REASON`` for an ``OSError``."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{exc.filename}: {reason}" if exc.filename else reason


def run_guarded(label: str, body: Callable[[], int | None]) -> int:
    """Run ``body()`` and return its exit status (None = 0); user-caused failures print one line (see above).

    Anything else (a bug) keeps its traceback.
    """
    try:
        return int(body() or 0)
    except ConfigError as exc:
        return _report(label, str(exc), 2)
    except SaraError as exc:
        return _report(label, str(exc), 1)
    except OSError as exc:  # permission denied, disk full, file-size limit, ...
        return _report(label, os_error_line(exc), 1)
    except json.JSONDecodeError as exc:
        return _report(label, f"not valid JSON: {exc}", 1)
    except MemoryError:
        return _report(label, "out of memory (try shorter inputs or a smaller --batch-size)", 1)
    except RuntimeError as exc:  # torch.OutOfMemoryError (CUDA/MPS) is a RuntimeError; anything else is a bug
        if "out of memory" not in str(exc).lower():
            raise
        return _report(label, "out of memory on the device (try shorter inputs or a smaller --batch-size)", 1)
    except KeyboardInterrupt:
        print(f"{label}: interrupted", file=sys.stderr)
        return 130


def _report(label: str, message: str, status: int) -> int:
    """Print the error line and return ``status``."""
    print_error_line(label, message)
    return status
