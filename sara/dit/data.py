"""Training data for the text-to-latent DiT: cached latents (``sara encode``) paired with captions.

A corpus manifest (jsonl; ``path`` relative to the manifest, ``captions`` list, ``caption``, ``split``) names
the clips; the latent cache holds one ``.safetensors`` per clip (tensor ``latents [D, N]``), found by the clip's exact
relative path (:func:`sara.encoder.cache.find_cached_latents`), never by its file name alone -- or it is a sharded
store (``sara encode --manifest``), where a clip is found by its key (the manifest ``id``).  Items are fixed-length
crops (random start for training) padded with zeros and a frame mask.  :class:`LatentCaptionDecoder` makes the
same items from the clips of WebDataset shards (``--shards``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from sara.data.balance import class_weights
from sara.errors import AudioError, ConfigError

__all__ = ["LatentCaptionDataset", "LatentCaptionDecoder", "class_weights", "collate_latent_captions",
           "latent_caption_streams"]


@dataclass(frozen=True)
class _Clip:
    latent_ref: str
    captions: tuple[str, ...]
    label: str | None = None


class LatentCaptionDataset(Dataset):
    """``{"latents": [D, F], "mask": [F] bool, "caption": str}`` items.

    Args:
        manifest: corpus manifest (jsonl).
        latent_dir: latent cache written by ``sara encode`` (per-file directory or sharded store).
        split: manifest split to use ("train", "valid", ...).
        num_frames: crop/pad length F in latent frames (25 per second).
        train: random crops and random caption choice; otherwise the first frames and the first caption.
        class_balance: exponent ``a`` of class re-balancing (0 = off): ``sample_weights`` become
            ``n ** -a`` for a clip whose class (the manifest's ``class`` field) has ``n`` clips; the training
            loop then draws each epoch's items with replacement by these weights.

    Attributes:
        sample_weights: ``[len(self)]`` float64 weights for the training loop's sampler, or None (uniform).
    """

    def __init__(self, manifest: str | Path, latent_dir: str | Path, split: str, num_frames: int,
                 train: bool = True, class_balance: float = 0.0) -> None:
        from sara.data.latent_store import open_latent_cache
        from sara.data.manifest import load_manifest, report_skipped

        self.num_frames = int(num_frames)
        self.train = train
        records = [r for r in load_manifest(manifest, required_keys=("path",)) if r.get("split", "train") == split]
        if not Path(latent_dir).is_dir():
            raise ConfigError(f"{latent_dir}: no such latent cache directory")
        self.cache = open_latent_cache(latent_dir)
        problems: list[str] = []
        self.clips = [c for c in (_clip(r, Path(manifest).parent, self.cache, problems) for r in records)
                      if c is not None]
        self.num_missing = len(records) - len(self.clips)
        report_skipped(f"{split!r} clips of {manifest}", problems, len(records))
        if records and not self.clips:
            raise ConfigError(f"{latent_dir}: no cached latents for the {split!r} clips of {manifest} "
                              f"(run `sara encode` on the corpus first)")
        self.sample_weights = class_weights([c.label for c in self.clips], class_balance)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        clip = self.clips[i]
        latents = self.cache.read(clip.latent_ref).float()
        return _item(latents, clip.captions, self.num_frames, self.train)


def _item(latents: Tensor, captions: tuple[str, ...], frames: int, train: bool) -> dict:
    """``{"latents": [D, frames], "mask": [frames], "caption": str}`` (random crop and caption when ``train``)."""
    crop, mask = _crop_or_pad(latents, frames, train)
    caption = random.choice(captions) if train else captions[0]
    return {"latents": crop, "mask": mask, "caption": caption}


def _captions(record: dict) -> tuple[str, ...]:
    """The non-empty captions of a manifest record (``captions``, else ``caption``)."""
    return tuple(c for c in record.get("captions") or [record.get("caption")] if isinstance(c, str) and c.strip())


class LatentCaptionDecoder:
    """The items of :class:`LatentCaptionDataset` from clips of WebDataset shards (a ``ShardStream`` decoder).

    Args:
        num_frames: crop/pad length F in latent frames.
        train: random crops and caption choice; otherwise the first frames and caption.
        latents: ``"shards"`` (the shards' ``latents.npy`` members) or a latent cache path (looked up by the
            clip's key; per-file caches by its manifest path).
    """

    def __init__(self, num_frames: int, *, train: bool = True, latents: str = "shards") -> None:
        self.num_frames, self.train, self.latents = int(num_frames), train, latents
        self._cache: Any = None

    def __call__(self, sample: Any, position: int) -> dict:
        """The item of one :class:`~sara.data.shard_source.ShardSample`."""
        captions = _captions(sample.meta)
        if not captions:
            raise AudioError(f"{sample.where}: the clip has no caption")
        return _item(self._latents_of(sample).float(), captions, self.num_frames, self.train)

    def _latents_of(self, sample: Any) -> Tensor:
        """The clip's latents ``[D, N]``, from the shard or the cache."""
        if self.latents == "shards":
            if sample.latents is None:
                raise AudioError(f"{sample.where}: no latents.npy member (shard with `sara data shard "
                                 "--latent-cache`, or give --latent-cache)")
            return torch.from_numpy(sample.latents.copy())
        if self._cache is None:
            from sara.data.latent_store import open_latent_cache

            self._cache = open_latent_cache(self.latents)
        ref = self._cache.locate(sample.clip_key, Path(str(sample.meta.get("path", sample.clip_key))))
        if ref is None:
            raise AudioError(f"{sample.where}: no cached latents for {sample.clip_key} in {self._cache}")
        return self._cache.read(ref)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": None}  # reopened in each worker


def _clip(record: dict, root: Path, cache: Any, problems: list[str]) -> _Clip | None:
    """The clip of a manifest record, or None (with a line in ``problems``) when it has no caption or no
    cached latents (per-file: by its exact relative path, see :func:`sara.encoder.cache.find_cached_latents`;
    sharded store: by its key)."""
    from sara.data.shards import clip_key

    captions = _captions(record)
    if not captions:
        problems.append(f"{record['path']}: no caption")
        return None
    ref = cache.locate(clip_key(record), Path(record["path"]), root / record["path"])
    if ref is None:
        problems.append(f"{record['path']}: no cached latents in {cache}")
        return None
    label = record.get("class") if isinstance(record.get("class"), str) else None
    return _Clip(ref, captions, label)


def _crop_or_pad(latents: Tensor, frames: int, random_start: bool) -> tuple[Tensor, Tensor]:
    """``[D, N] -> ([D, frames], mask [frames])``: a crop when ``N > frames``, else zero padding."""
    n = latents.shape[-1]
    if n >= frames:
        start = random.randint(0, n - frames) if random_start else 0
        return latents[:, start:start + frames].clone(), torch.ones(frames, dtype=torch.bool)
    out = latents.new_zeros(latents.shape[0], frames)
    out[:, :n] = latents
    mask = torch.zeros(frames, dtype=torch.bool)
    mask[:n] = True
    return out, mask


def collate_latent_captions(items: list[dict]) -> dict:
    """Stack items: ``latents [B, D, F]``, ``mask [B, F]``, ``captions`` list of B strings."""
    return {"latents": torch.stack([it["latents"] for it in items]),
            "mask": torch.stack([it["mask"] for it in items]),
            "captions": [it["caption"] for it in items]}


def latent_caption_streams(shards: str, latent_dir: str | None, num_frames: int, train_split: str,
                           valid_split: str | None, *, shuffle_buffer: int = 512) -> tuple[Any, Any]:
    """``(train stream, valid stream or None)`` of :class:`LatentCaptionDecoder` items from ``shards``.

    Latents come from ``latent_dir`` (either cache layout) when given, else from the shards themselves.
    The valid stream exists when the shard index lists clips of ``valid_split``.

    Raises:
        ConfigError: no latents anywhere, or no clips of ``train_split``.
    """
    from sara.data.stream import ShardStream, has_split

    train = ShardStream(shards, LatentCaptionDecoder(num_frames, train=True, latents=latent_dir or "shards"),
                        split=train_split, shuffle_buffer=shuffle_buffer)
    if latent_dir is None and train.index is not None and train.index.latent_dim is None:
        raise ConfigError(f"--shards {shards}: the shards hold no latents; give --latent-cache or shard with "
                          "`sara data shard --latent-cache`")
    if train.num_items == 0:
        raise ConfigError(f"--shards {shards}: no {train_split!r} clips in the shards")
    if valid_split is None or not has_split(train, valid_split):
        return train, None
    decoder = LatentCaptionDecoder(num_frames, train=False, latents=latent_dir or "shards")
    return train, ShardStream(shards, decoder, split=valid_split, train=False)
