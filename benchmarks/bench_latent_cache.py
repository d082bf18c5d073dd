"""Latent cache layouts at scale: the sharded store vs one safetensors file per clip.

Writes ``--entries`` synthetic float16 latents ``[--dim, --frames]`` (default 100,000 x 256 x 100, 5.1 GB
per layout) with sara's own writers -- :func:`sara.data.latent_store.write_store_shard` + ``build_index``
for the store, the atomic per-file write of ``sara encode`` (temporary file, fsync, rename; 1,000 files per
directory) for per-file storage -- into a temporary directory (removed at the end), then reads
``--reads`` random clips from each with the readers the trainers use (:class:`LatentStore.read`,
:class:`FileLatentCache.read`), whole and as ``--crop``-frame slices.

Prints write time, disk use (allocated blocks, file count) and random-read throughput for both layouts,
and the ratios.  The reads follow the writes, so they mostly hit the page cache (as a training epoch does
once the cache fits in RAM); cold-cache reads need ``echo 3 > /proc/sys/vm/drop_caches`` between phases.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_latent_cache.py                  # ~3-5 minutes, 10 GB temporary
    python benchmarks/bench_latent_cache.py --entries 10000 --dim 64            # quick
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save

from sara.data.latent_store import (
    FileLatentCache,
    LatentStore,
    build_index,
    store_shard_name,
    write_store_shard,
)
from sara.outputs import write_bytes_atomically


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=100_000, help="clips to write")
    p.add_argument("--dim", type=int, default=256, help="latent channels D")
    p.add_argument("--frames", type=int, default=100, help="latent frames N per clip (100 = 4 s at 25 Hz)")
    p.add_argument("--shard-size", type=int, default=1000, help="clips per store shard")
    p.add_argument("--reads", type=int, default=20_000, help="random reads per layout and read kind")
    p.add_argument("--crop", type=int, default=40, help="frames per sliced read (a 1.6 s vocoder crop)")
    p.add_argument("--dir", default=None, help="parent of the temporary directory (default: the system's)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def keys(n: int) -> list[str]:
    """Clip keys shaped like manifest ids."""
    return [f"clips/{i:07d}" for i in range(n)]


def pool(dim: int, frames: int, seed: int, size: int = 64) -> list[torch.Tensor]:
    """Random float16 latents reused across entries (I/O does not care about the values)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(dim, frames, generator=g).half() for _ in range(size)]


def write_store(root: Path, names: list[str], data: list[torch.Tensor], shard_size: int) -> float:
    """Seconds to write the sharded store (shards + index)."""
    root.mkdir(parents=True)
    num_shards = (len(names) + shard_size - 1) // shard_size
    elapsed = 0.0
    for s in range(num_shards):
        chunk = range(s * shard_size, min(len(names), (s + 1) * shard_size))
        latents = {names[i]: data[i % len(data)].clone() for i in chunk}  # distinct storage (not timed)
        start = time.perf_counter()
        write_store_shard(root / store_shard_name(s), latents, {"fingerprint": "bench"})
        elapsed += time.perf_counter() - start
    start = time.perf_counter()
    build_index(root, num_shards)
    return elapsed + time.perf_counter() - start


def file_path(root: Path, index: int, name: str) -> Path:
    """Per-file layout: 1,000 files per directory."""
    return root / f"{index // 1000:04d}" / f"{Path(name).name}.safetensors"


def write_files(root: Path, names: list[str], data: list[torch.Tensor]) -> float:
    """Seconds to write one file per clip, the way ``sara encode -o DIR`` writes them."""
    start = time.perf_counter()
    for i, name in enumerate(names):
        payload = save({"latents": data[i % len(data)]}, metadata={"source": name})
        write_bytes_atomically(file_path(root, i, name), payload)
    return time.perf_counter() - start


def disk_use(root: Path) -> tuple[int, int, int]:
    """``(allocated bytes, apparent bytes, files)`` under ``root``."""
    blocks = size = files = 0
    for dirpath, _, filenames in os.walk(root):
        for f in filenames:
            st = os.stat(os.path.join(dirpath, f))
            blocks, size, files = blocks + st.st_blocks * 512, size + st.st_size, files + 1
    return blocks, size, files


