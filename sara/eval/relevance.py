"""Text-to-audio relevance on a labelled corpus: does generated audio sound like the prompted class?

A classifier trained on real *training-split* audio (:class:`~sara.eval.embedders.classifier.AudioClassifier`)
labels audio generated from *test-split* captions; the score is the fraction whose predicted class is the
class of the caption's clip.  The same classifier's accuracy on the real test clips behind those captions is
reported beside it (the ceiling), with chance (1 / number of classifier classes) as the floor.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["RelevancePrompt", "relevance_score", "select_prompts"]


@dataclass(frozen=True)
class RelevancePrompt:
    """One test caption, its class, and the real clip it describes (path absolute)."""

    caption: str
    label: str
    audio_path: Path


def select_prompts(
    records: Sequence[dict[str, Any]], class_names: Sequence[str], *, root: Path, split: str = "test",
    per_class: int = 3,
) -> list[RelevancePrompt]:
    """Up to ``per_class`` captions per classifier class from the ``split`` records (deterministic order).

    Mixture captions (records whose ``kind`` is ``"mixture"``) are skipped: they name two classes.
    """
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    known = set(class_names)
    for r in records:
        if r.get("split") == split and r.get("class") in known and r.get("kind") != "mixture":
            by_class[r["class"]].append(r)
    prompts = []
    for label in sorted(by_class):
        chosen = sorted(by_class[label], key=lambda r: str(r.get("id", r["path"])))[:per_class]
        prompts += [RelevancePrompt(r["caption"], label, root / r["path"]) for r in chosen]
    return prompts


def _accuracy(pred: Sequence[str], truth: Sequence[str]) -> float:
    return sum(p == t for p, t in zip(pred, truth)) / max(len(truth), 1)


def relevance_score(
    prompts: Sequence[RelevancePrompt],
    generate: Callable[[list[str]], Tensor],
    classify: Callable[[Tensor, int], str],
    *,
    sample_rate: int,
    load: Callable[[Path], tuple[Tensor, int]],
    batch_size: int = 4,
    progress: Callable[[int], None] | None = None,
    others: Mapping[str, Callable[[Tensor, int], str]] | None = None,
) -> dict[str, Any]:
    """Classify generated and real audio for ``prompts``.

    Args:
        prompts: from :func:`select_prompts`.
        generate: captions -> waveforms ``[B, T]`` at ``sample_rate``.
        classify: ``(wav [T], sample_rate) -> class name``.
        load: path -> ``(wav [C, T], sample_rate)`` for the real clips.
        progress: called with the number of prompts done after each batch.
        others: more classifiers (name -> classify) that score the *same* generated and real audio.

    Returns:
        ``generated_accuracy``, ``real_accuracy``, ``num_prompts``, ``num_classes``, ``per_class``
        (``{class: {"generated": acc, "real": acc, "n": count}}``), ``predictions`` and, with ``others``,
        ``other_classifiers`` (``{name: {"generated_accuracy", "real_accuracy"}}``).
    """
    fns = {"": classify, **(others or {})}
    gen_pred: dict[str, list[str]] = {name: [] for name in fns}
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        audio = generate([p.caption for p in chunk])
        for name, fn in fns.items():
            gen_pred[name] += [fn(wav, sample_rate) for wav in audio]
        if progress is not None:
            progress(len(chunk))
    real_pred: dict[str, list[str]] = {name: [] for name in fns}
    for p in prompts:
        wav, sr = load(p.audio_path)
        for name, fn in fns.items():
            real_pred[name].append(fn(wav.mean(0), sr))
    labels = [p.label for p in prompts]
    result = _summary(prompts, labels, gen_pred.pop(""), real_pred.pop(""))
    if others:
        result["other_classifiers"] = {name: {"generated_accuracy": _accuracy(gen_pred[name], labels),
                                              "real_accuracy": _accuracy(real_pred[name], labels)}
                                       for name in others}
    return result


def _summary(prompts: Sequence[RelevancePrompt], labels: list[str], gen_pred: list[str],
             real_pred: list[str]) -> dict[str, Any]:
    """Accuracies, per-class accuracies and the per-prompt predictions of one classifier."""
    per_class: dict[str, dict[str, float]] = {}
    for label in sorted(set(labels)):
        idx = [i for i, t in enumerate(labels) if t == label]
        per_class[label] = {
            "generated": _accuracy([gen_pred[i] for i in idx], [label] * len(idx)),
            "real": _accuracy([real_pred[i] for i in idx], [label] * len(idx)),
            "n": len(idx),
        }
    return {
        "generated_accuracy": _accuracy(gen_pred, labels),
        "real_accuracy": _accuracy(real_pred, labels),
        "num_prompts": len(prompts),
        "num_classes": len(per_class),
        "per_class": per_class,
        "predictions": [{"caption": p.caption, "class": p.label, "generated": g, "real": r}
                        for p, g, r in zip(prompts, gen_pred, real_pred)],
    }


def classifier_fn(classifier: Any) -> Callable[[Tensor, int], str]:
    """``(wav [T], sr) -> class name`` from a :class:`ClassifierEmbedder`."""
    names = classifier.model.config.class_names

    def classify(wav: Tensor, sr: int) -> str:
        logits = classifier.run(wav.float().reshape(1, -1), sr).logits
        return names[int(torch.argmax(logits))]

    return classify
