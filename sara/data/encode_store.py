"""Encoding many clips into a sharded latent store, resumably and data-parallel (``sara encode --manifest`` /
``--shards`` / ``--shard-size``).

**Plan.**  The clips are cut into store shards before anything is encoded: from a manifest (or audio inputs),
``shard_size`` clips per store shard in input order; from WebDataset shards, one store shard per input shard.
``plan.json`` records the plan's fingerprint (clip keys and files, shard size, encoder, padding); a directory
holding another plan is refused.

**Resume.**  Each store shard is written to ``<name>.part`` and renamed when complete, with the fingerprint in
its metadata; a rerun skips the shards that exist with that fingerprint and encodes the rest.  Clips that
fail (unreadable, too short) are left out and named in their shard's ``failed`` metadata.

**Data parallel.**  Under ``torchrun`` / ``accelerate launch`` (``RANK`` / ``WORLD_SIZE`` in the environment)
process ``r`` of ``R`` encodes shards ``r, r + R, ...`` (on ``cuda:LOCAL_RANK`` when the device is ``cuda``)
and writes only its own shards.  No process waits for another: each one, when done, checks whether every
shard of the plan exists, and the one that finds them all (the last to finish) writes ``index.json`` from
the shard headers; any rerun also rebuilds a missing index.  The shard split does not depend on ``R``, so
an interrupted run can be resumed with another number of processes.

Latents are encoded like ``sara encode`` encodes files (:mod:`sara.encoder.files`: equal-shape clips batched,
per-item dB floor, long clips block-wise, optional silence padding) and stored as float16.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from sara.data.latent_store import (
    PLAN_NAME,
    build_index,
    read_shard_metadata,
    store_shard_name,
    write_store_shard,
)
from sara.errors import ConfigError, SaraError
from sara.outputs import write_text_atomically

__all__ = ["EncodeShardResult", "StoreClip", "StorePlan", "dist_rank", "encode_store", "plan_from_files",
           "plan_from_manifest", "plan_from_shards"]


@dataclass(frozen=True)
class StoreClip:
    """One clip to encode: its key, a name for messages, and how to load its audio (``-> ([C, T], sr)``)."""

    key: str
    name: str
    load: Callable[[], tuple[Tensor, int]]


@dataclass(frozen=True)
class StorePlan:
    """The store shards to write: ``shards[i]()`` yields the clips of shard ``i``; ``ident`` fingerprints them."""

    shards: list[Callable[[], Iterator[StoreClip]]]
    ident: str


@dataclass
class EncodeShardResult:
    """What :func:`encode_store` did in this process (``failures``: ``(clip name, reason)``)."""

    written: int = 0
    skipped: int = 0
    encoded: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    index_written: bool = False
    num_shards: int = 0


def dist_rank() -> tuple[int, int, int]:
    """``(rank, world size, local rank)`` from the ``torchrun`` / ``accelerate launch`` environment."""
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError("RANK / WORLD_SIZE / LOCAL_RANK must be integers") from None
    if not 0 <= rank < world:
        raise ConfigError(f"RANK {rank} is not in [0, WORLD_SIZE {world})")
    return rank, world, local


# ----------------------------------------------------------------------------------------------- plans


def _file_loader(path: Path) -> Callable[[], tuple[Tensor, int]]:
    from sara.audio.io import load_audio

    return lambda: load_audio(path)


def _chunks(clips: list[StoreClip], shard_size: int) -> list[Callable[[], Iterator[StoreClip]]]:
    groups = [clips[i:i + shard_size] for i in range(0, len(clips), shard_size)]
    return [lambda g=g: iter(g) for g in groups]


def _ident(parts: list[Any]) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


def plan_from_manifest(manifest: str | os.PathLike[str], shard_size: int,
                       splits: tuple[str, ...] | None = None) -> StorePlan:
    """``shard_size`` clips per store shard, in manifest order (clips of ``splits``; all when None), keyed by
    :func:`~sara.data.shards.clip_key`.

    Raises:
        ConfigError: the manifest is bad or selects no clip.
    """
    from sara.data.manifest import load_manifest
    from sara.data.shards import clip_key

    path = Path(manifest)
    records = [r for r in load_manifest(path, required_keys=("path",))
               if splits is None or r.get("split", "train") in splits]
    if not records:
        raise ConfigError(f"{path}: no clips of the selected split(s)")
    clips = [StoreClip(clip_key(r), str(r["path"]), _file_loader(path.parent / r["path"])) for r in records]
    ident = _ident(["manifest", shard_size, [[c.key, c.name] for c in clips]])
    return StorePlan(_chunks(clips, shard_size), ident)


def plan_from_files(items: list[tuple[Path, str]], shard_size: int) -> StorePlan:
    """Audio files (``(path, key)``; the key is the path relative to its input without suffix) in shards."""
    clips = [StoreClip(key, str(path), _file_loader(path)) for path, key in items]
    return StorePlan(_chunks(clips, shard_size), _ident(["files", shard_size, [[c.key, c.name] for c in clips]]))


def plan_from_shards(spec: str, splits: tuple[str, ...] | None = None) -> StorePlan:
    """One store shard per WebDataset shard of ``spec`` (its clips of ``splits``; all when None)."""
    from sara.data.shard_source import iter_samples, load_sample_audio, resolve_shards

    refs, _ = resolve_shards(spec)

    def shard(url: str) -> Iterator[StoreClip]:
        for sample in iter_samples(url):
            if splits is None or sample.split in splits:
                yield StoreClip(sample.clip_key, sample.where, lambda s=sample: load_sample_audio(s))

    ident = _ident(["shards", list(splits or ()), [[r.url, r.splits] for r in refs]])
    return StorePlan([lambda u=r.url: shard(u) for r in refs], ident)


# ---------------------------------------------------------------------------------------------- encode


def encode_store(encoder: Any, plan: StorePlan, out: str | os.PathLike[str], *, rank: int = 0, world_size: int = 1,
                 batch_size: int = 8, long_seconds: float = 60.0, pad_seconds: float = 0.0,
                 encoder_id: str = "", on_shard: Callable[[int], None] | None = None) -> EncodeShardResult:
    """Encode this process's shards of ``plan`` into the store ``out`` (see the module docstring).

    Args:
        encoder: a :class:`~sara.encoder.encoder.SemanticEncoder` (its device is used).
        rank, world_size: this process's share: shards ``rank, rank + world_size, ...``.
        batch_size, long_seconds, pad_seconds: as for :func:`sara.encoder.files.encode_files`.
        encoder_id: identifies the encoder in the fingerprint (path and config).
        on_shard: called with the shard number after each of this process's shards.

    Raises:
        ConfigError: ``out`` holds a store of another plan.
    """
    fingerprint = _ident([plan.ident, encoder_id, pad_seconds])
    root = _prepare_store(Path(out), fingerprint, len(plan.shards))
    result = EncodeShardResult(num_shards=len(plan.shards))
    meta = {"fingerprint": fingerprint, "frame_rate": repr(float(encoder.frame_rate)),
            "sample_rate": str(encoder.sample_rate)}
    for i in range(rank, len(plan.shards), world_size):
        if _shard_done(root, i, fingerprint):
            result.skipped += 1
        else:
            latents, failures = _encode_clips(encoder, plan.shards[i](), batch_size, long_seconds, pad_seconds)
            write_store_shard(root / store_shard_name(i), latents,
                              {**meta, "failed": json.dumps([name for name, _ in failures], ensure_ascii=False)})
            result.written, result.encoded = result.written + 1, result.encoded + len(latents)
            result.failures += failures
        if on_shard is not None:
            on_shard(i)
    result.index_written = _maybe_index(root, len(plan.shards), fingerprint, meta)
    return result


def _prepare_store(root: Path, fingerprint: str, num_shards: int) -> Path:
    """Create the store directory and its ``plan.json``; refuse one that holds another plan."""
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root}: not a directory")
    plan_file = root / PLAN_NAME
    if plan_file.is_file():
        try:
            old = json.loads(plan_file.read_text(encoding="utf-8")).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            raise SaraError(f"{plan_file}: unreadable; remove it (and the store) or write to a new directory") from None
        if old != fingerprint:
            raise ConfigError(f"{root}: holds a latent store of other clips or another encoder; write to a new "
                              "directory")
    elif any(root.glob("latents-*.safetensors")):
        raise ConfigError(f"{root}: holds latent shards without a {PLAN_NAME}; write to a new directory")
    root.mkdir(parents=True, exist_ok=True)
    plan = {"format": "sara-latent-plan", "version": 1, "fingerprint": fingerprint, "num_shards": num_shards}
    write_text_atomically(plan_file, json.dumps(plan, indent=1) + "\n")  # every process writes the same bytes
    return root


def _shard_done(root: Path, index: int, fingerprint: str) -> bool:
    meta = read_shard_metadata(root / store_shard_name(index))
    return meta is not None and meta.get("fingerprint") == fingerprint


def _maybe_index(root: Path, num_shards: int, fingerprint: str, meta: dict[str, str]) -> bool:
    """Write ``index.json`` when every shard of the plan is done (whichever process finishes last)."""
    if not all(_shard_done(root, i, fingerprint) for i in range(num_shards)):
        return False
    build_index(root, num_shards, {"fingerprint": fingerprint, "frame_rate": float(meta["frame_rate"]),
                                   "sample_rate": int(meta["sample_rate"]), "dtype": "float16"})
    return True


def _encode_clips(encoder: Any, clips: Iterator[StoreClip], batch_size: int, long_seconds: float,
                  pad_seconds: float) -> tuple[dict[str, Tensor], list[tuple[str, str]]]:
    """``({key: latents [D, N]}, failures)`` of one shard's clips; equal-shape clips are batched."""
    from sara.encoder.files import padded_length

    latents: dict[str, Tensor] = {}
    failures: list[tuple[str, str]] = []
    groups: dict[tuple[int, ...], list[tuple[StoreClip, Tensor]]] = {}
    for clip in clips:
        try:
            wav, sr = clip.load()
        except SaraError as exc:
            failures.append((clip.name, str(exc)))
            continue
        wav = F.pad(wav, (0, max(0, padded_length(pad_seconds, sr) - wav.shape[-1])))
        if wav.shape[-1] > long_seconds * sr:
            _run_group(encoder, [(clip, wav)], sr, True, latents, failures)
            continue
        group = groups.setdefault((sr, *wav.shape), [])
        group.append((clip, wav))
        if len(group) >= batch_size:
            _run_group(encoder, groups.pop((sr, *wav.shape)), sr, False, latents, failures)
    for key, group in groups.items():
        _run_group(encoder, group, key[0], False, latents, failures)
    return latents, failures


def _run_group(encoder: Any, group: list[tuple[StoreClip, Tensor]], sr: int, long: bool,
               latents: dict[str, Tensor], failures: list[tuple[str, str]]) -> None:
    """Encode one batch of equal-shape clips into ``latents`` (its failure is every clip's)."""
    device = encoder.norm.weight.device
    try:
        with torch.no_grad():
            if long:
                out = [encoder.encode_long(group[0][1].to(device), sr)]
            else:
                out = list(encoder.encode(torch.stack([w for _, w in group]).to(device), sr, db_scope="item"))
    except SaraError as exc:  # e.g. too short
        failures.extend((clip.name, str(exc)) for clip, _ in group)
        return
    for (clip, _), z in zip(group, out):
        latents.setdefault(clip.key, z.detach().cpu())
