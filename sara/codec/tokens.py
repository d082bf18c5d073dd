"""Token cache: the codec's codes for every clip of a manifest, for training the AudioGen LM.

Layout of ``out_dir`` (the format :class:`sara.audiogen.training.TokenCaptionDataset` reads)::

    out_dir/codec.json                   {"format_version": 1, "sample_rate", "frame_rate", "hop_length",
                                          "num_codebooks", "cardinality", "fingerprint", "config"}
    out_dir/<path>.safetensors           per manifest record with "path" <path> (e.g. audio/x/y.wav ->
                                         audio/x/y.safetensors): tensor "codes" [K, F] int16 (F = ceil(T / hop)
                                         at the codec rate), metadata {"path", "num_samples", "sample_rate"}
    out_dir/failures.json                clips that could not be read (path -> reason), when there are any

Keys are the exact relative audio paths of the manifest (two records whose paths differ only in the suffix
are refused).  Every file is written to a temporary name and renamed, so an interrupted run leaves only
complete files; re-running skips clips already encoded by the same codec (same weights fingerprint) and
refuses a cache written by another codec.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from sara.audio.io import load_audio
from sara.errors import AudioError, ConfigError

__all__ = ["CACHE_FORMAT_VERSION", "codec_fingerprint", "encode_manifest_to_tokens", "load_tokens", "token_path"]

CACHE_FORMAT_VERSION = 1


def codec_fingerprint(codec: Any) -> str:
    """SHA-256 over the codec's state dict (names, shapes, dtypes and bytes), first 16 hex digits."""
    h = hashlib.sha256()
    for name, tensor in sorted(codec.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def token_path(out_dir: str | os.PathLike[str], rel_path: str) -> Path:
    """``out_dir/<rel_path with the suffix replaced by .safetensors>``."""
    return Path(out_dir) / Path(rel_path).with_suffix(".safetensors")


def load_tokens(out_dir: str | os.PathLike[str], rel_path: str) -> Tensor:
    """Cached codes ``[K, F]`` long of the clip whose manifest ``path`` is ``rel_path``.

    Raises:
        ConfigError: no cached tokens for that path.
    """
    path = token_path(out_dir, rel_path)
    if not path.is_file():
        raise ConfigError(f"{path}: no cached tokens for {rel_path!r}")
    return load_file(str(path))["codes"].long()


def _codec_record(codec: Any) -> dict[str, Any]:
    from sara.serialization import config_to_dict

    return {"format_version": CACHE_FORMAT_VERSION, "sample_rate": codec.sample_rate,
            "frame_rate": codec.frame_rate, "hop_length": codec.hop_length, "num_codebooks": codec.num_codebooks,
            "cardinality": codec.cardinality, "fingerprint": codec_fingerprint(codec),
            "config": config_to_dict(codec.config)}


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _prepare_cache(out: Path, codec: Any) -> None:
    """Create ``out`` with ``codec.json``, or check that an existing cache was written by this codec."""
    out.mkdir(parents=True, exist_ok=True)
    record = _codec_record(codec)
    existing = out / "codec.json"
    if existing.is_file():
        old = json.loads(existing.read_text())
        if old.get("fingerprint") != record["fingerprint"]:
            raise ConfigError(f"{out}: holds tokens of another codec (fingerprint {old.get('fingerprint')} != "
                              f"{record['fingerprint']}); use another directory or overwrite=True")
    _atomic_write_text(existing, json.dumps(record, indent=2) + "\n")


def _records(manifest: Path, split: str | None) -> list[str]:
    """Relative audio paths of the manifest (of ``split`` when given), checked for cache-name collisions."""
    from sara.data.manifest import load_manifest

    paths, seen = [], {}
    for item in load_manifest(manifest):
        if not isinstance(item.get("path"), str) or (split is not None and item.get("split", "train") != split):
            continue
        key = str(Path(item["path"]).with_suffix(""))
        if key in seen and seen[key] != item["path"]:
            raise ConfigError(f"{manifest}: {item['path']!r} and {seen[key]!r} would share a token file")
        seen[key] = item["path"]
        paths.append(item["path"])
    return paths


@torch.no_grad()
def _encode_clip(codec: Any, audio_path: Path, rel: str, target: Path) -> None:
    wav, _ = load_audio(audio_path, sample_rate=codec.sample_rate, mono=True)
    codes = codec.encode(wav.unsqueeze(0))[0].to(torch.int16 if codec.cardinality <= 32767 else torch.int32)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=target.parent)
    os.close(fd)
    meta = {"path": rel, "num_samples": str(wav.shape[-1]), "sample_rate": str(codec.sample_rate)}
    save_file({"codes": codes.cpu().contiguous()}, tmp, metadata=meta)
    os.replace(tmp, target)


def encode_manifest_to_tokens(codec: Any, manifest: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                              split: str | None = None, overwrite: bool = False,
                              progress: bool = False) -> dict[str, Any]:
    """Encode every clip of ``manifest`` (paths relative to it) into the token cache ``out_dir``.

    Args:
        codec: an :class:`~sara.codec.model.EncodecCodec` (its device is used).
        manifest: corpus ``manifest.jsonl``.
        out_dir: cache directory (see the module docstring for the layout).
        split: only records of this split (None = all).
        overwrite: re-encode existing files and accept a cache of another codec.
        progress: show a progress bar.

    Returns:
        ``{"written": int, "skipped": int, "failed": {path: reason}}``.
    """
    from tqdm.auto import tqdm

    manifest, out = Path(manifest), Path(out_dir)
    if not manifest.is_file():
        raise ConfigError(f"{manifest}: no such manifest")
    if overwrite and (out / "codec.json").is_file():
        (out / "codec.json").unlink()
    _prepare_cache(out, codec)
    codec.eval()
    summary: dict[str, Any] = {"written": 0, "skipped": 0, "failed": {}}
    for rel in tqdm(_records(manifest, split), desc="encode tokens", disable=not progress):
        target = token_path(out, rel)
        if target.is_file() and not overwrite:
            summary["skipped"] += 1
            continue
        try:
            _encode_clip(codec, manifest.parent / rel, rel, target)
            summary["written"] += 1
        except AudioError as exc:
            summary["failed"][rel] = str(exc)
    if summary["failed"]:
        _atomic_write_text(out / "failures.json", json.dumps(summary["failed"], indent=2) + "\n")
    return summary
