"""Train/valid/test assignment by split key.

Readers give every take of one sound, every velocity layer of one drum and every segment of one file the
same split key, so near-duplicates never straddle splits and random crops of one file never appear in two
splits. Keys are stratified by class (:func:`assign_splits`): within each class the keys are ordered by a
seeded hash and the first ``test`` / ``valid`` fraction go to test / valid, so every class with at least
three keys is represented in the test split. :func:`assign_split` is the unstratified per-key variant.
"""

from __future__ import annotations

from collections import defaultdict

from sara.data.clips import stable_hash

__all__ = ["SPLITS", "assign_split", "assign_splits", "check_no_leakage"]

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


def _counts(n: int, valid: float, test: float) -> tuple[int, int]:
    """How many of a class's ``n`` keys go to (test, valid): none below 3 keys, at least one test from 3."""
    if n < 3:
        return 0, 0
    n_test = max(1, int(n * test + 0.5))
    n_valid = max(1, int(n * valid + 0.5)) if n >= 6 else 0
    return n_test, min(n_valid, n - n_test - 1)


def assign_splits(
    keys: list[tuple[str, str, str]], seed: int, valid: float = 0.05, test: float = 0.1
) -> dict[tuple[str, str], str]:
    """Class-stratified splits of split keys.

    Args:
        keys: ``(source, split_key, class)``; a key listed with several classes counts for the first.
        seed: corpus seed.
        valid: target fraction of each class's keys for validation.
        test: target fraction of each class's keys for test.

    Returns:
        ``{(source, split_key): split}``.
    """
    by_class: dict[str, list[tuple[str, str]]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for source, key, cls in keys:
        if (source, key) not in seen:
            seen.add((source, key))
            by_class[cls].append((source, key))
    out: dict[tuple[str, str], str] = {}
    for cls in sorted(by_class):
        ranked = sorted(by_class[cls], key=lambda k: (stable_hash("split", seed, *k), k))
        n_test, n_valid = _counts(len(ranked), valid, test)
        for i, k in enumerate(ranked):
            out[k] = "test" if i < n_test else "valid" if i < n_test + n_valid else "train"
    return out


def check_no_leakage(records: list[dict]) -> list[str]:
    """Return the split keys that occur in more than one split (empty when the corpus is clean)."""
    splits_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in records:
        splits_of[(r["source"], r["split_key"])].add(r["split"])
    return sorted(f"{s}:{k}" for (s, k), v in splits_of.items() if len(v) > 1)
