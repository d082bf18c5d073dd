"""Mixtures: components from one split, compositional captions, deterministic rendering."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from sara.data.mixtures import make_mixtures, plan_mixtures
from sara.data.process import ProcessConfig


def _record(i: int, split: str, group: str, kind: str, cls: str, caption: str, duration: float) -> dict:
    return {
        "id": f"src/{cls}-{i}",
        "path": f"audio/src/{cls}-{i}.wav",
        "caption": caption,
        "class": cls,
        "group": group,
        "kind": kind,
        "split": split,
        "duration": duration,
        "license": "CC0",
        "synthetic": False,
        "sha256": f"{i:016x}",
    }


def _corpus(tmp_path) -> list[dict]:
    records = []
    for split in ("train", "test"):
        for i in range(4):
            records.append(
                _record(i, split, "animals", "sfx", f"dog{split}", "the sound of a dog barking", 1.0)
            )
            records.append(_record(i, split, "household", "sfx", f"door{split}", "a door closing", 0.8))
            records.append(_record(i, split, "water", "sfx", f"rain{split}", "rain falling", 5.0))
    rng = np.random.default_rng(0)
    for r in records:
        path = tmp_path / r["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), (0.1 * rng.standard_normal(int(r["duration"] * 24000))).astype(np.float32), 24000)
    return records


def test_plans_never_cross_splits(tmp_path):
    records = _corpus(tmp_path)
    plans = plan_mixtures(records, 40, seed=0)
    assert plans
    for p in plans:
        assert p.first["split"] == p.second["split"] == p.split
        assert p.first["class"] != p.second["class"]
    assert [(p.first["id"], p.second["id"]) for p in plans] == [
        (p.first["id"], p.second["id"]) for p in plan_mixtures(records, 40, seed=0)
    ]


def test_make_mixtures_writes_audio_and_captions(tmp_path):
    records = _corpus(tmp_path)
    cfg = ProcessConfig()
    mixes = make_mixtures(records, 12, 0, tmp_path, cfg)
    assert mixes
    for m in mixes:
        audio, sr = sf.read(str(tmp_path / m["path"]))
        assert sr == 24000 and 0 < len(audio) <= 10 * 24000
        assert abs(m["duration"] - len(audio) / sr) < 1e-3
        if m["mix_mode"] == "overlay":
            assert "in the background" in m["caption"] or " over " in m["caption"] or " as " in m["caption"]
        else:
            assert "followed by" in m["caption"] or "then" in m["caption"] or "after" in m["caption"]
    again = make_mixtures(records, 12, 0, tmp_path, cfg)
    assert again == mixes
