"""Probes on separable synthetic embeddings, HEAR fold rotation, and the t-SNE plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sara.errors import SaraError
from sara.eval.probes import ProbeConfig, fold_splits, run_probe, trainvaltest_split


def blobs(n_per: int = 40, d: int = 32, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, d)) * 3
    x = np.concatenate([c + rng.normal(size=(n_per, d)) for c in centers])
    return x, [f"c{i}" for i in range(classes) for _ in range(n_per)]


def tags(n: int) -> list[str]:
    return ["train" if i % 5 < 3 else ("valid" if i % 5 == 3 else "test") for i in range(n)]


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_probe_separates_blobs(kind: str) -> None:
    x, y = blobs()
    res = run_probe(x, y, trainvaltest_split(tags(len(y))), ProbeConfig.fast(kind))
    assert res.metric == "accuracy" and res.mean > 0.95 and res.extra["balanced_accuracy"] > 0.95


def test_balanced_accuracy_weights_classes_equally() -> None:
    import torch

    from sara.eval.probes import balanced_accuracy

    y = torch.tensor([0] * 8 + [1] * 2)
    always_zero = torch.tensor([[1.0, 0.0]] * 10)
    assert balanced_accuracy(always_zero, y) == pytest.approx(0.5)


def test_probe_on_noise_is_near_chance() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 16))
    y = [f"c{i % 3}" for i in range(150)]
    res = run_probe(x, y, trainvaltest_split(tags(150)), ProbeConfig.fast("linear"))
    assert res.mean < 0.6


def test_multilabel_probe_reports_map() -> None:
    x, names = blobs(classes=3)
    y = np.zeros((len(names), 3), dtype=np.float32)
    for i, n in enumerate(names):
        y[i, int(n[1])] = 1
    res = run_probe(x, y, trainvaltest_split(tags(len(names))), ProbeConfig.fast("linear"))
    assert res.metric == "mAP" and res.mean > 0.95


def test_fold_rotation_is_hear_style() -> None:
    folds = [f % 5 for f in range(50)]
    splits = fold_splits(folds)
    assert len(splits) == 5
    for i, s in enumerate(splits):
        assert {folds[j] for j in s.test} == {i} and {folds[j] for j in s.valid} == {(i + 1) % 5}
        assert len(set(s.train) | set(s.valid) | set(s.test)) == 50 and not set(s.train) & set(s.test)
    x, y = blobs(n_per=20)
    res = run_probe(x, y, fold_splits([i % 4 for i in range(len(y))]), ProbeConfig.fast("linear"))
    assert len(res.per_split) == 4 and res.mean > 0.9
    with pytest.raises(SaraError):
        fold_splits([0, 1, 0, 1])


def test_tsne_png(tmp_path: Path) -> None:
    from sara.eval.tsne import plot_tsne

    x, y = blobs(n_per=15, d=8)
    png = plot_tsne(x, y, tmp_path / "t.png", title="blobs")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
