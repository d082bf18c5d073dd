"""Build, count and (de)serialise the Tango UNet (diffusers ``UNet2DConditionModel``, used as is).

The module returned by :func:`build_unet` is the plain diffusers class, so wrappers (the DC-LDM acoustic
cross-attention of issue 14) can hook ``unet.down_blocks[0].attentions[i]`` / ``unet.up_blocks[-1].attentions[i]``
directly.  A sara UNet release is ``config.json`` (class ``"LDMUNet"``, config = :class:`UNetConfig` dict) +
``model.safetensors`` (the diffusers state-dict names, e.g.
``down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight``: Tango's ``unet.*`` keys without the
prefix).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from sara.errors import CheckpointError
from sara.ldm.config import UNetConfig
from sara.serialization import (
    config_from_dict,
    config_to_dict,
    load_release,
    load_state_dict_strict,
    save_release,
)

__all__ = [
    "UNET_RELEASE_CLASS",
    "build_unet",
    "count_unet_parameters",
    "load_any_unet",
    "load_unet_release",
    "save_unet_release",
]

UNET_RELEASE_CLASS = "LDMUNet"


def build_unet(cfg: UNetConfig) -> Any:
    """A randomly initialised diffusers ``UNet2DConditionModel`` with ``cfg`` (no network access).

    Forward: ``unet(sample [B, C_in, H, W], timestep [B] or scalar (0..999), encoder_hidden_states [B, L, D],
    encoder_attention_mask=[B, L] bool).sample -> [B, C_out, H, W]``.
    """
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**cfg.to_diffusers_kwargs())


def count_unet_parameters(cfg: UNetConfig) -> int:
    """Number of parameters of ``build_unet(cfg)``, counted on the meta device (no memory, no init time).

    ``UNetConfig.tango()`` gives 865,933,768 (Tango's "866M").
    """
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(**cfg.to_diffusers_kwargs())
    return sum(p.numel() for p in unet.parameters())


def save_unet_release(unet: Any, directory: str | os.PathLike[str], cfg: UNetConfig | None = None) -> Path:
    """Write ``unet`` as a sara release (``config.json`` class ``LDMUNet`` + ``model.safetensors``).

    Args:
        unet: a diffusers ``UNet2DConditionModel`` built from a :class:`UNetConfig`.
        directory: target directory (e.g. ``<release>/unet``).
        cfg: its config (default: read back from ``unet.config``).
    """
    cfg = cfg if cfg is not None else UNetConfig.from_unet(unet)
    return save_release(directory, UNET_RELEASE_CLASS, config_to_dict(cfg), unet.state_dict())


def load_unet_release(directory: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> Any:
    """Build the UNet of a release written by :func:`save_unet_release` and load its weights strictly.

    Returns:
        The diffusers ``UNet2DConditionModel`` in eval mode (``UNetConfig.from_unet`` recovers its config).

    Raises:
        CheckpointError: missing files, another class, or weights that do not fit (keys named).
        ConfigError: an invalid or unknown config key.
    """
    payload, state = load_release(directory, UNET_RELEASE_CLASS)
    unet = build_unet(config_from_dict(UNetConfig, payload["config"]))
    load_state_dict_strict(unet, state, source=str(directory))
    return unet.to(map_location).eval()


def load_any_unet(path: str | os.PathLike[str]) -> Any:
    """The UNet of a UNet release, a LatentDiffusion release (its ``unet/``), an ``ldm`` training run (newest
    checkpoint, EMA weights when kept) or a Tango directory.

    Raises:
        CheckpointError: ``path`` is none of these.
    """
    import json

    p = Path(path)
    if (p / "run.json").is_file():
        from sara.train import load_run_model

        _, model, _ = load_run_model(p)
        return getattr(model, "unet", model)
    from sara.pipelines.tango import is_tango_dir

    if is_tango_dir(p):
        from sara.pipelines.tango import load_tango_parts

        return load_tango_parts(p).unet  # resolves Tango's UNet config file as LatentDiffusion does
    try:
        cls = json.loads((p / "config.json").read_text()).get("class")
    except (OSError, ValueError, AttributeError):
        cls = None
    if cls == UNET_RELEASE_CLASS:
        return load_unet_release(p)
    if cls == "LatentDiffusion" and (p / "unet").is_dir():
        return load_unet_release(p / "unet")
    raise CheckpointError(f"{p}: not a UNet release, LatentDiffusion release, ldm training run or Tango directory")
