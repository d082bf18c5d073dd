"""Step progress reported from inside sampling loops, for callers that cannot pass a callback down the
pipeline's layers (the server's per-job progress).

    with progress_hook(lambda phase, done, total: print(phase, done, total)):
        pipe("a dog barks")

Loops call :func:`report` with a phase name and ``done`` of ``total`` steps: ``"diffusion"`` (the latent
diffusion samplers, one call per UNet step) and ``"tokens"`` (the AudioGen LM, one call per sequence step).
Without a hook :func:`report` does nothing.  An exception raised by the hook stops the loop (cancellation).
The hook is a context variable, so it belongs to the thread (or task) that set it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["ProgressHook", "progress_hook", "report"]

ProgressHook = Callable[[str, int, int], None]  # (phase, steps done, total steps)
_HOOK: ContextVar[ProgressHook | None] = ContextVar("sara_progress_hook", default=None)


@contextmanager
def progress_hook(hook: ProgressHook) -> Iterator[None]:
    """Call ``hook(phase, done, total)`` at every reported step inside the ``with`` block."""
    token = _HOOK.set(hook)
    try:
        yield
    finally:
        _HOOK.reset(token)


def report(phase: str, done: int, total: int) -> None:
    """A sampling loop finished step ``done`` of ``total`` in ``phase`` (no-op without a hook)."""
    hook = _HOOK.get()
    if hook is not None:
        hook(phase, done, total)
