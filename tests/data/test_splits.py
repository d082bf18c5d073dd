"""Split assignment: takes of one sound stay together, no leakage, deterministic."""

from __future__ import annotations

from collections import Counter

from sara.data.labels import take_stem
from sara.data.splits import assign_split, check_no_leakage


def test_split_is_deterministic_and_seeded():
    keys = [f"key{i}" for i in range(200)]
    a = [assign_split(0, "src", k) for k in keys]
    assert a == [assign_split(0, "src", k) for k in keys]
    assert a != [assign_split(1, "src", k) for k in keys]


def test_split_fractions_are_roughly_respected():
    counts = Counter(assign_split(0, "src", f"k{i}", valid=0.1, test=0.2) for i in range(5000))
    assert abs(counts["test"] / 5000 - 0.2) < 0.03
    assert abs(counts["valid"] / 5000 - 0.1) < 0.03


def test_takes_share_a_split():
    takes = ["horse-hit-1", "horse-hit-2", "horse-hit-3", "horse-hit-4", "horse-hit-5"]
    splits = {assign_split(7, "wesnoth", f"sounds/{take_stem(t)}") for t in takes}
    assert len(splits) == 1


def test_leakage_check_finds_shared_keys():
    records = [
        {"source": "a", "split_key": "x", "split": "train"},
        {"source": "a", "split_key": "x", "split": "train"},
        {"source": "a", "split_key": "y", "split": "test"},
        {"source": "b", "split_key": "y", "split": "train"},  # other source: a different key
    ]
    assert check_no_leakage(records) == []
    records.append({"source": "a", "split_key": "x", "split": "test"})
    assert check_no_leakage(records) == ["a:x"]


def test_stratified_splits_cover_classes_and_keep_keys_together():
    from sara.data.splits import assign_splits

    keys = [("s", f"dog/{i}", "dog") for i in range(20)] + [("s", f"cat/{i}", "cat") for i in range(3)]
    keys += [("s", "rare/0", "rare")] + [("s", "dog/0", "speech")]  # a key shared by two classes
    splits = assign_splits(keys, seed=0, valid=0.1, test=0.1)
    assert len(splits) == 24  # one entry per key
    dog = Counter(splits[("s", f"dog/{i}")] for i in range(20))
    assert dog == {"train": 16, "test": 2, "valid": 2}
    assert Counter(splits[("s", f"cat/{i}")] for i in range(3)) == {"train": 2, "test": 1}
    assert splits[("s", "rare/0")] == "train"
    assert splits == assign_splits(list(reversed(keys[:-1])) + keys[-1:], seed=0, valid=0.1, test=0.1)
