"""Training data for the text-to-latent DiT: cached latents (``sara encode``) paired with captions.

A corpus manifest (jsonl; ``path`` relative to the manifest, ``captions`` list, ``caption``, ``split``) names
the clips; the latent cache holds one ``<stem>.safetensors`` per clip (tensor ``latents [D, N]``), found at
``<cache>/<path with .safetensors>`` or ``<cache>/<stem>.safetensors``.  Items are fixed-length crops
(random start for training) padded with zeros and a frame mask.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor
from torch.utils.data import Dataset

from sara.errors import ConfigError

__all__ = ["LatentCaptionDataset", "class_weights", "collate_latent_captions"]


@dataclass(frozen=True)
class _Clip:
    latent_path: Path
    captions: tuple[str, ...]
    label: str | None = None


class LatentCaptionDataset(Dataset):
    """``{"latents": [D, F], "mask": [F] bool, "caption": str}`` items.

    Args:
        manifest: corpus manifest (jsonl).
        latent_dir: latent cache directory written by ``sara encode``.
        split: manifest split to use ("train", "valid", ...).
        num_frames: crop/pad length F in latent frames (25 per second).
        train: random crops and random caption choice; otherwise the first frames and the first caption.
        class_balance: exponent ``a`` of class re-balancing (0 = off): ``sample_weights`` become
            ``n ** -a`` for a clip whose class (the manifest's ``class`` field) has ``n`` clips; the training
            loop then draws each epoch's items with replacement by these weights.

    Attributes:
        sample_weights: ``[len(self)]`` float64 weights for the training loop's sampler, or None (uniform).
    """

    def __init__(self, manifest: str | Path, latent_dir: str | Path, split: str, num_frames: int,
                 train: bool = True, class_balance: float = 0.0) -> None:
        from sara.data.manifest import load_manifest

        self.num_frames = int(num_frames)
        self.train = train
        records = [r for r in load_manifest(manifest) if r.get("split", "train") == split]
        index = _stem_index(Path(latent_dir))
        self.clips = [c for c in (_clip(r, Path(latent_dir), index) for r in records) if c is not None]
        self.num_missing = len(records) - len(self.clips)
        if records and not self.clips:
            raise ConfigError(f"{latent_dir}: no cached latents for the {split!r} clips of {manifest} "
                              f"(run `sara encode` on the corpus first)")
        self.sample_weights = class_weights([c.label for c in self.clips], class_balance)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        clip = self.clips[i]
        latents = load_file(str(clip.latent_path))["latents"].float()
        crop, mask = _crop_or_pad(latents, self.num_frames, self.train)
        caption = random.choice(clip.captions) if self.train else clip.captions[0]
        return {"latents": crop, "mask": mask, "caption": caption}


def class_weights(labels: list[str | None], exponent: float) -> Tensor | None:
    """Per-item sampling weights ``n_label ** -exponent`` (mean 1), or None when ``exponent == 0``.

    ``n_label`` counts the items sharing ``labels[i]``; unlabelled items (None) count as a class of their own.
    Exponent 1 makes every class equally likely, 0.5 is halfway (in log-frequency) between that and the data.
    """
    if exponent < 0:
        raise ValueError(f"class balance exponent must be >= 0, got {exponent}")
    if exponent == 0 or not labels:
        return None
    counts = Counter(labels)
    w = torch.tensor([counts[label] ** -exponent for label in labels], dtype=torch.float64)
    return w / w.mean()


def _stem_index(latent_dir: Path) -> dict[str, Path]:
    if not latent_dir.is_dir():
        raise ConfigError(f"{latent_dir}: no such latent cache directory")
    return {p.stem: p for p in latent_dir.rglob("*.safetensors")}


def _clip(record: dict, latent_dir: Path, index: dict[str, Path]) -> _Clip | None:
    """The clip of a manifest record, or None when its latents are not cached or it has no caption."""
    captions = [c for c in record.get("captions") or [record.get("caption")] if isinstance(c, str) and c.strip()]
    if not captions or "path" not in record:
        return None
    rel = Path(record["path"]).with_suffix(".safetensors")
    path = latent_dir / rel if (latent_dir / rel).is_file() else index.get(rel.stem)
    label = record.get("class") if isinstance(record.get("class"), str) else None
    return None if path is None else _Clip(path, tuple(captions), label)


def _crop_or_pad(latents: Tensor, frames: int, random_start: bool) -> tuple[Tensor, Tensor]:
    """``[D, N] -> ([D, frames], mask [frames])``: a crop when ``N > frames``, else zero padding."""
    n = latents.shape[-1]
    if n >= frames:
        start = random.randint(0, n - frames) if random_start else 0
        return latents[:, start:start + frames].clone(), torch.ones(frames, dtype=torch.bool)
    out = latents.new_zeros(latents.shape[0], frames)
    out[:, :n] = latents
    mask = torch.zeros(frames, dtype=torch.bool)
    mask[:n] = True
    return out, mask


def collate_latent_captions(items: list[dict]) -> dict:
    """Stack items: ``latents [B, D, F]``, ``mask [B, F]``, ``captions`` list of B strings."""
    return {"latents": torch.stack([it["latents"] for it in items]),
            "mask": torch.stack([it["mask"] for it in items]),
            "captions": [it["caption"] for it in items]}
