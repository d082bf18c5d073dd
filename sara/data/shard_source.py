"""Finding and reading WebDataset shards: ``--shards SPEC`` -> shard URLs (with clip counts) -> samples.

``SPEC`` is one of

* a directory written by ``sara data shard`` (its ``shards.json`` lists the shards and their clip counts per
  split), or a directory of ``*.tar`` files without an index;
* a ``shards.json`` path or URL (its shards are read from beside it);
* a brace pattern or URL list that ``webdataset`` opens: ``dir/shard-{000000..000009}.tar``,
  ``https://host/data/shard-{000000..000099}.tar``, ``pipe:aws s3 cp s3://b/shard-000000.tar -`` (several
  specs may be joined with ``::``).  Local patterns use the ``shards.json`` beside them when there is one.

Streams need each shard's clip count per split to split the data evenly across processes and workers;
shards without an index are counted once when the stream is set up (one pass over their ``json`` members).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sara.audio.io import AUDIO_EXTENSIONS
from sara.data.shards import INDEX_NAME, ShardIndex, parse_index, read_index
from sara.errors import AudioError, ConfigError, SaraError

__all__ = ["ShardRef", "ShardSample", "count_splits", "iter_samples", "load_sample_audio", "resolve_shards",
           "shards_latent_dim"]

_AUDIO_EXTS = tuple(e.lstrip(".") for e in AUDIO_EXTENSIONS)


@dataclass(frozen=True)
class ShardRef:
    """One shard: what webdataset opens, and its clip counts per split (None until counted)."""

    url: str
    splits: dict[str, int] | None = None

    def count(self, split: str | None) -> int | None:
        """Clips of ``split`` (all when None) in the shard; None when unknown."""
        if self.splits is None:
            return None
        return sum(self.splits.values()) if split is None else self.splits.get(split, 0)


@dataclass(frozen=True)
class ShardSample:
    """One clip read from a shard.

    Attributes:
        key: the tar member key (``000000012``).
        meta: its ``json`` member: the manifest record (``id``, ``captions``, ``split``, ``class``, ...).
        audio: the audio file's bytes (None when the shard holds none); ``audio_ext`` its extension.
        latents: the ``latents.npy`` member, float16 ``[D, N]``, or None.
        where: ``<shard url>:<key>`` for messages.
    """

    key: str
    meta: dict[str, Any]
    audio: bytes | None
    audio_ext: str | None
    latents: np.ndarray | None
    where: str

    @property
    def clip_key(self) -> str:
        """The clip's key in a latent store (:func:`sara.data.shards.clip_key`)."""
        from sara.data.shards import clip_key

        return clip_key(self.meta) if "path" in self.meta or "id" in self.meta else self.key

    @property
    def split(self) -> str:
        """The clip's split (``train`` when the record has none)."""
        return str(self.meta.get("split", "train"))


def resolve_shards(spec: str) -> tuple[list[ShardRef], ShardIndex | None]:
    """The shards a ``--shards`` spec names, in order, and the index they came from (None without one).

    Raises:
        ConfigError: nothing matches, a local shard is missing, or the index is unfinished.
        SaraError: the index is corrupt.
    """
    if not spec.strip():
        raise ConfigError("--shards: empty shard spec")
    local = Path(spec)
    if local.is_dir():
        return _from_dir(local)
    if spec.endswith(INDEX_NAME):
        return _from_index(spec)
    return _from_pattern(spec)


def _checked(index: ShardIndex, where: str) -> ShardIndex:
    if not index.complete:
        raise ConfigError(f"{where}: the shards are still being written (or the writer was interrupted); "
                          "rerun `sara data shard` to finish them")
    if not index.shards:
        raise ConfigError(f"{where}: the index lists no shards")
    return index


def _from_dir(root: Path) -> tuple[list[ShardRef], ShardIndex | None]:
    """A shard directory: its index when it has one, else its ``*.tar`` files (counts unknown)."""
    if (root / INDEX_NAME).is_file():
        index = _checked(read_index(root / INDEX_NAME), str(root / INDEX_NAME))
        refs = [ShardRef(str(root / s.name), s.splits) for s in index.shards]
        missing = next((r.url for r in refs if not Path(r.url).is_file()), None)
        if missing is not None:
            raise ConfigError(f"{missing}: listed in {root / INDEX_NAME} but missing")
        return refs, index
    tars = sorted(str(p) for p in root.glob("*.tar"))
    if not tars:
        raise ConfigError(f"{root}: no shards (*.tar) in this directory")
    return [ShardRef(t) for t in tars], None


def _from_index(url: str) -> tuple[list[ShardRef], ShardIndex | None]:
    """A ``shards.json`` path or URL; its shards sit beside it."""
    if Path(url).is_file():
        return _from_dir(Path(url).parent)
    index = _checked(_read_remote_index(url), url)
    base = url[: -len(INDEX_NAME)]
    return [ShardRef(base + s.name, s.splits) for s in index.shards], index


