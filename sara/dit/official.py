"""Build a :class:`LatentDiT` from the official SemanticVocoder UDiT config and weights.

The official backbone is constructed by hydra from the ``backbone`` node of ``model_config`` (the UDiT
constructor arguments).  Absent arguments take the official constructor defaults.  Weights are the
``model.backbone.*`` keys (or unprefixed), plus optionally the text projection
``model.content_encoder.text_encoder.proj.*`` which becomes ``text_proj``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from sara.dit.config import DiTConfig
from sara.dit.model import LatentDiT
from sara.errors import ConfigError
from sara.serialization import load_state_dict_strict, strip_prefix

__all__ = ["BACKBONE_PREFIX", "PROJ_PREFIX", "dit_from_official", "official_to_config", "split_official_state"]

BACKBONE_PREFIX = "model.backbone."
PROJ_PREFIX = "model.content_encoder.text_encoder.proj."

# official UDiT constructor defaults
_DEFAULTS: dict[str, Any] = {
    "img_size": 224, "patch_size": 16, "in_chans": 3, "input_type": "2d", "out_chans": None, "embed_dim": 768,
    "depth": 12, "num_heads": 12, "mlp_ratio": 4, "qkv_bias": False, "qk_scale": None, "qk_norm": None,
    "act_layer": "gelu", "norm_layer": "layernorm", "context_norm": False, "use_checkpoint": False,
    "time_fusion": "token", "ada_sola_rank": None, "ada_sola_alpha": None, "cls_dim": None, "context_dim": 768,
    "context_fusion": "concat", "context_max_length": 128, "context_pe_method": "sinu", "pe_method": "abs",
    "rope_mode": "none", "use_conv": True, "skip": True, "skip_norm": True,
}

# When no absolute table bounds the length ('none' PE), allow this many frames (30 s at 25 Hz).
_UNBOUNDED_MAX_FRAMES = 750


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"official backbone config: {message}")


def official_to_config(backbone_config: Mapping[str, Any], text_dim: int | None = None) -> DiTConfig:
    """Map official UDiT constructor arguments (hydra ``_target_`` etc. ignored) to a :class:`DiTConfig`.

    Raises:
        ConfigError: unknown arguments or variants this implementation does not cover (token/concat fusion,
            2-D input, snake activations, 'dual' RoPE, conv PE, class conditioning).
    """
    args = {k: v for k, v in backbone_config.items() if not str(k).startswith("_")}
    unknown = sorted(set(args) - set(_DEFAULTS))
    _require(not unknown, f"unknown arguments {unknown}")
    a = {**_DEFAULTS, **args}
    _require(a["input_type"] == "1d", f"input_type {a['input_type']!r} (only '1d' latents are supported)")
    _require(a["context_fusion"] == "cross", f"context_fusion {a['context_fusion']!r} (only 'cross')")
    _require(str(a["time_fusion"]).startswith("ada"), f"time_fusion {a['time_fusion']!r} (only ada* modes)")
    _require(a["out_chans"] in (None, a["in_chans"]), "out_chans must equal in_chans")
    _require(a["cls_dim"] is None, "class conditioning (cls_dim) is not supported")
    _require(a["rope_mode"] in ("none", "shared", "x_only"), f"rope_mode {a['rope_mode']!r}")
    _require(a["pe_method"] in ("none", "abs", "sinu"), f"pe_method {a['pe_method']!r}")
    _require(a["context_pe_method"] in ("none", "abs", "sinu"), f"context_pe_method {a['context_pe_method']!r}")
    _require(str(a["act_layer"]).startswith(("gelu", "geglu")), f"act_layer {a['act_layer']!r}")
    patch = int(a["patch_size"])
    max_len = int(a["img_size"]) // patch * patch
    if a["pe_method"] == "none":
        max_len = max(max_len, _UNBOUNDED_MAX_FRAMES // patch * patch)
    try:
        return DiTConfig(
            latent_dim=int(a["in_chans"]), patch_size=patch, max_length=max_len, dim=int(a["embed_dim"]),
            depth=int(a["depth"]), num_heads=int(a["num_heads"]), mlp_ratio=float(a["mlp_ratio"]),
            act=a["act_layer"], norm=a["norm_layer"], qkv_bias=bool(a["qkv_bias"]), qk_norm=a["qk_norm"],
            time_fusion=a["time_fusion"], ada_rank=a["ada_sola_rank"],
            ada_alpha=None if a["ada_sola_alpha"] is None else float(a["ada_sola_alpha"]),
            context_dim=int(a["context_dim"]), context_norm=bool(a["context_norm"]),
            context_max_length=int(a["context_max_length"]), context_pe=a["context_pe_method"],
            pe=a["pe_method"], rope=a["rope_mode"], use_conv=bool(a["use_conv"]), skip=bool(a["skip"]),
            skip_norm=bool(a["skip_norm"]), text_dim=text_dim,
        )
    except ValueError as exc:
        raise ConfigError(f"official backbone config: {exc}") from None


def split_official_state(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """``(backbone, text_proj)`` weights from a full official state dict or an unprefixed backbone one."""
    if any(k.startswith(BACKBONE_PREFIX) for k in state_dict):
        return strip_prefix(state_dict, BACKBONE_PREFIX), strip_prefix(state_dict, PROJ_PREFIX)
    return dict(state_dict), {}


def dit_from_official(backbone_config: Mapping[str, Any], state_dict: Mapping[str, Tensor]) -> LatentDiT:
    """A :class:`LatentDiT` holding the official backbone (and text projection, when present) weights.

    Args:
        backbone_config: the ``backbone`` node of the official ``model_config`` (UDiT arguments).
        state_dict: official weights, prefixed ``model.backbone.`` (full checkpoint) or unprefixed.
    """
    backbone, proj = split_official_state(state_dict)
    text_dim = int(proj["weight"].shape[1]) if "weight" in proj else None
    model = LatentDiT(official_to_config(backbone_config, text_dim=text_dim))
    state = {**backbone, **{f"text_proj.{k}": v for k, v in proj.items()}}
    load_state_dict_strict(model, state, source="official backbone")
    return model.eval()
