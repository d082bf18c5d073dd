"""Which text-to-audio system a model directory holds, and the pipeline that runs it.

Layouts recognised (checked in this order; file names from each system's published snapshot):

=================  ==========================================================================================
``tango``          declare-lab/tango: ``main_config.json`` / ``pytorch_model_main.bin`` (+ the VAE / STFT files)
``audiogen``       audiocraft (facebook/audiogen-medium): ``state_dict.bin`` + ``compression_state_dict.bin``
``sara-official``  official SemanticVocoder: ``config.json`` with ``model_type == "semantic_vocoder"``
``sara-t2a``       sara release, ``config.json`` ``class == "TextToAudio"``
``sara-ldm``       sara release, ``config.json`` ``class == "LatentDiffusion"``
``sara-audiogen``  sara release, ``config.json`` ``class == "AudioGen"``
``sara-dcldm``     sara release, ``config.json`` ``class == "DCLDM"`` (a LatentDiffusion subclass: dispatch on it
                   before LatentDiffusion)
=================  ==========================================================================================

A directory with only part of a layout is still classified by its distinctive file (e.g. a Tango
``main_config.json``), so that the loader can then name the missing files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import torch

from sara.errors import CheckpointError, SaraError

__all__ = ["MODEL_KINDS", "ModelKind", "detect_model_kind", "load_pipeline"]

ModelKind = Literal["tango", "audiogen", "sara-official", "sara-t2a", "sara-ldm", "sara-audiogen", "sara-dcldm"]
MODEL_KINDS: tuple[str, ...] = ("tango", "audiogen", "sara-official", "sara-t2a", "sara-ldm", "sara-audiogen",
                                "sara-dcldm")
_RELEASE_KINDS: dict[str, ModelKind] = {"TextToAudio": "sara-t2a", "LatentDiffusion": "sara-ldm",
                                        "AudioGen": "sara-audiogen", "DCLDM": "sara-dcldm"}
_TANGO_MARKERS = ("main_config.json", "pytorch_model_main.bin")
_AUDIOCRAFT_MARKERS = ("state_dict.bin", "compression_state_dict.bin")
_LOOKED_FOR = ("a Tango directory (main_config.json, pytorch_model_main.bin)",
               "an audiocraft AudioGen directory (state_dict.bin, compression_state_dict.bin)",
               "an official SemanticVocoder directory (config.json with model_type 'semantic_vocoder')",
               "a sara release (config.json with class TextToAudio, LatentDiffusion, AudioGen or DCLDM)")


def detect_model_kind(path: str | os.PathLike[str]) -> ModelKind:
    """Classify the model directory ``path``.

    Raises:
        CheckpointError: not a directory, or no known layout (one line listing what was looked for).
    """
    from sara.dit.official_dir import is_official_dir
    from sara.hub import local_path

    p = local_path(path)  # a hub id or URL -> its cached copy
    if not p.is_dir():
        raise CheckpointError(f"{p}: no such model directory")
    if any((p / name).is_file() for name in _TANGO_MARKERS):
        return "tango"
    if (p / _AUDIOCRAFT_MARKERS[0]).is_file():
        return "audiogen"
    if is_official_dir(p):
        return "sara-official"
    kind = _RELEASE_KINDS.get(_release_class(p) or "")
    if kind is None:
        found = _release_class(p)
        what = f"a config.json with class {found!r}" if found else "none of these"
        raise CheckpointError(f"{p}: unknown model layout ({what}); looked for {'; '.join(_LOOKED_FOR)}")
    return kind


def _release_class(p: Path) -> str | None:
    """``class`` of ``p/config.json`` (None when there is no such file or no string ``class``).

    Raises:
        CheckpointError: a ``config.json`` that is present but unreadable or not a JSON object (named), so a
            broken release is reported as broken rather than as an unknown layout.
    """
    from sara.serialization import read_json_object

    if not (p / "config.json").exists():
        return None
    value = read_json_object(p / "config.json").get("class")
    return value if isinstance(value, str) else None


def load_pipeline(path: str | os.PathLike[str], device: str | torch.device = "cpu", *,
                  dtype: str | torch.dtype | None = None, compile: bool = False) -> Any:
    """The pipeline for the model at ``path``: a ``TextToAudio``, a ``LatentDiffusion``, a ``DCLDM`` (a
    LatentDiffusion subclass) or an ``AudioGen``, its networks set to ``dtype`` / ``compile``
    (``set_inference``).

    Raises:
        CheckpointError: unknown layout (see :func:`detect_model_kind`) or a broken checkpoint.
        SaraError: an AudioGen / DC-LDM model while ``sara.audiogen`` / ``sara.dcldm`` is not available.
    """
    from sara.hub import local_path
    from sara.runtime.precision import resolve_dtype

    resolve_dtype(dtype, device)  # a bad dtype fails before the (slow) load
    pipe = _load(local_path(path), device)
    return pipe.set_inference(dtype=dtype, compile=compile)


def _load(path: str | os.PathLike[str], device: str | torch.device) -> Any:
    """Load the pipeline class that :func:`detect_model_kind` names."""
    kind = detect_model_kind(path)
    if kind in ("sara-t2a", "sara-official"):
        from sara.pipelines.text_to_audio import TextToAudio

        return TextToAudio.from_pretrained(path, device=device)
    if kind in ("tango", "sara-ldm"):
        from sara.pipelines.latent_diffusion import LatentDiffusion

        return LatentDiffusion.from_pretrained(path, device=device)
    if kind == "sara-dcldm":
        return _optional("sara.dcldm.pipeline", "DCLDM", Path(path), kind).from_pretrained(path, device=device)
    return _optional("sara.audiogen.model", "AudioGen", Path(path), kind).from_pretrained(path, map_location=device)


def _optional(module: str, name: str, path: Path, kind: str) -> Any:
    """``module.name``, or a one-line SaraError when that part of sara is not available in this install."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise SaraError(f"{path}: {kind} models are not yet supported by this install "
                        f"({module} is unavailable: {exc})") from None
