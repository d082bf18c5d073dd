"""EnCodec at 16 kHz as audiocraft builds it for AudioGen: SEANet + residual VQ, loading, training, token cache.

Public API (imported lazily, so ``import sara.codec`` is cheap): :class:`EncodecCodec` (``encode``, ``decode``,
``decode_latent``, ``from_pretrained``), :class:`CodecConfig` (presets ``audiogen``/``paper``, ``small``,
``tiny``), :func:`encode_manifest_to_tokens` / :func:`load_tokens` (the LM's token cache) and
:func:`save_audiocraft_codec` (write audiocraft's ``compression_state_dict.bin``).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["CodecConfig", "EncodecCodec", "encode_manifest_to_tokens", "load_tokens", "save_audiocraft_codec"]

_EXPORTS = {
    "CodecConfig": "sara.codec.config",
    "EncodecCodec": "sara.codec.model",
    "encode_manifest_to_tokens": "sara.codec.tokens",
    "load_tokens": "sara.codec.tokens",
    "save_audiocraft_codec": "sara.codec.official",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sara.codec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
