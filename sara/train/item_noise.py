"""Per-item noise for training losses: draws that belong to the item, not to the process or the batch.

A flow-matching or MAE loss draws noise, timesteps and masks.  Drawn from the process RNG, those draws
depend on how the global batch is split: every data-parallel process is seeded alike (``accelerate``'s
``set_seed``), so with 2 processes item ``j`` of rank 0 and item ``j`` of rank 1 get the *same* noise, and
a 2-process run with batch ``B`` each trains on different noise than 1 process with batch ``2B``
(or ``B`` with two accumulation steps).

Here every training item carries a **noise seed** derived from its item seed (a hash of ``(run seed,
epoch, position in the epoch)``, :mod:`sara.train.resume`): the loader builds each item with the global
RNG seeded by that item seed, so :class:`NoiseSeededDataset` reads it back with ``torch.initial_seed()``
and mixes it (never the item seed itself, whose stream made the item's crops).  The loss then draws each
item's noise from a ``torch.Generator`` seeded with it (:func:`item_generators`, on the CPU, so CPU and
GPU runs draw the same numbers).  An item's noise is then the same whichever process reads it, in
whichever batch, and on resume.

Shard streams add the same seeds from their own item seeds (``(run seed, epoch, position in the
stream)``).  Batches without seeds (validation) fall back to seeds drawn from the
process RNG and mixed with the process rank (:func:`batch_noise_seeds`), so processes still differ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset, IterableDataset

from sara.train.resume import item_seed

__all__ = ["NOISE_SEED", "NoiseSeededDataset", "add_noise_seed", "batch_noise_seeds", "item_generators", "per_item",
           "split_noise_seeds", "with_noise_seeds"]

NOISE_SEED = "noise_seed"  # batch key: ``[B]`` int64 per-item noise seeds
_SALT = 0x6E6F697365  # "noise": keeps noise seeds apart from the item seeds that made the items
_MASK = 2**62 - 1


class NoiseSeededDataset(Dataset):
    """A map-style dataset of dict items, each with ``NOISE_SEED`` (a 0-d int64 tensor) added.

    Other attributes (e.g. ``sample_weights``) are those of the wrapped dataset.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.dataset[index])
        # the loop seeded the global RNG with this item's seed (SeededDataset); index separates items of a
        # dataset read outside the loop, where every item would see the same initial seed
        return add_noise_seed(item, torch.initial_seed(), index)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling in a loader worker)
            raise AttributeError(name)
        return getattr(self.dataset, name)


def add_noise_seed(item: Any, seed: int, index: int) -> Any:
    """``item`` (a dict) with its ``NOISE_SEED`` from its item ``seed`` and ``index``; other items unchanged.

    Map-style datasets (:class:`NoiseSeededDataset`) and shard streams (:mod:`sara.data.stream`) both use it,
    so an item's loss noise follows the item whichever process, worker or batch reads it.
    """
    if not isinstance(item, dict):
        return item
    return {**item, NOISE_SEED: torch.tensor(item_seed(int(seed), _SALT, int(index)) & _MASK)}


def with_noise_seeds(dataset: Dataset) -> Dataset:
    """``dataset`` with per-item noise seeds (map-style datasets; a stream is returned unchanged)."""
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        return dataset
    return NoiseSeededDataset(dataset)


def split_noise_seeds(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Tensor | None]:
    """``(items without NOISE_SEED, [B] int64 seeds or None)`` for collate functions that pick their keys."""
    if not items or NOISE_SEED not in items[0]:
        return items, None
    seeds = torch.stack([torch.as_tensor(it[NOISE_SEED]) for it in items])
    return [{k: v for k, v in it.items() if k != NOISE_SEED} for it in items], seeds


def batch_noise_seeds(batch: dict[str, Any], batch_size: int) -> list[int]:
    """The batch's per-item noise seeds; without them, ``batch_size`` seeds drawn from the process RNG and
    mixed with the process rank (so data-parallel processes never share noise)."""
    seeds = batch.get(NOISE_SEED) if isinstance(batch, dict) else None
    if seeds is not None:
        return [int(s) for s in seeds.tolist()]
    drawn = torch.randint(0, _MASK, (batch_size,)).tolist()
    rank = torch.distributed.get_rank() if torch.distributed.is_available() and torch.distributed.is_initialized() else 0
    return [item_seed(int(s), rank + 1, _SALT) & _MASK for s in drawn] if rank else [int(s) for s in drawn]


def item_generators(seeds: list[int]) -> list[torch.Generator]:
    """One CPU ``torch.Generator`` per item, seeded with its noise seed."""
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def per_item(generators: list[torch.Generator], draw: Callable[[torch.Generator], Tensor]) -> Tensor:
    """``torch.stack([draw(g) for g in generators])``: one draw per item, ``[B, ...]`` on the CPU."""
    return torch.stack([draw(g) for g in generators])
