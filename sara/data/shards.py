"""WebDataset tar shards of a sara manifest (``sara data shard``) and their index ``shards.json``.

Layout of ``OUT``: ``shard-000000.tar``, ``shard-000001.tar``, ... and ``shards.json``.  Each clip is a group
of tar members sharing a key, its 9-digit position in the sharding (WebDataset keys may not hold a dot):

* ``<key>.<ext>`` -- the audio file's bytes as they are on disk (``wav``, ``flac``, ``ogg``, ...; never
  re-encoded, so a shard is exactly as lossy as its sources);
* ``<key>.json`` -- the clip's manifest record: ``id``, ``path``, ``caption``, ``captions``, ``class``,
  ``split``, ``duration`` (s), ``sample_rate`` (Hz), ``source`` and any other fields it had;
* ``<key>.latents.npy`` -- with a latent cache: the clip's latents, float16 ``[D, N]`` (N frames at 25 Hz).

``shards.json`` lists each shard's name, clip count and clips per split, the totals, the class names, the
latent width and a fingerprint of the plan (which clips, in which shard, from which files).  Clips go into
shards in manifest order, ``shard_size`` per shard.  Every shard is written to ``<name>.part``, flushed and
renamed, so a shard file that exists is complete; a rerun of the same command skips the finished shards
and writes the rest (a different plan in the same directory is refused).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sara.errors import ConfigError, SaraError
from sara.outputs import write_text_atomically

__all__ = ["INDEX_NAME", "ShardIndex", "ShardInfo", "ShardWriteResult", "clip_key", "parse_index", "read_index",
           "shard_name", "write_shards"]

INDEX_NAME = "shards.json"
FORMAT = "sara-shards"
VERSION = 1


def shard_name(index: int) -> str:
    """File name of shard ``index`` (``shard-000012.tar``)."""
    return f"shard-{index:06d}.tar"


def clip_key(record: dict[str, Any]) -> str:
    """The key a clip's latents are stored under: its manifest ``id``, else its ``path`` without suffix."""
    rid = record.get("id")
    if isinstance(rid, str) and rid:
        return rid
    return Path(str(record["path"])).with_suffix("").as_posix()


@dataclass(frozen=True)
class ShardInfo:
    """One shard in the index: file name, clips, and clips per split."""

    name: str
    count: int
    splits: dict[str, int]


@dataclass(frozen=True)
class ShardIndex:
    """The contents of ``shards.json``.

    Attributes:
        shards: the shards, in order.
        complete: False while ``sara data shard`` is still writing (readers refuse it).
        fingerprint: sha256 of the plan (clip ids, files and sizes, shard size, latent source).
        shard_size: clips per shard (the last may hold fewer).
        latent_dim: width ``D`` of the ``latents.npy`` members, None when the shards hold no latents.
        classes: the sorted ``class`` names of the clips (for supervised training).
    """

    shards: tuple[ShardInfo, ...]
    complete: bool = True
    fingerprint: str = ""
    shard_size: int = 0
    latent_dim: int | None = None
    classes: tuple[str, ...] = ()

    @property
    def num_items(self) -> int:
        """Clips in all shards."""
        return sum(s.count for s in self.shards)

    def split_counts(self) -> dict[str, int]:
        """Clips per split, over all shards."""
        total: Counter[str] = Counter()
        for s in self.shards:
            total.update(s.splits)
        return dict(sorted(total.items()))

    def to_json(self) -> str:
        """The ``shards.json`` text."""
        data = {"format": FORMAT, "version": VERSION, "complete": self.complete, "fingerprint": self.fingerprint,
                "shard_size": self.shard_size, "num_items": self.num_items, "splits": self.split_counts(),
                "latent_dim": self.latent_dim, "classes": list(self.classes),
                "shards": [{"name": s.name, "count": s.count, "splits": s.splits} for s in self.shards]}
        return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def read_index(path: str | os.PathLike[str]) -> ShardIndex:
    """Read a ``shards.json``.

    Raises:
        ConfigError: the file is missing.
        SaraError: it is unreadable, not JSON, not a sara shard index or malformed (one line).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such shard index") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SaraError(f"{p}: unreadable shard index ({type(exc).__name__}); rerun `sara data shard`") from None
    return parse_index(text, str(p))


def parse_index(text: str, where: str) -> ShardIndex:
    """Parse the text of a ``shards.json`` (``where`` names it in errors).

    Raises:
        SaraError: not JSON, not a sara shard index, or malformed (one line).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise SaraError(f"{where}: unreadable shard index (not JSON); rerun `sara data shard`") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SaraError(f"{where}: not a sara shard index (written by `sara data shard`)")
    try:
        shards = tuple(ShardInfo(str(s["name"]), int(s["count"]), {str(k): int(v) for k, v in s["splits"].items()})
                       for s in data["shards"])
        dim = data.get("latent_dim")
        return ShardIndex(shards, bool(data["complete"]), str(data.get("fingerprint", "")),
                          int(data.get("shard_size", 0)), None if dim is None else int(dim),
                          tuple(str(c) for c in data.get("classes", ())))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SaraError(f"{where}: malformed shard index ({type(exc).__name__}); rerun `sara data shard`") from None


