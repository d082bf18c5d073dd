"""Manifest writing: stable bytes and hashes, contract fields, classes.json."""

from __future__ import annotations

import json
import random

import pytest

from sara.data.clips import RawClip, SkipLog, clip_rng, stable_hash
from sara.data.manifest import load_manifest, make_record, manifest_hash, write_classes, write_manifest
from sara.errors import SaraError


def _clip(uid: str, cls: str = "dog") -> RawClip:
    return RawClip(
        source="src",
        uid=uid,
        load=lambda: None,
        class_name=cls,
        group="animals",
        captions=("the sound of a dog barking", "a dog barking can be heard"),
        license="CC0",
        split_key=uid,
        kind="sfx",
        extra={"language": "en"},
    )


def _records() -> list[dict]:
    out = []
    for i in range(5):
        seg = {"path": f"audio/src/c{i}.wav", "duration": 1.5, "sha256": f"{i:016x}", "segment": 0}
        out.append(
            make_record(_clip(f"c{i}", "dog" if i % 2 else "cat"), seg, "train" if i else "test", 24000)
        )
    return out


def test_record_has_contract_fields():
    r = _records()[0]
    assert r["id"] == "src/c0" and r["path"] == "audio/src/c0.wav"
    assert r["caption"] == r["captions"][0]
    for key in ("class", "group", "source", "license", "duration", "split", "sample_rate"):
        assert key in r
    assert r["language"] == "en"


def test_manifest_bytes_do_not_depend_on_order(tmp_path):
    records = _records()
    h1 = write_manifest(records, tmp_path / "a.jsonl")
    shuffled = records[:]
    random.Random(3).shuffle(shuffled)
    h2 = write_manifest(shuffled, tmp_path / "b.jsonl")
    assert h1 == h2 == manifest_hash(tmp_path / "a.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert load_manifest(tmp_path / "a.jsonl") == sorted(records, key=lambda r: r["id"])


def test_manifest_hash_changes_with_content(tmp_path):
    records = _records()
    h1 = write_manifest(records, tmp_path / "a.jsonl")
    records[2]["caption"] = "something else"
    assert write_manifest(records, tmp_path / "a.jsonl") != h1


def test_duplicate_ids_rejected(tmp_path):
    records = _records()
    with pytest.raises(SaraError, match="duplicate"):
        write_manifest([*records, records[0]], tmp_path / "m.jsonl")


def test_classes_json(tmp_path):
    data = write_classes(_records(), tmp_path / "classes.json")
    assert data["classes"] == ["cat", "dog"]
    assert data["counts"]["cat"] == {"test": 1, "train": 2}
    assert json.loads((tmp_path / "classes.json").read_text())["groups"]["dog"] == "animals"


def test_stable_hash_and_clip_rng_are_reproducible():
    assert stable_hash("a", 1) == stable_hash("a", 1) != stable_hash("a", 2)
    assert clip_rng(0, "src", "x").random() == clip_rng(0, "src", "x").random()


def test_skip_log_report():
    log = SkipLog()
    for i in range(7):
        log.add("src", "no label mapping", f"item{i}")
    line = log.lines()[0]
    assert line.startswith("src: 7 skipped: no label mapping") and "item4" in line and "item5" not in line
