"""``ShardStream``: the IterableDataset behind every trainer's ``--shards`` -- buffered shuffling, an even split
over processes and DataLoader workers, per-item seeds, and exact resume.

**The epoch's stream.**  For epoch ``e`` the shards are put in an order drawn from ``(seed, e)`` and their
clips of the chosen split are concatenated: position ``p`` (0 .. T-1) is a clip's place in that sequence.
With ``R`` processes of ``K`` DataLoader workers each (K = 1 without workers) there are ``W = R K`` readers;
reader ``g = rank K + worker`` takes positions ``[g q, (g + 1) q)``, ``q = T // W`` -- a contiguous run, so
it reads whole shards except at most two that it shares with its neighbours -- and shuffles them with a
buffer of ``shuffle_buffer`` clips (each new clip replaces a random pick from the buffer; the picks are
drawn from ``(seed, e, g)``).  Each clip is read by at most one reader: no duplicates within an epoch.  The
``T - W q < W`` clips past the last run sit out that epoch (the shard order changes in the next), as do the
``q mod batch_size`` clips of a reader's last partial batch (drop_last).  Every process thus yields the same
number of batches per epoch, ``K * (q // batch_size)``, as DDP needs.

**Per-item randomness.**  The clip at position ``p`` is decoded (crop, gain, caption choice) with all global
RNGs forked and seeded from ``item_seed(seed, e, p)`` (:mod:`sara.train.resume`) -- the same value whichever
process or worker reads it -- and yielded as ``(item, seed)`` for :class:`~sara.train.resume.SeededCollate`.

**Resume.**  Resuming from a checkpoint taken after ``b`` batches of epoch ``e`` regenerates epoch ``e``'s
stream from ``(seed, e)`` and skips, in every reader, the clips of its share of those ``b`` batches (worker
``w`` made batches ``w, w + K, w + 2K, ...``: the DataLoader takes them round-robin).  Skipped clips are not
decoded, and shards holding only skipped clips are not opened.  The resumed run then yields exactly the
batches of the uninterrupted run -- same clips, same order, same per-item randomness -- so, with the loop's
bit-exact resume, the same weights.  This holds for the same seed, batch size, number of processes and
number of workers; with another layout the resumed epoch is that layout's stream minus its first ``b``
batches per process (within that one epoch some clips may then repeat or be missed).

**Evaluation streams** (``train=False``) read the clips of the split in stored order, unshuffled and
unsplit (every process sees the same clips), decoded under seeds ``p``; they yield plain items.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import IterableDataset, get_worker_info

from sara.data.shard_source import ShardSample, count_splits, iter_samples, resolve_shards
from sara.errors import ConfigError, SaraError
from sara.train.item_noise import add_noise_seed
from sara.train.resume import fork_rng, item_seed

__all__ = ["ShardStream", "buffer_order", "has_split", "stream_head"]

Decoder = Callable[[ShardSample, int], Any]


def buffer_order(n: int, buffer: int, rng: random.Random) -> list[int]:
    """The output order of a buffer shuffle of inputs ``0 .. n-1``.

    The first ``buffer`` inputs fill the buffer; each later input replaces a uniformly drawn buffer slot,
    whose content is output; the rest of the buffer is output shuffled at the end.  ``buffer <= 1`` keeps
    the order.  Only the draws decide the order, so it can be computed without the items.
    """
    if buffer <= 1:
        return list(range(n))
    out: list[int] = []
    buf: list[int] = []
    for i in range(n):
        if len(buf) < buffer:
            buf.append(i)
            continue
        j = rng.randrange(buffer)
        out.append(buf[j])
        buf[j] = i
    rng.shuffle(buf)
    return out + buf


class ShardStream(IterableDataset):
    """Clips of WebDataset shards as training (or evaluation) items; see the module docstring.

    Args:
        spec: the ``--shards`` spec (:func:`sara.data.shard_source.resolve_shards`).
        decode: ``decode(sample, position) -> item`` (run under the item's seeded RNGs); must pickle
            (DataLoader workers), e.g. a small class instance.
        split: clips of this split only (None: all).
        train: shuffled, split over readers, yields ``(item, seed)``; else the evaluation stream.
        shuffle_buffer: clips held by each reader's shuffle buffer (1 disables shuffling within readers).
    """

    def __init__(self, spec: str, decode: Decoder, *, split: str | None = "train", train: bool = True,
                 shuffle_buffer: int = 512) -> None:
        super().__init__()
        if shuffle_buffer < 1:
            raise ConfigError(f"--shuffle-buffer must be >= 1, got {shuffle_buffer}")
        self.spec, self.decode, self.split, self.train = spec, decode, split, train
        self.refs, self.index = resolve_shards(spec)
        self.shuffle_buffer = shuffle_buffer
        self.seed, self.batch_size, self.rank, self.world_size, self.num_workers = 0, 1, 0, 1, 0
        self.epoch, self.skip_batches = 0, 0
        self._counts: list[int] | None = None

    # ------------------------------------------------------------------------------------------ sizes
    @property
    def counts(self) -> list[int]:
        """Clips of the split in each shard (from the index; shards without one are counted once)."""
        if self._counts is None:
            self._counts = [ref.count(self.split) if ref.splits is not None else _count(ref.url, self.split)
                            for ref in self.refs]
        return self._counts

    @property
    def num_items(self) -> int:
        """Clips of the split in all shards."""
        return sum(self.counts)

    @property
    def items_per_reader(self) -> int:
        """``q``: clips each reader (process x worker) takes per epoch."""
        return self.num_items // (self.world_size * max(1, self.num_workers))

    @property
    def batches_per_epoch(self) -> int:
        """Batches each process yields per epoch."""
        return max(1, self.num_workers) * (self.items_per_reader // self.batch_size)

    def bind(self, *, seed: int, batch_size: int, rank: int = 0, world_size: int = 1, num_workers: int = 0) -> None:
        """Set what the training loop reads with (called before the first epoch).

        Raises:
            ConfigError: a reader would get fewer clips than one batch.
        """
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not in [0, {world_size})")
        self.seed, self.batch_size, self.rank, self.world_size = seed, batch_size, rank, world_size
        self.num_workers = num_workers
        readers = world_size * max(1, num_workers)
        if self.items_per_reader < batch_size:
            what = f"{self.split!r} clips" if self.split is not None else "clips"
            raise ConfigError(f"--shards {self.spec}: {self.num_items} {what} split over {readers} "
                              f"reader(s) ({world_size} process(es) x {max(1, num_workers)} worker(s)) give "
                              f"{self.items_per_reader} each, fewer than batch_size {batch_size}")

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Select the epoch, and the batches of it this process already consumed (resume)."""
        self.epoch, self.skip_batches = epoch, skip_batches

    # -------------------------------------------------------------------------------------- iteration
    def __iter__(self) -> Iterator[Any]:
        if not self.train:
            return self._iter_eval()
        info = get_worker_info()
        return self.reader(info.id if info is not None else 0, info.num_workers if info is not None else 1)

    def shard_order(self, epoch: int) -> list[int]:
        """Shard numbers in epoch ``epoch``'s order (a permutation drawn from ``(seed, epoch)``)."""
        order = list(range(len(self.refs)))
        random.Random(f"sara-shard-order/{self.seed}/{epoch}").shuffle(order)
        return order

    def reader(self, worker: int, num_workers: int) -> Iterator[tuple[Any, int]]:
        """The ``(item, seed)`` pairs of worker ``worker`` of ``num_workers`` in this process, this epoch."""
        readers = self.world_size * num_workers
        g, q = self.rank * num_workers + worker, self.num_items // readers
        rng = random.Random(f"sara-shard-shuffle/{self.seed}/{self.epoch}/{readers}/{g}")
        wanted = buffer_order(q, self.shuffle_buffer, rng)
        done = len(range(worker, self.skip_batches, num_workers)) * self.batch_size
        return self._emit(wanted[done:], g * q, q)

    def _emit(self, wanted: list[int], lo: int, q: int) -> Iterator[tuple[Any, int]]:
        """Yield positions ``lo + r`` for ``r`` in ``wanted``, each decoded once it has been read."""
        need = set(wanted)
        source = self._read_range(lo, q, sorted(need))
        pending: dict[int, tuple[Any, int]] = {}
        for r in wanted:
            while r not in pending:
                pos, sample = next(source, (None, None))
                if pos is None or sample is None:
                    raise SaraError(f"--shards {self.spec}: the shards hold fewer clips than their index says")
                if pos - lo in need:  # clips consumed before a resume are read past, not decoded
                    pending[pos - lo] = self._decode(sample, pos)
            yield pending.pop(r)

    def _read_range(self, lo: int, q: int, needed: list[int]) -> Iterator[tuple[int, ShardSample]]:
        """``(position, sample)`` of the needed offsets (sorted) of positions ``lo .. lo + q``, in order."""
        counts, start = self.counts, 0
        for shard in self.shard_order(self.epoch):
            a, n = start, counts[shard]
            start += n
            first = bisect.bisect_left(needed, a - lo)
            if n == 0 or a >= lo + q or first == len(needed) or needed[first] >= a + n - lo:
                continue  # outside the range, or nothing still needed in it
            yield from self._read_shard(shard, a, lo, q)

    def _read_shard(self, shard: int, a: int, lo: int, q: int) -> Iterator[tuple[int, ShardSample]]:
        """The samples of ``shard`` (its clips at positions ``a ..``) that fall in ``lo .. lo + q``."""
        url, n = self.refs[shard].url, self.counts[shard]
        pos = a
        for sample in iter_samples(url):
            if self.split is not None and sample.split != self.split:
                continue
            if pos >= a + n:
                raise SaraError(f"{url}: holds more clips of split {self.split} than its index says ({n})")
            if pos >= lo + q:
                return
            if pos >= lo:
                yield pos, sample
            pos += 1

    def _decode(self, sample: ShardSample, position: int) -> tuple[Any, int]:
        seed = item_seed(self.seed, self.epoch, position)
        with fork_rng(seed):
            item = self.decode(sample, position)
        return add_noise_seed(item, seed, position), seed  # per-item loss noise, as for map-style datasets

    def _iter_eval(self) -> Iterator[Any]:
        """The evaluation stream: every clip of the split, in stored order."""
        pos = 0
        for ref in self.refs:
            if ref.count(self.split) == 0:
                continue
            for sample in iter_samples(ref.url):
                if self.split is not None and sample.split != self.split:
                    continue
                with fork_rng(pos):
                    item = self.decode(sample, pos)
                yield item
                pos += 1


def _count(url: str, split: str | None) -> int:
    """Clips of ``split`` (all when None) in a shard without an index."""
    counts = count_splits(url)
    return sum(counts.values()) if split is None else counts.get(split, 0)


def stream_head(spec: str, decode: Decoder, count: int, splits: tuple[str, ...] = ("valid", "train")) -> list[tuple[str, Any]]:
    """The first ``count`` items of the first of ``splits`` that has clips in the shards, with their clip keys
    (for a task's logged samples).

    Returns:
        ``[(clip key, item), ...]`` in stored order (fewer when the shards hold fewer clips).
    """
    for split in splits:
        keyed = ShardStream(spec, lambda sample, pos: (sample.clip_key, decode(sample, pos)), split=split, train=False)
        out = []
        for pair in keyed:
            out.append(pair)
            if len(out) >= count:
                break
        if out:
            return out
    return []


def has_split(stream: ShardStream, split: str) -> bool:
    """Whether the stream's shards hold clips of ``split`` (from the index; False when it has none)."""
    return stream.index is not None and stream.index.split_counts().get(split, 0) > 0
