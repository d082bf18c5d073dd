"""The VAE-latent cache the LDM trains on: each clip's posterior, encoded once, keyed by its audio path.

Layout (all files written atomically: a temp file renamed into place)::

    <cache>/cache.json                       settings + index (written last)
    <cache>/clips/<path>.safetensors         "mean", "std" [C, H, W]: one clip, <path> = the manifest's exact
                                             relative audio path with its extension (``audio/x.wav`` ->
                                             ``clips/audio/x.wav.safetensors``), never a stem, so ``x.wav`` and
                                             ``x.flac`` or two ``x.wav`` in different folders cannot collide
    <cache>/mixtures/<k>.safetensors         the same for mixture ``k`` of Tango's caption-mixing augmentation

Each clip goes through Tango's ``wav_to_fbank`` (:func:`sara.mel.frontend.tango_log_mel` with ``frames``) and
``MelVAE.encode``; the cache keeps the posterior (``mean`` and ``std``, both multiplied by the VAE's
``scale_factor``), so training can draw a fresh ``scale_factor * posterior.sample()`` every step, as Tango's
``get_first_stage_encoding(encode_first_stage(mel))`` does.

Mixtures: Tango mixes random pairs inside each training batch (one mixture per two clips).  A latent cache
cannot mix latents, so the mixtures are made here, at the waveform level, before the VAE: ``num_mixtures``
pairs of distinct training clips drawn from ``seed`` (with one caption of each), mixed by
:func:`sara.ldm.mixing.mix_by_level`, captioned "A and b", encoded like a clip.  They are a fixed pool of extra
training items instead of fresh pairs per batch.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from sara.errors import ConfigError

__all__ = ["CACHE_FORMAT", "CachedItem", "LatentCache", "build_latent_cache", "clip_file"]

CACHE_FORMAT = "sara-ldm-latents"
CACHE_VERSION = 1
INDEX_NAME = "cache.json"


@dataclass(frozen=True)
class CachedItem:
    """One cache entry.

    Attributes:
        file: the ``.safetensors`` file, relative to the cache root.
        captions: captions (a mixture has exactly one, "A and b").
        split: manifest split ("train", "valid", ...).
        paths: the relative audio path(s): one for a clip, two for a mixture.
    """

    file: str
    captions: tuple[str, ...]
    split: str
    paths: tuple[str, ...]


def clip_file(rel_path: str) -> str:
    """Cache file of the clip at manifest path ``rel_path`` (relative to the cache root)."""
    p = Path(rel_path)
    if p.is_absolute() or ".." in p.parts:
        raise ConfigError(f"manifest path {rel_path!r} must be relative and inside the corpus")
    return (Path("clips") / f"{p.as_posix()}.safetensors").as_posix()


class LatentCache:
    """Read access to a cache directory.

    Attributes:
        root: the cache directory; settings: the ``cache.json`` settings (frames, latent_shape, vae, mel, ...).
        clips / mixtures: :class:`CachedItem` lists.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        index = self.root / INDEX_NAME
        if not index.is_file():
            raise ConfigError(f"{self.root}: no {INDEX_NAME} (build it with `sara train ldm --build-cache`)")
        try:
            data = json.loads(index.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{index}: invalid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or data.get("version") != CACHE_VERSION:
            raise ConfigError(f"{index}: not a sara LDM latent cache (format {data.get('format')!r})")
        if not data.get("complete"):
            raise ConfigError(f"{self.root}: the latent cache build was interrupted; run it again to finish")
        self.settings: dict[str, Any] = data["settings"]
        self.clips = [_item(d) for d in data["clips"]]
        self.mixtures = [_item(d) for d in data["mixtures"]]

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of every cached latent."""
        c, h, w = self.settings["latent_shape"]
        return int(c), int(h), int(w)

    def load(self, item: CachedItem) -> tuple[Tensor, Tensor]:
        """``(mean, std)`` ``[C, H, W]`` float32 of an entry (diffusion space).

        Raises:
            ConfigError: the entry's file is missing or unreadable (named).
        """
        path = self.root / item.file
        try:
            tensors = load_file(str(path))
            return tensors["mean"].float(), tensors["std"].float()
        except Exception as exc:  # noqa: BLE001 - missing key or file; safetensors raises several types
            raise ConfigError(f"{path}: unreadable latent cache entry ({exc}); rebuild the cache") from None


def _item(d: dict[str, Any]) -> CachedItem:
    return CachedItem(d["file"], tuple(d["captions"]), d["split"], tuple(d["paths"]))


def _item_json(item: CachedItem) -> dict[str, Any]:
    return {"file": item.file, "captions": list(item.captions), "split": item.split, "paths": list(item.paths)}


def _atomic_save(tensors: dict[str, Tensor], path: Path, metadata: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------- building


def _captions(record: dict[str, Any]) -> tuple[str, ...]:
    raw = record.get("captions") or [record.get("caption")]
    return tuple(c for c in raw if isinstance(c, str) and c.strip())


def _usable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with a path and at least one caption."""
    return [r for r in records if isinstance(r.get("path"), str) and _captions(r)]


def _prepared(root: Path, rel: str, frames: int, mel_cfg: Any) -> Tensor:
    """Tango's prepared waveform ``[frames * hop]`` of one manifest clip (16 kHz, peak 0.5)."""
    from sara.audio.io import load_audio
    from sara.mel.frontend import prepare_waveform

    wav, sr = load_audio(root / rel, max_duration=None)
    return prepare_waveform(wav[0], sr, frames, mel_cfg)[0]  # channel 0, as Tango's read_wav_file


@torch.no_grad()
def _encode(vae: Any, wavs: list[Tensor], frames: int, mel_cfg: Any) -> tuple[Tensor, Tensor]:
    """``[B]`` prepared 16 kHz waveforms -> posterior ``(mean, std)`` ``[B, C, H, W]`` in diffusion space."""
    from sara.mel.frontend import log_mel, pad_frames

    device = next(vae.parameters()).device
    mel = pad_frames(log_mel(torch.stack(wavs).to(device), mel_cfg), frames)  # [B, frames, n_mels]
    posterior = vae.encode(mel.unsqueeze(1))
    return posterior.mean * vae.scale_factor, posterior.std * vae.scale_factor


def _mixture_pairs(records: list[dict[str, Any]], count: int, seed: int) -> list[tuple[int, int, int, int]]:
    """``count`` pairs ``(i, j, caption_i, caption_j)`` of distinct training records, a function of ``seed``."""
    if count and len(records) < 2:
        raise ConfigError("caption mixing needs at least two training clips")
    g = torch.Generator().manual_seed(int(seed))
    pairs = []
    for _ in range(count):
        i, j = torch.randperm(len(records), generator=g)[:2].tolist()
        ci = int(torch.randint(len(_captions(records[i])), (1,), generator=g))
        cj = int(torch.randint(len(_captions(records[j])), (1,), generator=g))
        pairs.append((i, j, ci, cj))
    return pairs


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _encode_clips(vae: Any, root: Path, out: Path, records: list[dict[str, Any]], frames: int, mel_cfg: Any,
                  batch_size: int, bar: Any) -> list[CachedItem]:
    """Encode (or reuse) every record's clip; returns their entries."""
    items = []
    for batch in _batches(records, batch_size):
        todo = [r for r in batch if not (out / clip_file(r["path"])).is_file()]
        if todo:
            mean, std = _encode(vae, [_prepared(root, r["path"], frames, mel_cfg) for r in todo], frames, mel_cfg)
            for r, m, s in zip(todo, mean, std, strict=True):
                _atomic_save({"mean": m, "std": s}, out / clip_file(r["path"]), {"path": r["path"]})
        for r in batch:
            items.append(CachedItem(clip_file(r["path"]), _captions(r), str(r.get("split", "train")), (r["path"],)))
        bar.update(len(batch))
    return items


def _encode_mixtures(vae: Any, root: Path, out: Path, train: list[dict[str, Any]], count: int, seed: int,
                     frames: int, mel_cfg: Any, batch_size: int, bar: Any) -> list[CachedItem]:
    """Make, encode and store ``count`` caption mixtures of training clips."""
    from sara.ldm.mixing import mix_by_level, mix_captions

    entries = []
    for k, (i, j, ci, cj) in enumerate(_mixture_pairs(train, count, seed)):
        a, b = train[i], train[j]
        caption = mix_captions(_captions(a)[ci], _captions(b)[cj])
        entries.append(CachedItem(f"mixtures/{k:06d}.safetensors", (caption,), "train", (a["path"], b["path"])))
    for batch in _batches(entries, batch_size):
        todo = [e for e in batch if not (out / e.file).is_file()]
        if todo:
            wavs = [mix_by_level(*(_prepared(root, p, frames, mel_cfg) for p in e.paths), 0.5, mel_cfg.sample_rate)
                    for e in todo]
            mean, std = _encode(vae, wavs, frames, mel_cfg)
            for e, m, s in zip(todo, mean, std, strict=True):
                meta = {"paths": json.dumps(e.paths), "caption": e.captions[0]}
                _atomic_save({"mean": m, "std": s}, out / e.file, meta)
        bar.update(len(batch))
    return entries


def _settings(vae: Any, frames: int, mel_cfg: Any, num_mixtures: int, seed: int, manifest: Path) -> dict[str, Any]:
    from sara.serialization import config_to_dict

    f = vae.downsample_factor
    return {"frames": frames, "latent_shape": [vae.latent_channels, frames // f, mel_cfg.n_mels // f],
            "scale_factor": vae.scale_factor, "vae": config_to_dict(vae.config), "vae_sha256": weights_digest(vae),
            "mel": config_to_dict(mel_cfg), "num_mixtures": num_mixtures, "mixture_seed": seed,
            "manifest": str(manifest)}


def weights_digest(module: Any) -> str:
    """SHA-256 of a module's state dict (names, shapes, dtypes and bytes), so a retrained VAE is noticed."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def build_latent_cache(manifest: str | os.PathLike[str], vae: Any, out_dir: str | os.PathLike[str], frames: int,
                       *, mel_cfg: Any = None, num_mixtures: int = 0, mixture_split: str = "train", seed: int = 0,
                       batch_size: int = 8, progress: bool = True) -> LatentCache:
    """Encode every captioned clip of ``manifest`` (all splits) and ``num_mixtures`` caption mixtures.

    Re-running with the same settings reuses the clip files already written (an interrupted build resumes);
    other settings in an existing cache are refused.

    Args:
        manifest: corpus manifest (jsonl; ``path`` relative to its directory, ``captions`` / ``caption``, ``split``).
        vae: a :class:`sara.mel.vae.MelVAE` (in eval mode; its device is used).
        out_dir: cache directory.
        frames: mel frames per clip (Tango: 1024 = 10.24 s); a multiple of the VAE's downsample factor.
        mel_cfg: :class:`sara.mel.frontend.MelConfig` (default: the paper front end with the VAE's ``n_mels``).
        num_mixtures: caption mixtures to make from the ``mixture_split`` clips (Tango: one per two clips).
        seed: draws the mixture pairs and their captions.
        batch_size: clips per VAE forward.

    Returns:
        The :class:`LatentCache` written.

    Raises:
        ConfigError: invalid frames / mel settings, or an existing cache built with other settings.
        AudioError: an unreadable clip (named).
    """
    from tqdm.auto import tqdm

    from sara.data.manifest import load_manifest

    mel_cfg = _mel_config(vae, mel_cfg)
    if frames < 1 or frames % vae.downsample_factor:
        raise ConfigError(f"frames {frames} must be a positive multiple of the VAE factor {vae.downsample_factor}")
    root, out = Path(manifest).parent, Path(out_dir)
    settings = _settings(vae, frames, mel_cfg, num_mixtures, seed, Path(manifest))
    _check_existing(out, settings)
    records = _usable(load_manifest(manifest))
    train = [r for r in records if r.get("split", "train") == mixture_split]
    out.mkdir(parents=True, exist_ok=True)
    _write_index(out, settings, [], [], complete=False)  # claims the directory for these settings
    with tqdm(total=len(records) + num_mixtures, desc="latent cache", disable=not progress) as bar:
        clips = _encode_clips(vae, root, out, records, frames, mel_cfg, batch_size, bar)
        mixtures = _encode_mixtures(vae, root, out, train, num_mixtures, seed, frames, mel_cfg, batch_size, bar)
    _write_index(out, settings, clips, mixtures, complete=True)
    return LatentCache(out)


def _write_index(out: Path, settings: dict[str, Any], clips: list[CachedItem], mixtures: list[CachedItem],
                 complete: bool) -> None:
    payload = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "complete": complete, "settings": settings,
               "clips": [_item_json(c) for c in clips], "mixtures": [_item_json(m) for m in mixtures]}
    _atomic_write_text(out / INDEX_NAME, json.dumps(payload, indent=1) + "\n")


def _mel_config(vae: Any, mel_cfg: Any) -> Any:
    import dataclasses

    from sara.mel.frontend import MelConfig

    mel_cfg = mel_cfg if mel_cfg is not None else dataclasses.replace(MelConfig(), n_mels=vae.config.n_mels)
    if mel_cfg.n_mels != vae.config.n_mels:
        raise ConfigError(f"mel front end has {mel_cfg.n_mels} bins, the VAE takes {vae.config.n_mels}")
    return mel_cfg


def _check_existing(out: Path, settings: dict[str, Any]) -> None:
    """Refuse to add to a cache written with other settings (its files would not match)."""
    index = out / INDEX_NAME
    if not index.is_file():
        return
    old = json.loads(index.read_text()).get("settings", {})
    changed = sorted(k for k in set(old) | set(settings) if k != "manifest" and old.get(k) != json.loads(
        json.dumps(settings.get(k))))
    if changed:
        raise ConfigError(f"{out}: an existing latent cache was built with other settings ({', '.join(changed)}); "
                          f"use a new directory")
