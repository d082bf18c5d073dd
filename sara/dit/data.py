"""Training data for the text-to-latent DiT: cached latents (``sara encode``) paired with captions.

A corpus manifest (jsonl; ``path`` relative to the manifest, ``captions`` list, ``caption``, ``split``) names
the clips; the latent cache holds one ``.safetensors`` per clip (tensor ``latents [D, N]``), found by the clip's exact
relative path (:func:`sara.encoder.cache.find_cached_latents`), never by its file name alone.  Items are fixed-length crops
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

from sara.encoder.cache import find_cached_latents
from sara.errors import AudioError, ConfigError

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
        from sara.data.manifest import load_manifest, report_skipped

        self.num_frames = int(num_frames)
        self.train = train
        records = [r for r in load_manifest(manifest, required_keys=("path",)) if r.get("split", "train") == split]
        if not Path(latent_dir).is_dir():
            raise ConfigError(f"{latent_dir}: no such latent cache directory")
        problems: list[str] = []
        self.clips = [c for c in (_clip(r, Path(manifest).parent, Path(latent_dir), problems) for r in records)
                      if c is not None]
        self.num_missing = len(records) - len(self.clips)
        report_skipped(f"{split!r} clips of {manifest}", problems, len(records))
        if records and not self.clips:
            raise ConfigError(f"{latent_dir}: no cached latents for the {split!r} clips of {manifest} "
                              f"(run `sara encode` on the corpus first)")
        self.sample_weights = class_weights([c.label for c in self.clips], class_balance)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        clip = self.clips[i]
        try:
            latents = load_file(str(clip.latent_path))["latents"].float()
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types; missing key: KeyError
            raise AudioError(f"{clip.latent_path}: cannot read cached latents ({exc})") from None
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


def _clip(record: dict, root: Path, latent_dir: Path, problems: list[str]) -> _Clip | None:
    """The clip of a manifest record, or None (with a line in ``problems``) when it has no caption or no
    cached latents (looked up by its exact relative path, see :func:`sara.encoder.cache.find_cached_latents`)."""
    captions = [c for c in record.get("captions") or [record.get("caption")] if isinstance(c, str) and c.strip()]
    if not captions:
        problems.append(f"{record['path']}: no caption")
        return None
    path = find_cached_latents(latent_dir, Path(record["path"]), root / record["path"])
    if path is None:
        problems.append(f"{record['path']}: no cached latents in {latent_dir}")
        return None
    label = record.get("class") if isinstance(record.get("class"), str) else None
    return _Clip(path, tuple(captions), label)


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
