"""Training items for the LDM: cached VAE posteriors (:mod:`sara.ldm.cache`) with their captions.

Items are deterministic functions of their index: all randomness (which caption, the posterior sample, the
noise, the timestep, condition dropout) is drawn in :meth:`sara.ldm.training.LDMTask.compute_loss` from a
generator seeded by ``(seed, draw, index)``, so nothing here depends on the global RNG or on worker seeding.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import Dataset

from sara.errors import ConfigError
from sara.ldm.cache import CachedItem, LatentCache

__all__ = ["CachedLatentDataset", "check_latent_shape", "collate_latents"]


class CachedLatentDataset(Dataset):
    """``{"mean", "std": [C, H, W], "captions": tuple[str, ...], "index": int}`` items of one split.

    Args:
        cache_dir: a cache written by :func:`sara.ldm.cache.build_latent_cache`.
        split: manifest split.
        mixtures: also serve the cache's caption mixtures (they belong to the split they were drawn from).
    """

    def __init__(self, cache_dir: str | os.PathLike[str], split: str, mixtures: bool = False) -> None:
        self.cache = LatentCache(cache_dir)
        items = [c for c in self.cache.clips if c.split == split]
        if mixtures:
            items += [m for m in self.cache.mixtures if m.split == split]
        self.items: list[CachedItem] = items
        self.num_mixtures = sum(len(it.paths) > 1 for it in items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        mean, std = self.cache.load(self.items[index])
        return {"mean": mean, "std": std, "captions": self.items[index].captions, "index": int(index)}

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the items."""
        return self.cache.latent_shape


def collate_latents(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack items: ``mean``/``std`` ``[B, C, H, W]``, ``index`` ``[B]`` long, ``captions`` list of B tuples."""
    if not items:
        raise ConfigError("empty batch")
    return {"mean": torch.stack([it["mean"] for it in items]), "std": torch.stack([it["std"] for it in items]),
            "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
            "captions": [tuple(it["captions"]) for it in items]}


def check_latent_shape(shape: tuple[int, int, int], in_channels: int) -> None:
    """The cache's latents fit a UNet with ``in_channels`` input channels."""
    if shape[0] != in_channels:
        raise ConfigError(f"latent cache holds {shape[0]}-channel latents, the UNet takes {in_channels}")
