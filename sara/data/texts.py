"""Text pools for synthesized speech, taken from allowed sources (Tux Paint stamp descriptions)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["speech_texts"]

_MAX_WORDS = 14


def speech_texts(roots: Mapping[str, Path]) -> dict[str, list[str]]:
    """``{language: [sentence, ...]}`` from Tux Paint stamp ``.txt`` files (English line 1 + translations).

    Returns an empty dict when Tux Paint is not among the sources. Sentences are sorted and deduplicated
    so the pool does not depend on file-system order.
    """
    root = roots.get("tuxpaint-stamps-default")
    if root is None:
        return {}
    pools: dict[str, set[str]] = {}
    for txt in sorted((Path(root) / "usr/share/tuxpaint/stamps").rglob("*.txt")):
        lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
        if lines:
            _add(pools, "en", lines[0])
        for line in lines[1:]:
            m = re.match(r"^([a-z]{2})\.utf8=(.*)$", line.strip())
            if m:
                _add(pools, m.group(1), m.group(2))
    return {lang: sorted(texts) for lang, texts in sorted(pools.items())}


def _add(pools: dict[str, set[str]], lang: str, text: str) -> None:
    """Add a cleaned sentence if it is short enough to be a natural utterance."""
    text = " ".join(text.replace('"', "").split()).strip("-–— ")
    if text and len(text.split()) <= _MAX_WORDS:
        pools.setdefault(lang, set()).add(text)
