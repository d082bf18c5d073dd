"""Label normalisation and the curated label table."""

from __future__ import annotations

import pytest

from sara.data.labels import GROUPS, LabelEntry, LabelTable, normalize_label, take_stem
from sara.errors import ConfigError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Animal/Dog1.wav", "animal dog"),
        ("horse-hit-2", "horse hit"),
        ("A baby sheep (a lamb).", "baby sheep lamb"),
        ("HorseGallop", "horse gallop"),
        ("civfemdeath01a", "civfemdeath"),
        ("loop_3d_printer", "loop 3d printer"),
        ("bd_808", "bd"),
        ("“No U-Turn”.", "no u turn"),
    ],
)
def test_normalize_label(raw, expected):
    assert normalize_label(raw) == expected


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("hit-1", "hit"),
        ("hit_05b", "hit"),
        ("beats_01-18", "beats"),
        ("Dog1.wav", "dog"),
        ("01", "01"),
        ("crash20i__ride4", "crash20i__ride"),
    ],
)
def test_take_stem_groups_takes(stem, expected):
    assert take_stem(stem) == expected


def _table() -> LabelTable:
    return LabelTable(
        [
            LabelEntry("dog", "dog", "a dog barking", "animals"),
            LabelEntry("hot dog", "eating", "someone eating", "human non-speech"),
            LabelEntry("bell", "church bell", "a bell ringing", "percussion"),
            LabelEntry("bell", "chime", "a bell chime", "ui and alerts", source="theme"),
            LabelEntry("alien", "", "", "", drop=True),
        ]
    )


def test_lookup_exact_longest_and_source_specific():
    table = _table()
    assert table.lookup("Animal/Dog2.wav").class_name == "dog"
    assert table.lookup("a hot dog").class_name == "eating"  # the longest pattern wins
    assert table.lookup("bell").class_name == "church bell"
    assert table.lookup("bell", "theme").class_name == "chime"
    assert table.lookup("big bell 3", "theme").class_name == "chime"
    assert table.lookup("alien scream").drop
    assert table.lookup("keyboard") is None
    assert table.lookup("") is None


def test_unknown_group_rejected():
    with pytest.raises(ConfigError, match="unknown group"):
        LabelTable([LabelEntry("x", "x", "x", "not a group")])


def test_bad_drop_flag_rejected(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("pattern,class,phrase,group,drop,source\nbell,chime,a chime,ui and alerts,theme,\n")
    with pytest.raises(ConfigError, match="drop must be"):
        LabelTable.from_csv(path)


def test_packaged_table_is_consistent():
    table = LabelTable.from_csv()
    assert len(table.entries) > 300
    kept = [e for e in table.entries if not e.drop]
    assert all(e.group in GROUPS and e.class_name and e.phrase for e in kept)
    assert len(table.classes) >= 100
    # a class maps to one group only (the classifier and CORPUS.md rely on it)
    group_of: dict[str, set[str]] = {}
    for e in kept:
        group_of.setdefault(e.class_name, set()).add(e.group)
    mixed = {c: g for c, g in group_of.items() if len(g) > 1}
    assert not mixed, mixed
