"""Latent caches with random access by clip: the per-file layout and the sharded store.

**Per-file** (``sara encode INPUT... -o DIR``, the simple option): ``DIR/<relative path>.safetensors``, one
file per clip holding tensor ``latents [D, N]`` (float32), found by the clip's relative path
(:func:`sara.encoder.cache.find_cached_latents`).  Millions of small files strain file systems, hence:

**Sharded store** (``sara encode --manifest M`` / ``--shards SPEC`` / ``--shard-size N``)::

    DIR/plan.json                    what is being encoded (fingerprint, shard count); written first
    DIR/latents-000000.safetensors   one float16 tensor [D, N] per clip, named by its clip key
    DIR/latents-000001.safetensors   (metadata: fingerprint, failed keys, frame_rate, sample_rate)
    DIR/index.json                   {"format": "sara-latent-store", "latent_dim": D, "shards": [...],
                                      "entries": {key: [shard number, frames]}}

A clip key is the manifest ``id`` (else the path without suffix; :func:`sara.data.shards.clip_key`).  Each
shard is an ordinary safetensors file, opened once per process with ``safe_open`` (memory-mapped): reading
a clip, or a frame range of it, reads that tensor alone, never the whole shard.  :func:`open_latent_cache`
tells the layouts apart by the index file; both offer ``locate(key, relative, audio) -> ref | None`` and
``read(ref, start, length) -> [D, n]``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sara.errors import AudioError, ConfigError, SaraError
from sara.outputs import write_text_atomically

__all__ = ["INDEX_NAME", "PLAN_NAME", "FileLatentCache", "LatentStore", "build_index", "is_latent_store",
           "open_latent_cache", "read_shard_metadata", "store_shard_name", "write_store_shard"]

INDEX_NAME = "index.json"
PLAN_NAME = "plan.json"
FORMAT = "sara-latent-store"
VERSION = 1


def store_shard_name(index: int) -> str:
    """File name of store shard ``index`` (``latents-000012.safetensors``)."""
    return f"latents-{index:06d}.safetensors"


def is_latent_store(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a sharded store (a directory with ``index.json``)."""
    return (Path(path) / INDEX_NAME).is_file()


def open_latent_cache(path: str | os.PathLike[str]) -> FileLatentCache | LatentStore:
    """The cache at ``path``: a :class:`LatentStore` when it has ``index.json``, else a per-file cache.

    Raises:
        ConfigError: ``path`` is not a directory.
        SaraError: the store's index is corrupt.
    """
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"{p}: no such latent cache directory")
    return LatentStore(p) if is_latent_store(p) else FileLatentCache(p)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class FileLatentCache:
    """The per-file cache of ``sara encode -o DIR``: ``<relative path>.safetensors`` with ``latents [D, N]``.

    Args:
        root: the cache directory.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __str__(self) -> str:
        return str(self.root)

    def locate(self, key: str, relative: Path, audio: Path | None = None) -> str | None:
        """The file holding the clip's latents (by its relative path; ``key`` is unused), or None."""
        from sara.encoder.cache import find_cached_latents

        path = find_cached_latents(self.root, relative, audio)
        return None if path is None else str(path)

    def read(self, ref: str, start: int = 0, length: int | None = None) -> Tensor:
        """Frames ``start .. start + length`` (all when None) of the file ``ref``: ``[D, n]`` as stored.

        Raises:
            AudioError: the file cannot be read or has no ``latents`` tensor.
        """
        from safetensors import safe_open

        try:
            with safe_open(ref, framework="pt") as f:
                sl = f.get_slice("latents")
                return sl[:, start:] if length is None else sl[:, start:start + length]
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types
            raise AudioError(f"{ref}: cannot read cached latents ({_first_line(exc)})") from None

    @property
    def latent_dim(self) -> int | None:
        """``D`` of the first file (None for an empty cache)."""
        first = next(iter(sorted(self.root.rglob("*.safetensors"))), None)
        return None if first is None else int(self.read(str(first), 0, 1).shape[0])


