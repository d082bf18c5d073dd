"""Prompt schedules for long-form generation: which caption is in force at each time.

Text form (``sara generate --prompts-at``): ``"0:rain;60:thunder storm"`` -- ``SECONDS:PROMPT`` pairs
separated by ``;``, the first at 0 s, times strictly increasing.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from sara.errors import ConfigError

__all__ = ["PromptSchedule"]


@dataclass(frozen=True)
class PromptSchedule:
    """Piecewise-constant captions over time.

    Attributes:
        times: start times in seconds, strictly increasing, the first 0.
        prompts: the caption in force from each start time on (same length as ``times``).
    """

    times: tuple[float, ...]
    prompts: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.times or len(self.times) != len(self.prompts):
            raise ConfigError("a prompt schedule needs at least one (time, prompt) pair")
        if self.times[0] != 0:
            raise ConfigError(f"the prompt schedule must start at 0 s, not {self.times[0]:g} s")
        for a, b in zip(self.times, self.times[1:]):
            if not b > a:
                raise ConfigError(f"prompt schedule times must increase, got {a:g} s then {b:g} s")
        for p in self.prompts:
            if not isinstance(p, str) or not p.strip():
                raise ConfigError("empty prompt in the prompt schedule")

    @classmethod
    def constant(cls, prompt: str) -> PromptSchedule:
        """One caption for the whole duration."""
        return cls((0.0,), (prompt,))

    @classmethod
    def from_pairs(cls, pairs: list[tuple[float, str]]) -> PromptSchedule:
        """From ``[(seconds, prompt), ...]`` (any order)."""
        ordered = sorted(pairs, key=lambda p: p[0])
        return cls(tuple(float(t) for t, _ in ordered), tuple(p for _, p in ordered))

    @classmethod
    def parse(cls, text: str) -> PromptSchedule:
        """From ``"0:rain;60:thunder storm"``; ConfigError naming the bad item."""
        pairs = []
        for item in (s.strip() for s in text.split(";")):
            if not item:
                continue
            head, sep, prompt = item.partition(":")
            try:
                seconds = float(head)
            except ValueError:
                seconds = math.nan
            if not sep or not math.isfinite(seconds) or seconds < 0:
                raise ConfigError(f"prompt schedule item {item!r}: expected SECONDS:PROMPT (e.g. 0:rain)")
            pairs.append((seconds, prompt.strip()))
        if not pairs:
            raise ConfigError("the prompt schedule is empty (expected e.g. '0:rain;60:thunder storm')")
        return cls.from_pairs(pairs)

    def at(self, seconds: float) -> str:
        """The caption in force at ``seconds``."""
        return self.prompts[max(0, bisect.bisect_right(self.times, seconds) - 1)]
