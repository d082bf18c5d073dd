"""``sara eval probe``: clip-level probes and t-SNE plots for several embedders on one corpus manifest."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sara.errors import SaraError
from sara.eval.embedders.base import AudioEmbedder
from sara.eval.manifest import Clip
from sara.eval.probes import ProbeConfig, Split, fold_splits, run_probe, trainvaltest_split
from sara.eval.runner import EmbeddingCache, embed_files

__all__ = ["evaluate_probe", "make_splits", "subsample"]


def make_splits(clips: Sequence[Clip], scheme: Literal["split", "group"]) -> list[Split]:
    """``"split"``: the manifest's train / valid / test; ``"group"``: HEAR k-fold over the ``group`` field."""
    if scheme == "group":
        return fold_splits([c.group for c in clips])
    return trainvaltest_split([c.split for c in clips])


def subsample(clips: Sequence[Clip], max_clips: int | None, seed: int = 0) -> list[Clip]:
    """A seeded random subset of ``max_clips`` clips in manifest order (all clips when None)."""
    if max_clips is None or max_clips >= len(clips):
        return list(clips)
    keep = np.sort(np.random.default_rng(seed).choice(len(clips), size=max_clips, replace=False))
    return [clips[i] for i in keep]


def evaluate_probe(clips: Sequence[Clip], embedders: Sequence[AudioEmbedder], cache: EmbeddingCache, *,
                   kinds: Sequence[Literal["linear", "mlp"]] = ("linear", "mlp"), scheme: Literal["split", "group"] = "split",
                   label: Literal["class", "group"] = "class", grid: Literal["hear", "cpu", "fast"] = "hear", tsne_dir: Path | None = None,
                   max_clips: int | None = None) -> dict[str, Any]:
    """Probe each embedder's mean-pooled clip embeddings on the manifest's classes.

    Args:
        clips: manifest entries (clips without a class are dropped).
        embedders: e.g. the semantic encoder and the log-mel baseline.
        kinds: probe types to run.
        scheme: how to split (see :func:`make_splits`).
        label: predict the manifest ``class`` or the coarser ``group``.
        grid: probe hyper-parameter grid (:meth:`ProbeConfig.preset`).
        tsne_dir: write ``tsne_<embedder>_<label>.png`` here when given.
        max_clips: evaluate a seeded random subset of this many labelled clips (quick runs).

    Returns:
        ``{"num_clips", "num_classes", "scheme", "results": {embedder: {kind: {metric, mean, std, ...}}},
        "tsne": {embedder: png path}}``.
    """
    clips = subsample([c for c in clips if (c.label if label == "class" else c.group)], max_clips)
    labels = [c.label if label == "class" else c.group for c in clips]
    if len(set(labels)) < 2:
        raise SaraError(f"probe: the manifest needs at least two values of {label!r}")
    splits = make_splits(clips, scheme)
    out: dict[str, Any] = {"num_clips": len(clips), "num_classes": len(set(labels)), "label": label,
                           "scheme": scheme, "grid": grid, "results": {}, "tsne": {}}
    for embedder in embedders:
        embs = embed_files(embedder, [c.path for c in clips], cache, desc="probe")
        feats = np.stack([embs[str(c.path)].clip.numpy() for c in clips])
        res = {}
        for kind in kinds:
            cfg = ProbeConfig.preset(grid, kind)
            r = run_probe(feats, labels, splits, cfg)
            res[kind] = {"metric": r.metric, "mean": r.mean, "std": r.std, "per_split": list(r.per_split),
                         "lr": r.lr, "hidden_layers": r.hidden_layers, "dim": int(feats.shape[1]), **r.extra}
        out["results"][embedder.name] = res
        if tsne_dir is not None:
            from sara.eval.tsne import plot_tsne

            png = plot_tsne(feats, labels, Path(tsne_dir) / f"tsne_{embedder.name}_{label}.png",
                            title=f"t-SNE of mean-pooled {embedder.name} embeddings ({label})")
            out["tsne"][embedder.name] = str(png)
    return out
