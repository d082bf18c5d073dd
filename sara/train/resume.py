"""What makes a resumed run bit-exact: per-item randomness from ``(seed, epoch, position)`` and clean stops.

**Clean stops.**  :class:`StopRequest` turns SIGINT / SIGTERM into "stop after this optimizer step": the loop
then checkpoints a state from a step boundary.  (Saving from inside a step -- the old ``except
KeyboardInterrupt: save`` -- recorded a batch as consumed whose update never happened, and an RNG stream
advanced by half a step.)

**Per-item randomness.**  Datasets draw their crops, gains and caption choices from the *global* RNGs (``torch``,
``random``, ``numpy``), and the loader fetches items *ahead* of the training step (accelerate's loader keeps
one batch in hand, worker processes prefetch ``prefetch_factor`` batches).  The global torch RNG is also
what the loss draws its noise and timesteps from, and it is what a checkpoint saves.  So the state saved
after step ``k`` already includes the draws made for the items of steps ``k + 1, k + 2, ...``; a resumed run
restores that state, fetches those items again -- drawing again -- and from then on every crop and every
noise tensor differs from the uninterrupted run.

The fix: the sampler hands the dataset ``(index, item_seed)`` pairs, ``item_seed`` a hash of
``(seed, epoch, position in epoch)``, and :class:`SeededDataset` runs the real ``__getitem__`` with all three
global RNGs forked and seeded from it (the collate function likewise, from the batch's seeds).  Item
randomness then never touches the training step's RNG stream, in the main process or in a worker, and a
skipped or re-fetched item gets exactly the same values.

**Lazy construction.**  A task that builds a frozen helper on first use (the vocoder's semantic encoder,
the DiT's text encoder) initialises its parameters from the global RNG: in an uninterrupted run at step 0,
in a resumed one at its first step -- right after the checkpoint's RNG state was restored.  Such helpers
are built inside :func:`fork_rng`, so they never shift the stream.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from sara.errors import ConfigError

__all__ = ["EpochSampler", "SeededCollate", "SeededDataset", "SeededSampler", "StopRequest", "fork_rng", "item_seed", "worker_init"]

_MASK = 2**63 - 1


def item_seed(seed: int, epoch: int, position: int) -> int:
    """A well-mixed 63-bit seed for the item at ``position`` of ``epoch`` (splitmix64 of the triple)."""
    x = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + position * 0x94D049BB133111EB) & (2**64 - 1)
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & (2**64 - 1)
    return (x ^ (x >> 31)) & _MASK


@contextlib.contextmanager
def fork_rng(seed: int | None = None, *, cuda: bool = False) -> Iterator[None]:
    """Run a block with the global ``torch`` (CPU; CUDA with ``cuda``), ``random`` and ``numpy`` RNGs saved,
    optionally seeded with ``seed``, and restored afterwards."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if cuda and torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.default_generator.manual_seed(seed)
            if devices:
                torch.cuda.manual_seed_all(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class EpochSampler(Sampler[int]):
    """``n`` indices per epoch that depend only on ``(seed, epoch)`` (resumable).

    Without ``weights`` a permutation; with ``weights [n]`` (a dataset's ``sample_weights``) ``n`` draws with
    replacement, index ``i`` with probability ``weights[i] / sum(weights)``.
    """

    def __init__(self, n: int, seed: int, weights: torch.Tensor | None = None) -> None:
        if weights is not None and (weights.shape != (n,) or not bool((weights >= 0).all()) or weights.sum() <= 0):
            raise ConfigError(f"sample weights must be {n} non-negative numbers with a positive sum")
        self.n, self.seed, self.epoch, self.weights = n, seed, 0, weights

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.weights is not None:
            return iter(torch.multinomial(self.weights, self.n, replacement=True, generator=g).tolist())
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class SeededSampler(Sampler[tuple[int, int]]):
    """Wraps an index sampler with ``set_epoch`` and yields ``(index, item_seed(seed, epoch, position))``."""

    def __init__(self, sampler: Any, seed: int) -> None:
        self.sampler, self.seed, self.epoch = sampler, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (forwarded to the wrapped sampler)."""
        self.epoch = epoch
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for position, index in enumerate(self.sampler):
            yield int(index), item_seed(self.seed, self.epoch, position)

    def __len__(self) -> int:
        return len(self.sampler)


class SeededDataset(Dataset):
    """Map-style view of ``dataset`` indexed by ``(index, seed)``; items come back as ``(item, seed)``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> tuple[Any, int]:
        index, seed = key
        with fork_rng(seed):
            return self.dataset[index], seed


class SeededCollate:
    """Collate ``(item, seed)`` pairs with ``collate`` under RNGs seeded from the batch's seeds."""

    def __init__(self, collate: Callable[[list[Any]], Any]) -> None:
        self.collate = collate

    def __call__(self, pairs: list[tuple[Any, int]]) -> Any:
        items = [item for item, _ in pairs]
        with fork_rng(item_seed(pairs[0][1], len(pairs), 1) if pairs else 0):
            return self.collate(items)


class StopRequest:
    """While active, SIGINT / SIGTERM ask the loop to stop after the current optimizer step (then it saves a
    checkpoint), so a clean stop always resumes bit-exactly.  A second signal interrupts at once.

    Outside the main thread (where handlers cannot be installed) it does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum


def worker_init(worker_id: int) -> None:
    """DataLoader workers leave SIGINT / SIGTERM to the main process, which stops cleanly (StopRequest)."""
    for sig in StopRequest.SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
