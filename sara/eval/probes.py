"""HEAR-style probes on frozen clip-level embeddings (linear or small MLP), reporting accuracy or mAP.

Protocol (hear-eval-kit ``task_predictions.py``; ``EVALUATION.md`` 1.6):

* probe = Linear (``kind="linear"``) or MLP with ``hidden_layers`` x [Linear -> BatchNorm1d -> Dropout(0.1) ->
  ReLU] of width ``hidden_dim`` then Linear; softmax + cross-entropy (multiclass) or sigmoid + BCE (multilabel);
* Adam, minibatch ``batch_size``, up to ``max_epochs``, validation every ``validate_every`` epochs, early stop
  after ``patience`` validations without improvement; the best-validation weights are scored on test;
* the hyper-parameter grid is searched on the first split only, the best point is rerun on every split,
  and test scores are reported as mean and std over splits;
* k-fold rotation: test = fold i, valid = fold i + 1 (mod k), train = the rest.

Deviation (documented): features are standardised with train-split mean / std when ``standardize`` is set,
since raw log-mel dB values and latents differ in scale by orders of magnitude; HEAR uses no normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sara.errors import SaraError

__all__ = ["ProbeConfig", "ProbeResult", "Split", "balanced_accuracy", "fold_splits", "run_probe", "trainvaltest_split"]


@dataclass(frozen=True)
class ProbeConfig:
    """Probe architecture, optimisation and grid."""

    kind: Literal["linear", "mlp"] = "linear"
    hidden_dim: int = 1024
    hidden_layers: tuple[int, ...] = (1, 2)  # grid (mlp only)
    lrs: tuple[float, ...] = (3.2e-3, 1e-3, 3.2e-4, 1e-4)  # grid
    batch_size: int = 1024
    max_epochs: int = 500
    validate_every: int = 3
    patience: int = 20
    standardize: bool = True
    seed: int = 42

    @classmethod
    def hear(cls, kind: Literal["linear", "mlp"] = "linear") -> ProbeConfig:
        """hear-eval-kit's grid (width 1024, 1-2 layers, 4 learning rates, 500 epochs)."""
        return cls(kind=kind)

    @classmethod
    def cpu(cls, kind: Literal["linear", "mlp"] = "linear") -> ProbeConfig:
        """A CPU-sized grid: width 512, one hidden layer, two learning rates, 200 epochs."""
        return cls(kind=kind, hidden_dim=512, hidden_layers=(1,), lrs=(1e-3, 1e-4), max_epochs=200, patience=10)

    @classmethod
    def fast(cls, kind: Literal["linear", "mlp"] = "linear") -> ProbeConfig:
        """One grid point for tests and smoke runs."""
        return cls(kind=kind, hidden_dim=256, hidden_layers=(1,), lrs=(1e-3,), max_epochs=150, patience=10)

    @classmethod
    def preset(cls, name: Literal["hear", "cpu", "fast"], kind: Literal["linear", "mlp"]) -> ProbeConfig:
        """Preset by name."""
        return {"hear": cls.hear, "cpu": cls.cpu, "fast": cls.fast}[name](kind)


