"""User-facing errors.

Anything a user can cause (bad audio, bad arguments, unknown checkpoint layouts) raises a subclass of
:class:`SaraError` with a one-line message.  The CLI prints that line and exits non-zero; programming
errors are left to propagate as ordinary exceptions.
"""

from __future__ import annotations


class SaraError(Exception):
    """Base class for errors caused by user input; the message is shown as-is."""


class AudioError(SaraError):
    """Unreadable, empty, non-finite or otherwise unusable audio."""


class CheckpointError(SaraError):
    """A checkpoint or release directory that cannot be loaded (missing files, unknown layout)."""


class ConfigError(SaraError):
    """An invalid configuration value or an unknown configuration key."""


class OutputError(SaraError):
    """An output that cannot be written: a directory, device or FIFO in its place, no space, a size limit."""


class OutputPathError(OutputError, ConfigError):
    """An output path that cannot be used (a directory, device or FIFO in its place, a bad extension or
    name): a bad argument, so the CLI exits with status 2 (a failed write is a plain :class:`OutputError`)."""