def time_reads(read: Callable[[int], torch.Tensor], order: list[int]) -> tuple[float, int]:
    """``(seconds, bytes)`` for reading the clips in ``order``."""
    start, total = time.perf_counter(), 0
    for i in order:
        total += read(i).numel() * 2
    return time.perf_counter() - start, total


def read_phase(store_root: Path, files_root: Path, names: list[str], args: argparse.Namespace) -> dict[str, tuple]:
    """Random full and sliced reads from both layouts: ``{label: (seconds, bytes, n)}``."""
    rng = random.Random(args.seed)
    order = [rng.randrange(len(names)) for _ in range(args.reads)]
    starts = [rng.randrange(max(1, args.frames - args.crop)) for _ in range(args.reads)]
    t0 = time.perf_counter()
    store = LatentStore(store_root)
    open_s = time.perf_counter() - t0
    files = FileLatentCache(files_root)
    refs = [str(file_path(files_root, i, n)) for i, n in enumerate(names)]  # located once, as datasets do
    slot = iter(range(10**12))

    def sliced(reader: Callable[[int, int], torch.Tensor]) -> Callable[[int], torch.Tensor]:
        return lambda i: reader(i, starts[next(slot) % len(starts)])

    out = {"store open (index)": (open_s, 0, 1),
           "store full": (*time_reads(lambda i: store.read(names[i]), order), len(order)),
           "files full": (*time_reads(lambda i: files.read(refs[i]), order), len(order)),
           "store crop": (*time_reads(sliced(lambda i, f0: store.read(names[i], f0, args.crop)), order), len(order)),
           "files crop": (*time_reads(sliced(lambda i, f0: files.read(refs[i], f0, args.crop)), order), len(order))}
    return out


def report(args: argparse.Namespace, writes: dict[str, float], disks: dict[str, tuple[int, int, int]],
           reads: dict[str, tuple]) -> None:
    """Print the results table and the ratios."""
    entry_mb = args.dim * args.frames * 2 / 1e6
    print(f"{args.entries} entries of {args.dim} x {args.frames} float16 ({entry_mb * 1000:.1f} kB each, "
          f"{args.entries * entry_mb / 1000:.2f} GB of latents); store shards of {args.shard_size}")
    for layout in ("store", "files"):
        blocks, size, nfiles = disks[layout]
        print(f"  {layout:5s} write {writes[layout]:8.1f} s  ({args.entries / writes[layout]:8.0f} entries/s)   disk "
              f"{blocks / 1e9:6.2f} GB allocated, {size / 1e9:6.2f} GB apparent, {nfiles} files")
    print(f"  store open (index load): {reads['store open (index)'][0] * 1000:.0f} ms")
    for label in ("store full", "files full", "store crop", "files crop"):
        secs, nbytes, n = reads[label]
        print(f"  {label:10s} random read: {n / secs:9.0f} reads/s  {nbytes / secs / 1e6:8.1f} MB/s  "
              f"({secs / n * 1e6:6.1f} us/read)")
    rate = {k: reads[k][2] / reads[k][0] for k in ("store full", "files full", "store crop", "files crop")}
    print(f"ratios (files / store): write time {writes['files'] / writes['store']:.2f}x, allocated disk "
          f"{disks['files'][0] / disks['store'][0]:.3f}x, files {disks['files'][2] / disks['store'][2]:.0f}x; "
          f"read throughput (store / files): full {rate['store full'] / rate['files full']:.2f}x, "
          f"crop {rate['store crop'] / rate['files crop']:.2f}x")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    names, data = keys(args.entries), pool(args.dim, args.frames, args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="sara-bench-latents-", dir=args.dir))
    try:
        writes = {"store": write_store(tmp / "store", names, data, args.shard_size),
                  "files": write_files(tmp / "files", names, data)}
        disks = {k: disk_use(tmp / k) for k in ("store", "files")}
        reads = read_phase(tmp / "store", tmp / "files", names, args)
        report(args, writes, disks, reads)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
