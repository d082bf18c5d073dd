"""Build a text encoder from a small JSON-able spec (stored in release directories)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from torch import Tensor

from sara.errors import ConfigError
from sara.text.base import TextEncoder

__all__ = ["TextEncoderSpec", "build_text_encoder"]


@dataclass(frozen=True)
class TextEncoderSpec:
    """Which text encoder a model uses.

    Attributes:
        kind: ``"minilm"`` (packaged all-MiniLM-L6-v2, 384-d) or ``"t5"`` (FLAN-T5 encoder).
        path: for ``"t5"``: a local directory (absolute or relative to the release directory) or a HF repo
            id found in the local cache; for ``"minilm"``: optional override of the packaged model directory.
    """

    kind: Literal["minilm", "t5"] = "minilm"
    path: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("minilm", "t5"):
            raise ValueError(f"unknown text encoder kind {self.kind!r} (expected 'minilm' or 't5')")
        if self.kind == "t5" and not self.path:
            raise ValueError("a 't5' text encoder needs 'path' (a local directory or a cached HF repo id)")


def build_text_encoder(
    spec: TextEncoderSpec | Mapping[str, str | None],
    base_dir: str | Path | None = None,
    state_dict: Mapping[str, Tensor] | None = None,
) -> TextEncoder:
    """Instantiate the encoder described by ``spec``.

    Args:
        spec: a :class:`TextEncoderSpec` or its dict form ``{"kind": ..., "path": ...}``.
        base_dir: directory that relative paths are resolved against (the model directory).
        state_dict: T5 weights to load instead of the directory's own (official checkpoints).
    """
    if not isinstance(spec, TextEncoderSpec):
        from sara.serialization import config_from_dict

        spec = config_from_dict(TextEncoderSpec, dict(spec))
    if spec.kind == "minilm":
        from sara.text.minilm import MiniLMTextEncoder

        path = None if spec.path is None else _local(spec.path, base_dir)
        return MiniLMTextEncoder(path)
    from sara.text.t5 import T5TextEncoder, resolve_model_dir

    assert spec.path is not None
    return T5TextEncoder(resolve_model_dir(spec.path, base_dir), state_dict=state_dict)


def _local(path: str, base_dir: str | Path | None) -> Path:
    p = Path(path)
    if not p.is_absolute() and base_dir is not None and (Path(base_dir) / p).exists():
        return Path(base_dir) / p
    if not p.exists():
        raise ConfigError(f"text encoder directory {path!r} does not exist")
    return p