@dataclass(frozen=True)
class Split:
    """Row indices of one train / valid / test split."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class ProbeResult:
    """Test score (``metric`` is "accuracy" or "mAP") as mean / std over splits, and the chosen grid point."""

    kind: str
    metric: str
    mean: float
    std: float
    per_split: tuple[float, ...]
    lr: float
    hidden_layers: int
    extra: dict[str, float] = field(default_factory=dict)


def fold_splits(folds: Sequence[object]) -> list[Split]:
    """HEAR k-fold rotation over per-row fold ids: test = fold i, valid = fold i + 1 (mod k), train = rest."""
    ids = np.asarray([str(f) for f in folds])
    names = sorted(set(ids))
    if len(names) < 3:
        raise SaraError(f"k-fold probes need at least 3 folds, got {len(names)}")
    out = []
    for i, name in enumerate(names):
        valid_name = names[(i + 1) % len(names)]
        out.append(Split(train=np.flatnonzero((ids != name) & (ids != valid_name)),
                         valid=np.flatnonzero(ids == valid_name), test=np.flatnonzero(ids == name)))
    return out


def trainvaltest_split(splits: Sequence[str]) -> list[Split]:
    """One fixed split from per-row ``"train"`` / ``"valid"`` / ``"test"`` tags."""
    tags = np.asarray(list(splits))
    split = Split(np.flatnonzero(tags == "train"), np.flatnonzero(tags == "valid"), np.flatnonzero(tags == "test"))
    if min(len(split.train), len(split.valid), len(split.test)) == 0:
        raise SaraError("probe needs non-empty train, valid and test splits")
    return [split]


def _build(config: ProbeConfig, d_in: int, d_out: int, layers: int) -> nn.Module:
    """Linear, or ``layers`` x (Linear, BatchNorm1d, Dropout(0.1), ReLU) then Linear."""
    if config.kind == "linear":
        return nn.Linear(d_in, d_out)
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(d_in if i == 0 else config.hidden_dim, config.hidden_dim),
                 nn.BatchNorm1d(config.hidden_dim), nn.Dropout(0.1), nn.ReLU()]
    return nn.Sequential(*mods, nn.Linear(config.hidden_dim, d_out))


def _score(logits: Tensor, y: Tensor, multilabel: bool) -> float:
    """Accuracy (multiclass) or macro mAP over classes with at least one positive (multilabel)."""
    if not multilabel:
        return float((logits.argmax(-1) == y).float().mean())
    from sklearn.metrics import average_precision_score

    yt, ys = y.numpy(), logits.sigmoid().numpy()
    keep = yt.sum(0) > 0
    return float(average_precision_score(yt[:, keep], ys[:, keep], average="macro"))


def balanced_accuracy(logits: Tensor, y: Tensor) -> float:
    """Mean per-class recall over the classes present in ``y`` (robust to class imbalance)."""
    pred = logits.argmax(-1)
    return float(torch.stack([(pred[y == c] == c).float().mean() for c in y.unique()]).mean())


def _loss(logits: Tensor, y: Tensor, multilabel: bool) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, y) if multilabel else F.cross_entropy(logits, y)


def _train_one(config: ProbeConfig, x: Tensor, y: Tensor, split: Split, lr: float, layers: int,
               multilabel: bool, d_out: int) -> tuple[float, Tensor]:
    """Train on ``split.train`` with early stopping on valid; returns (best valid score, its test logits)."""
    torch.manual_seed(config.seed)
    model = _build(config, x.shape[1], d_out, layers)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xtr, ytr = x[split.train], y[split.train]
    best_valid, best_test, bad = -1.0, torch.zeros(len(split.test), d_out), 0
    gen = torch.Generator().manual_seed(config.seed)
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        for idx in torch.randperm(len(xtr), generator=gen).split(config.batch_size):
            if len(idx) < 2 and config.kind == "mlp":
                continue  # BatchNorm needs two rows
            opt.zero_grad()
            _loss(model(xtr[idx]), ytr[idx], multilabel).backward()
            opt.step()
        if epoch % config.validate_every and epoch != config.max_epochs:
            continue
        model.eval()
        with torch.no_grad():
            valid = _score(model(x[split.valid]), y[split.valid], multilabel)
            if valid > best_valid:
                best_valid, bad = valid, 0
                best_test = model(x[split.test])
            else:
                bad += 1
        if bad >= config.patience:
            break
    return best_valid, best_test


def _prepare(features: np.ndarray, labels: Sequence[object] | np.ndarray) -> tuple[Tensor, Tensor, bool, int]:
    """Features float32 ``[N, D]``; labels as class indices ``[N]`` or multi-hot ``[N, C]``."""
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    lab = np.asarray(labels)
    if lab.ndim == 2:
        return x, torch.as_tensor(lab, dtype=torch.float32), True, lab.shape[1]
    names = sorted({str(v) for v in lab})
    index = {n: i for i, n in enumerate(names)}
    return x, torch.tensor([index[str(v)] for v in lab]), False, len(names)


def _standardize(x: Tensor, train: np.ndarray) -> Tensor:
    mean, std = x[train].mean(0), x[train].std(0).clamp(min=1e-6)
    return (x - mean) / std


def run_probe(features: np.ndarray, labels: Sequence[object] | np.ndarray, splits: Sequence[Split],
              config: ProbeConfig | None = None) -> ProbeResult:
    """Grid-search on the first split, rerun the best point on every split, report test mean / std.

    Args:
        features: frozen clip embeddings ``[N, D]``.
        labels: ``[N]`` class names / ids (multiclass -> accuracy) or ``[N, C]`` multi-hot (-> macro mAP).
        splits: from :func:`fold_splits` or :func:`trainvaltest_split`.
        config: probe settings.
    """
    config = config or ProbeConfig()
    x, y, multilabel, d_out = _prepare(features, labels)
    if x.shape[0] != y.shape[0]:
        raise SaraError(f"probe: {x.shape[0]} feature rows but {y.shape[0]} labels")
    layer_grid = config.hidden_layers if config.kind == "mlp" else (0,)
    grid = [(lr, n) for n in layer_grid for lr in config.lrs]
    xs = [(_standardize(x, s.train) if config.standardize else x) for s in splits]
    scores = {g: _train_one(config, xs[0], y, splits[0], g[0], g[1], multilabel, d_out)[0] for g in grid}
    lr, layers = max(grid, key=lambda g: scores[g])
    logits = [_train_one(config, xs[i], y, s, lr, layers, multilabel, d_out)[1] for i, s in enumerate(splits)]
    tests = [_score(lg, y[s.test], multilabel) for lg, s in zip(logits, splits)]
    extra = {} if multilabel else {
        "balanced_accuracy": float(np.mean([balanced_accuracy(lg, y[s.test]) for lg, s in zip(logits, splits)]))}
    return ProbeResult(kind=config.kind, metric="mAP" if multilabel else "accuracy", mean=float(np.mean(tests)),
                       std=float(np.std(tests)), per_split=tuple(tests), lr=lr, hidden_layers=layers, extra=extra)
