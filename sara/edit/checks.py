"""Argument checks shared by the editing and long-form methods (one-line :class:`~sara.errors.ConfigError`)."""

from __future__ import annotations

import math

from sara.errors import ConfigError

__all__ = ["MAX_LONG_SECONDS", "check_fraction", "check_positive_seconds", "check_region", "check_seed"]

MAX_LONG_SECONDS = 3600.0  # long-form cap: one hour of audio is ~90k latent frames, a sane upper bound


def check_fraction(value: object, name: str) -> float:
    """``value`` as a float in [0, 1] (e.g. ``strength``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def check_positive_seconds(value: object, name: str, maximum: float = MAX_LONG_SECONDS) -> float:
    """``value`` as a float in ``(0, maximum]`` seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 < value <= maximum:
        raise ConfigError(f"{name} must be in (0, {maximum:g}] seconds, got {value!r}")
    return float(value)


def check_region(start: object, end: object, clip_seconds: float) -> tuple[float, float]:
    """``(start, end)`` seconds of a region inside a clip of ``clip_seconds``: ``0 <= start < end <= clip``."""
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"region {name} must be a finite number of seconds, got {value!r}")
    if not 0.0 <= start < end:
        raise ConfigError(f"region must satisfy 0 <= start < end, got start {start:g} s, end {end:g} s")
    if end > clip_seconds + 1e-6:
        raise ConfigError(f"region end {end:g} s is outside the clip ({clip_seconds:.3f} s long)")
    return float(start), float(min(end, clip_seconds))


def check_seed(seed: object) -> int | None:
    """``seed`` as an int in ``[0, 2**63)`` or None."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    return seed