class LatentStore:
    """Random access to a sharded store by clip key (see the module docstring).

    Args:
        root: the store directory (with ``index.json``).

    Raises:
        SaraError: the index is unreadable or malformed, or names a shard that is missing (one line).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        index = _read_index(self.root / INDEX_NAME)
        self.latent_dim: int = index["latent_dim"]
        self.frame_rate: float | None = index.get("frame_rate")
        self.shards: list[str] = index["shards"]
        self._entries: dict[str, tuple[int, int]] = index["entries"]
        self._handles: dict[int, Any] = {}
        self._pid = os.getpid()

    def __str__(self) -> str:
        return str(self.root)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def keys(self) -> list[str]:
        """The clip keys, in index order."""
        return list(self._entries)

    def frames(self, key: str) -> int:
        """Latent frames ``N`` of clip ``key``."""
        return self._entries[key][1]

    def locate(self, key: str, relative: Path | None = None, audio: Path | None = None) -> str | None:
        """``key`` if the store holds it, else None (the store is keyed by clip key, not by path)."""
        return key if key in self._entries else None

    def read(self, key: str, start: int = 0, length: int | None = None) -> Tensor:
        """Frames ``start .. start + length`` (all when None) of clip ``key``: float16 ``[D, n]``.

        Raises:
            AudioError: the key is not in the store, or its shard cannot be read.
        """
        if key not in self._entries:
            raise AudioError(f"{key}: no latents in the store {self.root}; run `sara encode` on it")
        shard, frames = self._entries[key]
        end = frames if length is None else min(frames, start + length)
        try:
            return self._handle(shard).get_slice(key)[:, start:end]
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types
            raise AudioError(f"{self.root / self.shards[shard]}: cannot read the latents of {key} "
                             f"({_first_line(exc)})") from None

    def _handle(self, shard: int) -> Any:
        """The shard's open ``safe_open`` handle (opened on first use in this process)."""
        from safetensors import safe_open

        if self._pid != os.getpid():  # a forked DataLoader worker opens its own handles
            self._handles, self._pid = {}, os.getpid()
        if shard not in self._handles:
            self._handles[shard] = safe_open(str(self.root / self.shards[shard]), framework="pt")
        return self._handles[shard]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the open handles (DataLoader workers started with spawn reopen them)."""
        return {**self.__dict__, "_handles": {}}


def _read_index(path: Path) -> dict[str, Any]:
    """The parsed, checked ``index.json`` (entries as ``{key: (shard, frames)}``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SaraError(f"{path}: unreadable latent store index ({type(exc).__name__}); rerun `sara encode` "
                        "to rebuild it") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SaraError(f"{path}: not a sara latent store index")
    try:
        shards = [str(s) for s in data["shards"]]
        entries = {str(k): (int(v[0]), int(v[1])) for k, v in data["entries"].items()}
        dim = int(data["latent_dim"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise SaraError(f"{path}: malformed latent store index ({type(exc).__name__}); rerun `sara encode` "
                        "to rebuild it") from None
    bad = next((k for k, (s, n) in entries.items() if not 0 <= s < len(shards) or n < 0), None)
    if bad is not None:
        raise SaraError(f"{path}: malformed latent store index (entry {bad!r}); rerun `sara encode` to rebuild it")
    missing = next((s for s in shards if not (path.parent / s).is_file()), None)
    if missing is not None:
        raise SaraError(f"{path.parent / missing}: listed in the index but missing; rerun `sara encode`")
    return {**data, "shards": shards, "entries": entries, "latent_dim": dim}


# ------------------------------------------------------------------------------------------- writing


def write_store_shard(path: Path, latents: dict[str, Tensor], metadata: dict[str, str]) -> None:
    """Write one store shard: ``latents`` ``{key: [D, N]}`` as float16, to ``<path>.part``, then rename.

    Raises:
        OutputError: the write failed (the ``.part`` file is removed).
    """
    from safetensors.torch import save

    from sara.errors import OutputError

    data = save({k: v.detach().to(torch.float16).cpu().contiguous() for k, v in latents.items()},
                metadata=metadata)
    part = path.with_name(path.name + ".part")
    try:
        with open(part, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def read_shard_metadata(path: Path) -> dict[str, str] | None:
    """A store shard's metadata, or None when the file is missing or unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception:  # noqa: BLE001 - a damaged shard simply counts as not done
        return None


def build_index(root: Path, num_shards: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``root/index.json`` from the headers of shards ``0 .. num_shards - 1`` and return it.

    A key found in two shards (a clip listed twice in the inputs) keeps its first shard.

    Raises:
        SaraError: a shard is missing or unreadable, or no shard holds any latents.
    """
    from safetensors import safe_open

    entries: dict[str, list[int]] = {}
    dim = None
    for i in range(num_shards):
        path = root / store_shard_name(i)
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    shape = f.get_slice(key).get_shape()
                    dim = int(shape[0]) if dim is None else dim
                    entries.setdefault(key, [i, int(shape[1])])
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types
            raise SaraError(f"{path}: cannot read the shard ({_first_line(exc)}); rerun `sara encode`") from None
    if dim is None:
        raise SaraError(f"{root}: no clip could be encoded; nothing to index")
    index = {"format": FORMAT, "version": VERSION, **(extra or {}), "latent_dim": dim,
             "shards": [store_shard_name(i) for i in range(num_shards)], "entries": entries}
    write_text_atomically(root / INDEX_NAME, json.dumps(index, ensure_ascii=False, separators=(",", ":")) + "\n")
    return index