# ------------------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class _Clip:
    """A manifest record ready to shard: its audio file and, with a latent cache, where its latents are."""

    record: dict[str, Any]
    audio: Path
    latent_ref: str | None = None


@dataclass
class ShardWriteResult:
    """What :func:`write_shards` did.

    Attributes:
        index: the index written.
        written: shards written by this run; ``skipped``: shards already finished by an earlier run.
        problems: clips left out (one line each: missing / unreadable audio, no latents).
        total: clips of the selected splits in the manifest.
    """

    index: ShardIndex
    written: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)
    total: int = 0


def write_shards(manifest: str | os.PathLike[str], out: str | os.PathLike[str], shard_size: int, *,
                 latent_cache: str | os.PathLike[str] | None = None, splits: tuple[str, ...] | None = None,
                 progress: Callable[[int], None] | None = None) -> ShardWriteResult:
    """Write the clips of ``manifest`` (those of ``splits``; all when None) as tar shards into ``out``.

    Args:
        manifest: sara manifest (jsonl; ``path`` relative to its directory).
        out: output directory (created).
        shard_size: clips per shard.
        latent_cache: a ``sara encode`` cache (per-file directory or sharded store); each clip's latents
            are added as ``latents.npy`` (float16), and clips without latents are left out.
        progress: called with the number of shards done (written or skipped) after each shard.

    Raises:
        ConfigError: bad arguments, or ``out`` holds shards of a different plan.
        SaraError: no clip of the selected splits can be sharded.
    """
    from sara.data.manifest import load_manifest

    if shard_size < 1:
        raise ConfigError(f"--shard-size must be >= 1, got {shard_size}")
    mpath = Path(manifest)
    records = [r for r in load_manifest(mpath, required_keys=("path",))
               if splits is None or r.get("split", "train") in splits]
    cache = None
    if latent_cache is not None:
        from sara.data.latent_store import open_latent_cache

        cache = open_latent_cache(latent_cache)
    result = ShardWriteResult(ShardIndex(()), total=len(records))
    clips = _usable_clips(records, mpath.parent, cache, result.problems)
    if not clips:
        raise SaraError(f"{mpath}: no clip of the selected split(s) can be sharded")
    plan = [clips[i:i + shard_size] for i in range(0, len(clips), shard_size)]
    fingerprint = _fingerprint(plan, shard_size, latent_cache)
    out_dir = _prepare_output(Path(out), fingerprint)
    index = _plan_index(plan, fingerprint, shard_size, cache)
    write_text_atomically(out_dir / INDEX_NAME, _replace_complete(index, False).to_json())
    for i, group in enumerate(plan):
        if (out_dir / shard_name(i)).is_file():
            result.skipped += 1
        else:
            _write_shard(out_dir / shard_name(i), group, i * shard_size, cache)
            result.written += 1
        if progress is not None:
            progress(i + 1)
    write_text_atomically(out_dir / INDEX_NAME, index.to_json())
    result.index = index
    return result