def _read_remote_index(url: str) -> ShardIndex:
    """Read a ``shards.json`` through webdataset's ``gopen`` (http(s), pipe:, ...)."""
    from webdataset.gopen import gopen

    try:
        with gopen(url, "rb") as f:
            text = f.read().decode("utf-8")
    except Exception as exc:  # noqa: BLE001 - gopen raises per scheme
        raise ConfigError(f"{url}: cannot open the shard index ({type(exc).__name__})") from None
    return parse_index(text, url)


def _from_pattern(spec: str) -> tuple[list[ShardRef], ShardIndex | None]:
    """Brace-expanded URLs; local ones must exist and take their counts from a ``shards.json`` beside them."""
    from braceexpand import braceexpand

    urls = [u for part in spec.split("::") for u in braceexpand(part)]
    local = [u for u in urls if ":" not in u.split("/")[0]]  # no scheme (pipe:, https:, ...)
    missing = next((u for u in local if not Path(u).is_file()), None)
    if missing is not None:
        raise ConfigError(f"--shards {spec}: {missing}: no such shard")
    parents = {str(Path(u).parent) for u in urls}
    if len(local) == len(urls) and len(parents) == 1 and (Path(parents.pop()) / INDEX_NAME).is_file():
        root = Path(urls[0]).parent
        index = _checked(read_index(root / INDEX_NAME), str(root / INDEX_NAME))
        counts = {s.name: s.splits for s in index.shards}
        return [ShardRef(u, counts.get(Path(u).name)) for u in urls], index
    return [ShardRef(u) for u in urls], None


def iter_samples(url: str) -> Iterator[ShardSample]:
    """The clips of one shard, in stored order.

    Raises:
        SaraError: the shard cannot be opened or read, or a clip has no ``json`` member.
    """
    from webdataset.tariterators import tarfile_samples

    try:
        for raw in tarfile_samples([{"url": url}]):
            yield _sample(raw, url)
    except SaraError:
        raise
    except Exception as exc:  # noqa: BLE001 - tarfile / gopen / webdataset raise many types
        msg = (str(exc.args[0]) if exc.args else type(exc).__name__).strip().splitlines() or [type(exc).__name__]
        raise SaraError(f"{url}: cannot read shard ({type(exc).__name__}: {msg[0]})") from None


def _sample(raw: dict[str, Any], url: str) -> ShardSample:
    """A webdataset sample dict -> :class:`ShardSample`."""
    key = str(raw["__key__"])
    where = f"{url}:{key}"
    if "json" not in raw:
        raise SaraError(f"{where}: no json member (not a `sara data shard` clip)")
    try:
        meta = json.loads(raw["json"])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SaraError(f"{where}.json: not JSON") from None
    ext = next((e for e in _AUDIO_EXTS if e in raw), None)
    latents = None
    if "latents.npy" in raw:
        try:
            latents = np.load(io.BytesIO(raw["latents.npy"]), allow_pickle=False)
        except (ValueError, OSError):
            raise AudioError(f"{where}.latents.npy: not a numpy array") from None
    return ShardSample(key, meta if isinstance(meta, dict) else {}, raw.get(ext) if ext else None, ext, latents, where)


def count_splits(url: str) -> dict[str, int]:
    """Clips per split in one shard (a pass over its members)."""
    return dict(Counter(s.split for s in iter_samples(url)))


def load_sample_audio(sample: ShardSample, *, sample_rate: int | None = None, mono: bool = False) -> tuple[Any, int]:
    """Decode a shard clip's audio like :func:`sara.audio.io.load_audio` decodes a file.

    Returns:
        ``(waveform [C, T] float32, sample_rate)`` (resampled to ``sample_rate`` when given).

    Raises:
        AudioError: no audio member, or it cannot be decoded, is empty or non-finite.
    """
    import soundfile as sf
    import torch

    from sara.audio.io import check_waveform, prepare_waveform

    if sample.audio is None:
        raise AudioError(f"{sample.where}: no audio member in the shard")
    try:
        data, sr = sf.read(io.BytesIO(sample.audio), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(f"{sample.where}: cannot read audio ({str(exc).strip() or type(exc).__name__})") from None
    wav = torch.from_numpy(np.ascontiguousarray(data.T))
    check_waveform(wav, sr, name=sample.where)
    return prepare_waveform(wav, sr, sample_rate, mono=mono), (sample_rate or sr)


def shards_latent_dim(spec: str) -> int | None:
    """Latent channels recorded in the index of the shards ``spec`` names (None: no index or no latents)."""
    _, index = resolve_shards(spec)
    return None if index is None else index.latent_dim
