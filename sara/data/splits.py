"""Train/valid/test assignment by split key.

A clip's split depends only on ``(seed, source, split_key)``. Readers give every take of one sound, every
velocity layer of one drum and every segment of one file the same key, so near-duplicates never straddle
splits and random crops of one file never appear in two splits.
"""

from __future__ import annotations

from collections import defaultdict

from sara.data.clips import stable_hash

__all__ = ["SPLITS", "assign_split", "check_no_leakage"]

SPLITS = ("train", "valid", "test")


def assign_split(seed: int, source: str, split_key: str, valid: float = 0.05, test: float = 0.1) -> str:
    """Deterministic split of a split key: ``test`` and ``valid`` are target fractions of keys.

    Args:
        seed: corpus seed.
        source: source package (keys are namespaced by source).
        split_key: key shared by all clips that must stay together.
        valid: fraction of keys for the validation split.
        test: fraction of keys for the test split.
    """
    u = (stable_hash("split", seed, source, split_key) % 1_000_000) / 1_000_000
    if u < test:
        return "test"
    if u < test + valid:
        return "valid"
    return "train"


def check_no_leakage(records: list[dict]) -> list[str]:
    """Return the split keys that occur in more than one split (empty when the corpus is clean)."""
    splits_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in records:
        splits_of[(r["source"], r["split_key"])].add(r["split"])
    return sorted(f"{s}:{k}" for (s, k), v in splits_of.items() if len(v) > 1)