def _replace_complete(index: ShardIndex, complete: bool) -> ShardIndex:
    from dataclasses import replace

    return replace(index, complete=complete)


def _usable_clips(records: list[dict[str, Any]], root: Path, cache: Any, problems: list[str]) -> list[_Clip]:
    """The records whose audio has a readable header (and latents, with a cache); the others go to
    ``problems``."""
    import soundfile as sf

    clips = []
    for record in records:
        audio = root / record["path"]
        try:
            sf.info(str(audio))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            reason = "no such file" if not audio.exists() else (str(exc).strip().splitlines() or ["unreadable"])[0]
            problems.append(f"{record['path']}: {reason}")
            continue
        ref = None if cache is None else cache.locate(clip_key(record), Path(record["path"]), audio)
        if cache is not None and ref is None:
            problems.append(f"{record['path']}: no cached latents in {cache}")
            continue
        clips.append(_Clip(record, audio, ref))
    return clips


def _fingerprint(plan: list[list[_Clip]], shard_size: int, latent_cache: str | os.PathLike[str] | None) -> str:
    """sha256 over what decides the shards' contents: clips (id, path, size) per shard, shard size, cache."""
    h = hashlib.sha256(json.dumps([shard_size, None if latent_cache is None else str(Path(latent_cache).resolve())])
                       .encode())
    for group in plan:
        for clip in group:
            h.update(json.dumps([clip_key(clip.record), clip.record["path"], clip.audio.stat().st_size]).encode())
        h.update(b"|")
    return h.hexdigest()


def _prepare_output(out: Path, fingerprint: str) -> Path:
    """Create ``out``; refuse a directory holding the shards of another plan."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: not a directory")
    index = out / INDEX_NAME
    if index.is_file() and read_index(index).fingerprint != fingerprint:
        raise ConfigError(f"{out}: holds shards of other data (another manifest, split, shard size or latent "
                          "cache); write to a new directory")
    if not index.is_file() and any(out.glob("shard-*.tar")):
        raise ConfigError(f"{out}: holds shards without a {INDEX_NAME}; write to a new directory")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _plan_index(plan: list[list[_Clip]], fingerprint: str, shard_size: int, cache: Any) -> ShardIndex:
    """The index the finished shards will have."""
    shards = tuple(ShardInfo(shard_name(i), len(group),
                             dict(sorted(Counter(str(c.record.get("split", "train")) for c in group).items())))
                   for i, group in enumerate(plan))
    classes = sorted({str(c.record["class"]) for g in plan for c in g if isinstance(c.record.get("class"), str)})
    dim = None if cache is None else int(cache.read(plan[0][0].latent_ref).shape[0])
    return ShardIndex(shards, True, fingerprint, shard_size, dim, tuple(classes))


def _write_shard(path: Path, clips: list[_Clip], first_key: int, cache: Any) -> None:
    """Write one shard to ``<path>.part``, flush it to disk and rename it into place."""
    from webdataset import TarWriter

    part = path.with_name(path.name + ".part")
    with open(part, "wb") as f:
        with TarWriter(f, mtime=0.0) as tar:  # fixed mtime: the same inputs give the same bytes
            for offset, clip in enumerate(clips):
                tar.write(_sample(clip, f"{first_key + offset:09d}", cache))
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)


def _sample(clip: _Clip, key: str, cache: Any) -> dict[str, Any]:
    """The tar members of one clip (bytes values, so TarWriter stores them as they are)."""
    ext = clip.audio.suffix.lower().lstrip(".") or "audio"
    sample: dict[str, Any] = {"__key__": key, ext: clip.audio.read_bytes(),
                              "json": json.dumps(clip.record, ensure_ascii=False).encode("utf-8")}
    if cache is not None:
        buf = io.BytesIO()
        np.save(buf, cache.read(clip.latent_ref).half().numpy(), allow_pickle=False)
        sample["latents.npy"] = buf.getvalue()
    return sample

