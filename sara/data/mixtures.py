"""Mixtures with compositional captions, built from already processed clips of the same split.

Two kinds, chosen per mixture by the seeded generator:

* overlay: a foreground event over a background (ambience, water, weather, machines or music) at a
  random foreground-to-background ratio: "{a} while {b} in the background";
* sequence: two foreground events one after the other: "{a}, followed by {b}".

Components are always taken from the same split, so mixtures never leak test audio into training.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from sara.data.captions import mixture_captions, sequence_captions
from sara.data.clips import clip_rng
from sara.data.process import ProcessConfig

__all__ = ["BACKGROUND_GROUPS", "MixPlan", "make_mixtures", "plan_mixtures"]

SOURCE = "mixture"
BACKGROUND_GROUPS = ("water", "weather and fire", "machines and ambience", "music")
_FOREGROUND_KINDS = ("sfx", "speech", "instrument", "ui")


@dataclass(frozen=True)
class MixPlan:
    """A planned mixture: component records, mode and mixing parameters."""

    index: int
    split: str
    mode: str  # "overlay" | "sequence"
    first: dict
    second: dict
    ratio_db: float  # foreground level over background (overlay) or second over first (sequence)
    offset: float  # seconds: foreground start (overlay) or gap (sequence)


def _pools(records: list[dict]) -> dict[str, tuple[list[dict], list[dict]]]:
    """Per split: (foreground candidates, background candidates), sorted by id."""
    fg: dict[str, list[dict]] = defaultdict(list)
    bg: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(records, key=lambda r: r["id"]):
        if r["group"] in BACKGROUND_GROUPS and r["duration"] >= 3.0:
            bg[r["split"]].append(r)
        elif r["kind"] in _FOREGROUND_KINDS and 0.3 <= r["duration"] <= 6.0:
            fg[r["split"]].append(r)
    return {s: (fg[s], bg[s]) for s in sorted(set(fg) | set(bg))}


def plan_mixtures(records: list[dict], num: int, seed: int) -> list[MixPlan]:
    """Plan ``num`` mixtures, spread over splits in proportion to their foreground pools."""
    pools = _pools(records)
    total = sum(len(f) for f, _ in pools.values()) or 1
    plans: list[MixPlan] = []
    for split, (fg, bg) in pools.items():
        count = round(num * len(fg) / total)
        for i in range(count if len(fg) >= 2 else 0):
            rng = clip_rng(seed, SOURCE, split, i)
            plan = _plan_one(len(plans), split, fg, bg, rng)
            if plan is not None:
                plans.append(plan)
    return plans


def _pick(pool: list[dict], rng: random.Random) -> dict:
    """A class chosen uniformly, then a clip of it: keeps big classes (speech) from crowding out the rest."""
    classes = sorted({r["class"] for r in pool})
    cls = rng.choice(classes)
    return rng.choice([r for r in pool if r["class"] == cls])


def _plan_one(index: int, split: str, fg: list[dict], bg: list[dict], rng: random.Random) -> MixPlan | None:
    """One mixture: overlay when a background exists (70 %), otherwise a sequence of two events."""
    first = _pick(fg, rng)
    if bg and rng.random() < 0.7:
        second = _pick(bg, rng)
        mode, ratio, offset = "overlay", rng.uniform(3.0, 12.0), rng.uniform(0.2, 1.5)
    else:
        second = _pick(fg, rng)
        mode, ratio, offset = "sequence", rng.uniform(-3.0, 3.0), rng.uniform(0.2, 0.8)
    if second["class"] == first["class"]:
        return None
    return MixPlan(index, split, mode, first, second, round(ratio, 2), round(offset, 3))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2) + 1e-12))


def render_mixture(plan: MixPlan, corpus: Path, cfg: ProcessConfig) -> np.ndarray:
    """Mix the two component wavs (24 kHz) of ``plan`` into ``[T]`` float32 audio of at most ``max_duration``."""
    sr, limit = cfg.sample_rate, int(cfg.max_duration * cfg.sample_rate)
    a, _ = sf.read(str(corpus / plan.first["path"]), dtype="float32")
    b, _ = sf.read(str(corpus / plan.second["path"]), dtype="float32")
    gain = 10 ** (plan.ratio_db / 20)
    if plan.mode == "overlay":
        start = int(plan.offset * sr)
        length = min(max(start + len(a) + sr // 2, 4 * sr), len(b), limit)
        out = b[:length] * (_rms(a) / gain / _rms(b[:length]))
        piece = a[: max(0, length - start)]
        out[start : start + len(piece)] += piece
    else:
        gap = np.zeros(int(plan.offset * sr), dtype=np.float32)
        out = np.concatenate([a, gap, b * (gain * _rms(a) / _rms(b))])[:limit]
    return (out * (cfg.peak / max(float(np.abs(out).max()), 1e-9))).astype(np.float32)


def _record(plan: MixPlan, rel: str, duration: float, digest: str, seed: int, sample_rate: int) -> dict:
    """Manifest record of a mixture; class and group are the (first) foreground's."""
    rng = clip_rng(seed, SOURCE, "captions", plan.index)
    compose = mixture_captions if plan.mode == "overlay" else sequence_captions
    captions = compose(plan.first["caption"], plan.second["caption"], rng)
    licenses = sorted({plan.first["license"], plan.second["license"]})
    return {
        "id": rel.removeprefix("audio/").removesuffix(".wav"),
        "path": rel,
        "caption": captions[0],
        "captions": captions,
        "class": plan.first["class"],
        "group": plan.first["group"],
        "source": SOURCE,
        "license": " + ".join(licenses),
        "duration": duration,
        "split": plan.split,
        "sample_rate": sample_rate,
        "kind": "mixture",
        "synthetic": bool(plan.first["synthetic"] or plan.second["synthetic"]),
        "raw_label": f"{plan.mode}: {plan.first['class']} + {plan.second['class']}",
        "split_key": f"{plan.split}:{plan.index}",
        "sha256": digest,
        "mix_mode": plan.mode,
        "components": [plan.first["id"], plan.second["id"]],
        "second_class": plan.second["class"],
        "mix_ratio_db": plan.ratio_db,
    }


def make_mixtures(records: list[dict], num: int, seed: int, corpus: Path, cfg: ProcessConfig) -> list[dict]:
    """Plan, render (cached by recipe) and describe ``num`` mixtures; returns their manifest records."""
    out = []
    for plan in tqdm(plan_mixtures(records, num, seed), desc="mixtures", unit="mix", dynamic_ncols=True):
        rel = f"audio/{SOURCE}/mix-{plan.split}-{plan.index:05d}.wav"
        recipe = hashlib.sha256(
            json.dumps(
                [
                    plan.mode,
                    plan.first["sha256"],
                    plan.second["sha256"],
                    plan.ratio_db,
                    plan.offset,
                    repr(cfg),
                ]
            ).encode()
        ).hexdigest()[:16]
        cache = corpus / ".cache" / "mixtures" / f"{Path(rel).stem}.json"
        entry = json.loads(cache.read_text()) if cache.is_file() else {}
        if entry.get("recipe") != recipe or not (corpus / rel).is_file():
            wav = render_mixture(plan, corpus, cfg)
            (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(corpus / rel), wav, cfg.sample_rate, subtype="PCM_16", format="WAV")
            digest = hashlib.sha256((corpus / rel).read_bytes()).hexdigest()[:16]
            entry = {"recipe": recipe, "duration": round(len(wav) / cfg.sample_rate, 3), "sha256": digest}
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(entry))
        out.append(_record(plan, rel, entry["duration"], entry["sha256"], seed, cfg.sample_rate))
    return out
