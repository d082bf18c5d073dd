"""Where DC-LDM training gets its AudioGen tokens: the ground-truth clip's codec tokens or LM-generated tokens.

The paper does not say which one it trained on, so both are selectable (``acoustic_source`` of
:class:`~sara.dcldm.training.DCLDMTrainConfig`):

* ``"codec"``: the clip's own tokens from a :mod:`sara.codec.tokens` cache (``encode_manifest_to_tokens`` with
  AudioGen's codec; keyed by the manifest's relative audio path), cut to the latent's length.  Cheap and
  teacher-forced, but at inference the tokens come from the LM (a train/inference gap).
* ``"lm"``: tokens the AudioGen LM generates for each caption, cached per caption by :func:`build_lm_token_cache`
  (one seeded generation per caption, so the cache is a function of the seed): closes that gap.

LM cache layout::

    <dir>/lm_tokens.json                {"format": "sara-dcldm-lm-tokens", "version": 1, "frames", "seed",
                                         "sampling": {...}, "codec_fingerprint"}
    <dir>/codes/<sha256(caption)[:32]>.safetensors   "codes" [K, frames] int32, metadata {"caption"}
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

from sara.errors import ConfigError

__all__ = ["LM_CACHE_FORMAT", "build_lm_token_cache", "caption_seed", "check_codec_token_cache", "codec_codes",
           "lm_codes"]

LM_CACHE_FORMAT = "sara-dcldm-lm-tokens"
_INDEX = "lm_tokens.json"


def _caption_key(caption: str) -> str:
    return hashlib.sha256(caption.encode("utf-8")).hexdigest()[:32]


def caption_seed(seed: int, caption: str) -> int:
    """The generation seed of ``caption``: a function of ``(seed, caption)`` only, in ``[0, 2**62)``."""
    return int(hashlib.sha256(f"{int(seed)}\0{caption}".encode()).hexdigest()[:15], 16)


def codec_codes(token_cache: str | os.PathLike[str], rel_path: str, frames: int) -> Tensor:
    """Ground-truth codes ``[K, <= frames]`` long of the clip at manifest path ``rel_path``."""
    from sara.codec.tokens import load_tokens

    return load_tokens(token_cache, rel_path)[:, :frames]


def check_codec_token_cache(token_cache: str | os.PathLike[str], codec: Any) -> None:
    """The token cache was written by ``codec`` (same weights fingerprint), else ConfigError."""
    from sara.codec.tokens import codec_fingerprint

    index = Path(token_cache) / "codec.json"
    if not index.is_file():
        raise ConfigError(f"{token_cache}: no codec.json (build it with sara.codec.encode_manifest_to_tokens)")
    found = json.loads(index.read_text()).get("fingerprint")
    if found != codec_fingerprint(codec):
        raise ConfigError(f"{token_cache}: tokens of another codec (fingerprint {found}); AudioGen's codec is "
                          f"{codec_fingerprint(codec)}")


def lm_codes(cache_dir: str | os.PathLike[str], caption: str, frames: int) -> Tensor:
    """LM-generated codes ``[K, <= frames]`` long of ``caption`` from a :func:`build_lm_token_cache` directory."""
    path = Path(cache_dir) / "codes" / f"{_caption_key(caption)}.safetensors"
    if not path.is_file():
        raise ConfigError(f"{cache_dir}: no LM tokens for caption {caption!r} (run build_lm_token_cache)")
    return load_file(str(path))["codes"].long()[:, :frames]


def _settings(encoder: Any, frames: int, seed: int) -> dict[str, Any]:
    from sara.codec.tokens import codec_fingerprint
    from sara.serialization import config_to_dict

    c = config_to_dict(encoder.config)
    return {"format": LM_CACHE_FORMAT, "version": 1, "frames": int(frames), "seed": int(seed),
            "sampling": {k: c[k] for k in ("cfg_coef", "top_k", "temperature")},
            "codec_fingerprint": codec_fingerprint(encoder.codec)}


def _check_index(out: Path, settings: dict[str, Any]) -> None:
    index = out / _INDEX
    if index.is_file() and json.loads(index.read_text()) != settings:
        raise ConfigError(f"{out}: LM tokens written with other settings (or another AudioGen); use a new directory")


@torch.no_grad()
def build_lm_token_cache(encoder: Any, captions: list[str], out_dir: str | os.PathLike[str], frames: int,
                         seed: int = 0, progress: bool = False) -> int:
    """Generate and store AudioGen tokens for every distinct caption (resumable: existing files are kept).

    Args:
        encoder: an :class:`~sara.dcldm.acoustic.AcousticEncoder` (its AudioGen and LM sampling settings).
        captions: captions to cover (duplicates are generated once).
        out_dir: cache directory (layout in the module docstring).
        frames: token frames per caption (50 per second).
        seed: base seed; caption ``c`` uses :func:`caption_seed` ``(seed, c)``.

    Returns:
        The number of captions generated now.
    """
    from tqdm.auto import tqdm

    out = Path(out_dir)
    settings = _settings(encoder, frames, seed)
    _check_index(out, settings)
    (out / "codes").mkdir(parents=True, exist_ok=True)
    (out / _INDEX).write_text(json.dumps(settings, indent=1) + "\n")
    c, written = encoder.config, 0
    for caption in tqdm(sorted(set(captions)), desc="LM tokens", disable=not progress):
        target = out / "codes" / f"{_caption_key(caption)}.safetensors"
        if target.is_file():
            continue
        codes = encoder.audiogen.generate_tokens([caption], frames=frames, cfg_coef=c.cfg_coef, top_k=c.top_k,
                                                 temperature=c.temperature, seed=caption_seed(seed, caption))
        _atomic_save(codes[0].to(torch.int32).cpu(), target, caption)
        written += 1
    return written


def _atomic_save(codes: Tensor, target: Path, caption: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=target.parent)
    os.close(fd)
    try:
        save_file({"codes": codes.contiguous()}, tmp, metadata={"caption": caption})
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
