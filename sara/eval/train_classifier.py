"""Train the corpus classifier (:class:`~sara.eval.embedders.classifier.AudioClassifier`) and save a release.

Log-mels of every clip are computed once; training draws random ``crop_seconds`` windows (padded with
silence when shorter), optionally augmented (:mod:`sara.eval.augment`) and optionally drawn class-balanced
(``class_balance``: each epoch draws as many clips as the split holds, with replacement, with weights
``n_class ** -class_balance``, so thin classes are seen more often); validation scores whole, clean clips.
The best-validation weights are saved.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from sara.audio.io import load_audio
from sara.data.balance import class_weights
from sara.errors import SaraError
from sara.eval.augment import MelAugmentConfig, MelAugmenter
from sara.eval.embedders.classifier import AudioClassifier, ClassifierConfig
from sara.eval.manifest import Clip, keep_frequent_classes

__all__ = ["ClassifierTrainConfig", "train_classifier"]


@dataclass(frozen=True)
class ClassifierTrainConfig:
    """Optimisation settings (seconds, steps, learning rate)."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    crop_seconds: float = 2.0
    min_train_clips: int = 1  # drop classes with fewer train clips (thin classes cannot be learned)
    seed: int = 0
    augment: MelAugmentConfig | None = None  # None: clean crops only
    class_balance: float = 0.0  # exponent of class re-balancing (0: every clip once per epoch; 1: classes equal)

    def __post_init__(self) -> None:
        if not 0.0 <= self.class_balance <= 4.0:
            raise ValueError(f"class_balance must be in [0, 4], got {self.class_balance}")


def _load_mels(model: AudioClassifier, clips: list[Clip], desc: str) -> list[Tensor]:
    """Log-mel ``[N_i, n_mels]`` per clip (mono, 16 kHz)."""
    out = []
    for clip in tqdm(clips, desc=desc, leave=False):
        wav, _ = load_audio(clip.path, sample_rate=model.config.sample_rate, mono=True)
        with torch.no_grad():
            out.append(model.log_mel(wav[0]))
    return out


def _crop_batch(mels: list[Tensor], frames: int, gen: torch.Generator, silence: float) -> Tensor:
    """Random ``frames``-long windows ``[B, frames, n_mels]``; short clips padded with ``silence`` (log of the
    feature offset, i.e. zero power)."""
    batch = []
    for m in mels:
        if m.shape[0] > frames:
            start = int(torch.randint(0, m.shape[0] - frames + 1, (1,), generator=gen))
            m = m[start:start + frames]
        batch.append(F.pad(m, (0, 0, 0, frames - m.shape[0]), value=silence))
    return torch.stack(batch)


@torch.no_grad()
def _accuracy(model: AudioClassifier, mels: list[Tensor], labels: Tensor) -> float:
    """Whole-clip accuracy."""
    model.eval()
    pred = torch.stack([model.forward_features(m[None])[2][0].argmax() for m in mels])
    model.train()
    return float((pred == labels).float().mean())


def _set_feature_stats(model: AudioClassifier, mels: list[Tensor]) -> None:
    """Per-mel mean / std over all training frames."""
    allf = torch.cat(mels)
    model.feature_mean.copy_(allf.mean(0))
    model.feature_std.copy_(allf.std(0).clamp(min=1e-3))


def train_classifier(
    clips: list[Clip], out_dir: str | os.PathLike[str], config: ClassifierConfig | None = None,
    train: ClassifierTrainConfig | None = None,
) -> dict[str, float]:
    """Train on ``split == "train"`` clips, select on ``"valid"`` (or train if none), save to ``out_dir``.

    Returns:
        ``{"train_accuracy", "valid_accuracy", "num_train", "num_valid", "num_classes"}``.
    """
    train = train or ClassifierTrainConfig()
    torch.manual_seed(train.seed)
    clips = keep_frequent_classes(clips, train.min_train_clips)
    tr = [c for c in clips if c.split == "train"]
    va = [c for c in clips if c.split == "valid"] or tr
    names = tuple(sorted({c.label for c in tr}))
    if len(names) < 2:
        raise SaraError("classifier training needs at least two classes in the train split")
    model = AudioClassifier(config or ClassifierConfig.small(names))
    if model.config.class_names != names:
        raise SaraError("ClassifierConfig.class_names must equal the sorted train-split classes")
    index = {n: i for i, n in enumerate(names)}
    va = [c for c in va if c.label in index]
    tr_mels, va_mels = _load_mels(model, tr, "mel (train)"), _load_mels(model, va, "mel (valid)")
    tr_y = torch.tensor([index[c.label] for c in tr])
    va_y = torch.tensor([index[c.label] for c in va])
    _set_feature_stats(model, tr_mels)
    best = _fit(model, tr_mels, tr_y, va_mels, va_y, train)
    model.load_state_dict(best["state"])
    model.eval().save_pretrained(out_dir)
    return {"train_accuracy": _accuracy(model, tr_mels, tr_y), "valid_accuracy": best["acc"],
            "num_train": len(tr), "num_valid": len(va), "num_classes": len(names)}


def epoch_order(n: int, weights: Tensor | None, gen: torch.Generator) -> Tensor:
    """One epoch's ``[n]`` clip indices: a permutation, or ``n`` weighted draws with replacement."""
    if weights is None:
        return torch.randperm(n, generator=gen)
    return torch.multinomial(weights, n, replacement=True, generator=gen)


def _fit(model: AudioClassifier, tr_mels: list[Tensor], tr_y: Tensor, va_mels: list[Tensor], va_y: Tensor,
         train: ClassifierTrainConfig) -> dict:
    """Adam epochs over random crops; returns the best-validation ``{"acc", "state"}``."""
    opt = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    gen = torch.Generator().manual_seed(train.seed)
    frames = max(8, int(train.crop_seconds * model.config.sample_rate / model.config.hop_length))
    offset = model.config.mel.log_offset
    augment = None if train.augment is None else MelAugmenter(
        model.log_mel, model.config.sample_rate, offset, model.feature_mean.clone(), train.augment, train.seed)
    best = {"acc": -1.0, "state": None}
    weights = class_weights(tr_y.tolist(), train.class_balance)
    model.train()
    for _epoch in tqdm(range(train.epochs), desc="classifier", leave=False):
        order = epoch_order(len(tr_mels), weights, gen)
        for b in range(math.ceil(len(order) / train.batch_size)):
            idx = order[b * train.batch_size:(b + 1) * train.batch_size]
            x = _crop_batch([tr_mels[i] for i in idx], frames, gen, math.log(offset))
            if augment is not None:
                x = augment(x, gen)
            loss = F.cross_entropy(model.forward_features(x)[2], tr_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        acc = _accuracy(model, va_mels, va_y)
        if acc > best["acc"]:
            best = {"acc": acc, "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
    return best
