"""Argument parsing that answers bad input with one line: range-checked numeric types and a one-line parser.

Every ``type=int`` / ``type=float`` flag of every command is checked, without each command having to
remember to: :func:`harden` walks the finished parser and replaces plain ``int`` by
``int_range(0, MAX_INT)`` and plain ``float`` by ``float_range(0, MAX_FLOAT)`` (finite, non-negative: no
sara flag takes a negative number, NaN or infinity), ``--seed`` by :func:`seed` and ``--device`` by
:func:`device`.  Commands declare tighter bounds with :func:`int_range` / :func:`float_range` themselves
(``--steps`` >= 1, durations > 0, ...); those are left alone.  A value out of range is an argparse error:
``sara CMD: error: argument --steps: must be an integer in [1, 10000], got 0`` and exit status 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn

__all__ = ["MAX_FLOAT", "MAX_INT", "MAX_SEED", "OneLineParser", "device", "float_range", "harden", "int_range",
           "seed"]

MAX_INT = 2**31 - 1  # no count or size flag is sensibly larger; bigger values only overflow later
MAX_FLOAT = 1e9
MAX_SEED = 2**32 - 1  # numpy's seed range, the narrowest of the RNGs a run seeds (accelerate's set_seed)


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``PROG: error: MESSAGE``) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        """Print one line to stderr and exit with status 2 (argparse's status for bad arguments)."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def int_range(low: int, high: int) -> Callable[[str], int]:
    """An argparse type accepting integers in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer in [{low}, {high}], got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer in [{low}, {high}], got {value}")
        return value

    parse.__name__ = "integer"
    parse._sara_checked = True  # type: ignore[attr-defined]
    return parse


def float_range(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type accepting finite numbers in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number in {interval}, got {text!r}") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"must be a finite number in {interval}, got {text}")
        return value

    parse.__name__ = "number"
    parse._sara_checked = True  # type: ignore[attr-defined]
    return parse


seed = int_range(0, MAX_SEED)


def device(text: str) -> str:
    """An argparse type for ``--device``: a torch device that exists on this machine (``cpu``, ``cuda:0``...)."""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r} (use cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index is not None and dev.index >= count):
            raise argparse.ArgumentTypeError(f"device {text!r} is not available ({count} CUDA device(s) here)")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise argparse.ArgumentTypeError(f"device {text!r} is not available on this machine")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"unsupported device {text!r} (use cpu, cuda, cuda:N or mps)")
    return text


device._sara_checked = True  # type: ignore[attr-defined]


def harden(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give every plain numeric, ``--seed`` and ``--device`` argument of ``parser`` and its sub-parsers a checked type.

    Returns:
        ``parser`` (modified in place).
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                harden(sub)
            continue
        checked = _checked_type(action)
        if checked is not None:
            action.type = checked
    return parser


def _checked_type(action: argparse.Action) -> Callable[[str], object] | None:
    """The checked replacement for ``action.type``, or None to keep it."""
    if getattr(action.type, "_sara_checked", False):
        return None
    if action.dest == "seed" and action.type in (int, None):
        return seed
    if action.dest == "device" and action.type is None:
        return device
    if action.type is int:
        return int_range(0, MAX_INT)
    if action.type is float:
        return float_range(0.0, MAX_FLOAT)
    return None

