"""Coarse sound groups over the corpus classes, for relevance on everyday prompts.

Everyday prompts ("a man is speaking in a quiet room", "heavy rain falling on a roof") name no corpus class, so
the corpus classifier is scored one level up: each of the 253 corpus classes belongs to one of eight coarse
groups (or ``other``), stored as data in ``coarse_groups.csv`` next to this module (``class,group``).  A clip's
group scores are its class probabilities summed per group ``[..., C] -> [..., G]``; its coarse prediction is the
group with the largest score (``other`` included, so a clip that sounds like none of the eight is wrong for all).

Mapping rules (``coarse_groups.csv`` is the authority): the corpus' own groups (``classes.json``) decide, with
human vocal sounds (crowd chatter, screams, laughter, coughs, ...) under ``speech``, non-vocal human sounds
(footsteps, eating, heartbeat) and alerts / weapons / tools under ``impact/household``, power tools and motor
appliances under ``vehicle/machine``, water, weather and fire under ``nature/weather``, singing and jingles under
``music``.  ``other`` holds the few classes that fit none: applause and five retro-game effects.

The everyday prompt set (``recipes/everyday_prompts.csv``: ``prompt,group,demo``) is read by
:func:`load_everyday_prompts`.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sara.errors import ConfigError

__all__ = [
    "COARSE_GROUPS", "GROUPS", "OTHER", "CoarsePrediction", "EverydayPrompt", "caption_collisions",
    "coarse_classifier_fn", "coarse_predictions", "coarse_scores", "group_matrix", "load_coarse_groups",
    "load_everyday_prompts",
]

COARSE_GROUPS: tuple[str, ...] = ("speech", "music", "percussion", "melodic instrument", "animal",
                                  "vehicle/machine", "nature/weather", "impact/household")
OTHER = "other"
GROUPS: tuple[str, ...] = (*COARSE_GROUPS, OTHER)  # the score columns, in this order
GROUPS_FILE = "coarse_groups.csv"


@dataclass(frozen=True)
class EverydayPrompt:
    """One everyday prompt, its coarse group and whether it is a ``sara demo`` prompt."""

    prompt: str
    group: str
    demo: bool = False


@dataclass(frozen=True)
class CoarsePrediction:
    """The classifier's verdict on one clip.

    Attributes:
        group: coarse prediction (largest summed probability; one of :data:`GROUPS`).
        fine: the most probable corpus class.
        fine_group: the group of ``fine`` (a second, stricter-looking reading: it ignores how spread the
            probability is within a group).
        scores: ``{group: summed probability}`` over :data:`GROUPS` (sums to 1).
    """

    group: str
    fine: str
    fine_group: str
    scores: dict[str, float]


def _read_rows(text: str, where: str, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """CSV rows of ``text`` (header required); ConfigError naming ``where`` when a column is missing."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(f"{where}: missing column(s) {', '.join(missing)} (header: {reader.fieldnames})")
    return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def load_coarse_groups(path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """``{corpus class: coarse group}`` from ``path`` (default: the packaged ``coarse_groups.csv``).

    Raises:
        ConfigError: a missing column, an empty or repeated class, or a group not in :data:`GROUPS` (one line
            naming the file and the row).
    """
    if path is None:
        where, text = GROUPS_FILE, resources.files("sara.eval").joinpath(GROUPS_FILE).read_text("utf-8")
    else:
        where, text = str(path), Path(path).read_text("utf-8")
    mapping: dict[str, str] = {}
    for line, row in enumerate(_read_rows(text, where, ("class", "group")), start=2):
        name, group = row["class"], row["group"]
        if not name or name in mapping:
            raise ConfigError(f"{where}:{line}: {'empty' if not name else 'repeated'} class {name!r}")
        if group not in GROUPS:
            raise ConfigError(f"{where}:{line}: class {name!r} has unknown group {group!r} (use one of {GROUPS})")
        mapping[name] = group
    return mapping


def group_matrix(class_names: Sequence[str], mapping: Mapping[str, str] | None = None) -> Tensor:
    """One-hot membership ``[C, G]`` (float32) of the classifier's classes in :data:`GROUPS`.

    Raises:
        ConfigError: a class the mapping does not cover.
    """
    mapping = load_coarse_groups() if mapping is None else mapping
    missing = [c for c in class_names if c not in mapping]
    if missing:
        raise ConfigError(f"no coarse group for class(es) {missing[:5]} ({len(missing)} in all); "
                          f"add them to {GROUPS_FILE}")
    matrix = torch.zeros(len(class_names), len(GROUPS))
    for i, name in enumerate(class_names):
        matrix[i, GROUPS.index(mapping[name])] = 1.0
    return matrix


def coarse_scores(values: Tensor, class_names: Sequence[str], mapping: Mapping[str, str] | None = None, *,
                  logits: bool = False) -> Tensor:
    """Per-group scores ``[..., G]``: class probabilities summed per group (columns in :data:`GROUPS` order).

    Args:
        values: ``[..., C]`` class probabilities, or logits with ``logits=True`` (softmax over the last axis).
        class_names: the ``C`` class names, in the classifier's order.
        mapping: class -> group (default: :func:`load_coarse_groups`).
    """
    if values.shape[-1] != len(class_names):
        raise ConfigError(f"scores have {values.shape[-1]} classes, class_names {len(class_names)}")
    probs = values.float().softmax(-1) if logits else values.float()
    return probs @ group_matrix(class_names, mapping)


def coarse_predictions(values: Tensor, class_names: Sequence[str], mapping: Mapping[str, str] | None = None, *,
                       logits: bool = False) -> list[str]:
    """Coarse prediction (group of the largest summed probability) of each row of ``values [B, C]``."""
    scores = coarse_scores(values.reshape(-1, values.shape[-1]), class_names, mapping, logits=logits)
    return [GROUPS[int(i)] for i in scores.argmax(-1)]


def coarse_classifier_fn(classifier: Any, mapping: Mapping[str, str] | None = None
                         ) -> Callable[[Tensor, int], CoarsePrediction]:
    """``(wav [T], sample_rate) -> CoarsePrediction`` from a
    :class:`~sara.eval.embedders.classifier.ClassifierEmbedder` (softmax of its logits, summed per group)."""
    names = list(classifier.model.config.class_names)
    mapping = load_coarse_groups() if mapping is None else mapping
    matrix = group_matrix(names, mapping)

    def classify(wav: Tensor, sample_rate: int) -> CoarsePrediction:
        logits = classifier.run(wav.float().reshape(1, -1), sample_rate).logits
        scores = logits.float().softmax(-1) @ matrix
        fine = names[int(torch.argmax(logits))]
        return CoarsePrediction(group=GROUPS[int(scores.argmax())], fine=fine, fine_group=mapping[fine],
                                scores={g: float(s) for g, s in zip(GROUPS, scores)})

    return classify


def load_everyday_prompts(path: str | os.PathLike[str]) -> list[EverydayPrompt]:
    """Read ``prompt,group[,demo]`` rows (``demo`` 1 / 0, default 0).

    Raises:
        ConfigError: a missing file or column, an empty or repeated prompt, a group outside
            :data:`COARSE_GROUPS` or a ``demo`` value other than 0 / 1 (one line naming the file and row).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such prompt file")
    prompts: list[EverydayPrompt] = []
    seen: set[str] = set()
    for line, row in enumerate(_read_rows(p.read_text("utf-8"), str(p), ("prompt", "group")), start=2):
        text, group, demo = row["prompt"], row["group"], row.get("demo", "0") or "0"
        if not text or text.lower() in seen:
            raise ConfigError(f"{p}:{line}: {'empty' if not text else 'repeated'} prompt {text!r}")
        if group not in COARSE_GROUPS:
            raise ConfigError(f"{p}:{line}: unknown group {group!r} (use one of {COARSE_GROUPS})")
        if demo not in ("0", "1"):
            raise ConfigError(f"{p}:{line}: demo must be 0 or 1, got {demo!r}")
        seen.add(text.lower())
        prompts.append(EverydayPrompt(text, group, demo == "1"))
    return prompts


def caption_collisions(prompts: Iterable[EverydayPrompt], records: Iterable[Mapping[str, Any]], *,
                       alternates: bool = True) -> list[str]:
    """Prompts equal (case-insensitively, outer spaces ignored) to a manifest record's ``caption`` or, with
    ``alternates``, one of its alternative ``captions``."""
    captions: set[str] = set()
    for r in records:
        captions.add(str(r.get("caption", "")).strip().lower())
        if alternates:
            captions.update(str(c).strip().lower() for c in r.get("captions", ()) or ())
    return [p.prompt for p in prompts if p.prompt.strip().lower() in captions]
