"""Reading official dasheng checkpoints into :class:`~sara.encoder.config.EncoderConfig` + state dict.

Accepted layouts:

* ``{"model": state_dict, "config": {...}}`` -- the Zenodo ``dasheng_base.pt`` / ``_06b`` / ``_12b`` files;
  the config dict holds ``AudioTransformerMAE_Encoder`` keyword arguments (``norm_layer`` may be a pickled
  ``functools.partial(nn.LayerNorm, eps=1e-6)``; it is read by the weights-only unpickler, never called).
* a plain state dict (``dasheng_audioset_mAP497.pt``); its ``outputlayer.*`` classifier keys are ignored and
  the architecture is inferred from tensor shapes.

The official state dicts carry the STFT window and mel filterbank buffers.  We rebuild those from the config
(non-persistent buffers), so here they are compared with the rebuilt ones -- a mismatch means a front end we
do not implement -- and then dropped.  Position tables of a different length are truncated or bilinearly
interpolated, as dasheng's own ``load_state_dict`` does.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sara.audio import dsp
from sara.encoder.config import EncoderConfig
from sara.errors import CheckpointError

__all__ = ["BUFFER_KEYS", "config_from_official", "infer_config", "prepare_state_dict", "split_official_checkpoint"]

WINDOW_KEY = "front_end.0.spectrogram.window"
FB_KEY = "front_end.0.mel_scale.fb"
BUFFER_KEYS = (WINDOW_KEY, FB_KEY)
HEADS_BY_DIM = {768: 12, 1280: 16, 1536: 24}

# every official config key we know: mapped onto EncoderConfig, checked by _reject_unbuildable, or harmless at
# inference (dropout rates, patch-out, eval pooling, masking options)
_KNOWN_KEYS = {"drop_rate", "attn_drop_rate", "drop_path_rate", "time_patch_out", "freq_patch_out", "eval_avg",
                 "group_masking", "outputdim", "norm_layer", "act_layer", "block_type", "attention_type",
                 "patch_stride", "win_size", "center", "qkv_bias", "mlp_ratio", "init_values", "top_db",
                 "patch_size", "pooling", "target_length", "n_fft", "n_mels", "hop_size", "f_min", "f_max",
                 "embed_dim", "depth", "num_heads"}


def split_official_checkpoint(obj: Any, source: str) -> tuple[dict[str, Tensor], dict[str, Any] | None]:
    """``torch.load`` result -> ``(state_dict, official config or None)``.

    Raises:
        CheckpointError: neither ``{"model", "config"}`` nor a plain tensor dict.
    """
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        config = obj.get("config")
        if config is not None and not isinstance(config, Mapping):
            raise CheckpointError(f"{source}: 'config' is a {type(config).__name__}, expected a dict")
        return _tensor_dict(obj["model"], source), (dict(config) if config is not None else None)
    if isinstance(obj, Mapping) and obj and all(isinstance(v, Tensor) for v in obj.values()):
        return _tensor_dict(obj, source), None
    raise CheckpointError(f"{source}: not a dasheng checkpoint (expected {{'model': ..., 'config': ...}} or a state dict)")


def _tensor_dict(sd: Mapping[str, Any], source: str) -> dict[str, Tensor]:
    bad = [k for k, v in sd.items() if not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(f"{source}: state dict entries are not tensors: {bad[:5]}")
    out = {str(k): v for k, v in sd.items()}
    if all(k.startswith("module.") for k in out):
        out = {k[len("module."):]: v for k, v in out.items()}
    return out


def infer_config(sd: Mapping[str, Tensor], source: str) -> EncoderConfig:
    """Architecture from tensor shapes (heads from the known sizes, else ``D // 64``)."""
    if "patch_embed.proj.weight" not in sd or "time_pos_embed" not in sd:
        raise CheckpointError(f"{source}: unknown checkpoint layout: missing keys "
                              f"{[k for k in ('patch_embed.proj.weight', 'time_pos_embed') if k not in sd]}")
    d, _, ph, pw = sd["patch_embed.proj.weight"].shape
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    gamma = sd.get("blocks.0.ls1.gamma")
    fc1 = sd.get("blocks.0.mlp.fc1.weight")
    return _build(source, embed_dim=d, depth=depth, num_heads=HEADS_BY_DIM.get(d, max(1, d // 64)),
                  mlp_ratio=(fc1.shape[0] / d) if fc1 is not None else 4.0,
                  qkv_bias="blocks.0.attn.qkv.bias" in sd or depth == 0,
                  init_values=float(gamma.flatten()[0]) if gamma is not None else None,
                  target_length=sd["time_pos_embed"].shape[-1] * pw, n_mels=ph, patch_size=(ph, pw),
                  pooling="token" if "cls_token" in sd else "mean")


def config_from_official(official: Mapping[str, Any], sd: Mapping[str, Tensor], source: str) -> EncoderConfig:
    """Map dasheng's ``AudioTransformerMAE_Encoder`` kwargs onto :class:`EncoderConfig`.

    Sizes come from the tensors (the official factories override embed_dim/depth/num_heads at build time,
    so the stored config may not hold them); everything else from the config dict, checked for layouts we
    cannot build.
    """
    shapes = infer_config(sd, source)
    embed_dim, depth = shapes.embed_dim, shapes.depth
    for key, actual in (("embed_dim", embed_dim), ("depth", depth)):
        if key in official and int(official[key]) != actual:
            raise CheckpointError(f"{source}: config says {key}={official[key]} but the weights have {actual}")
    _reject_unbuildable(official, source)
    unknown = sorted(set(official) - _KNOWN_KEYS)
    if unknown:
        warnings.warn(f"{source}: ignoring unknown dasheng config keys {unknown}", stacklevel=3)
    patch = tuple(official.get("patch_size", shapes.patch_size))
    return _build(
        source, embed_dim=embed_dim, depth=depth,
        num_heads=int(official.get("num_heads", shapes.num_heads)),
        mlp_ratio=float(official.get("mlp_ratio", shapes.mlp_ratio)),
        qkv_bias=bool(official.get("qkv_bias", True)),
        init_values=official.get("init_values", shapes.init_values),
        ln_eps=_layer_norm_eps(official.get("norm_layer"), source),
        target_length=int(official.get("target_length", shapes.target_length)),
        pooling=official.get("pooling", "mean"), n_fft=int(official.get("n_fft", 512)),
        hop_length=int(official.get("hop_size", 160)), n_mels=int(official.get("n_mels", 64)),
        f_min=float(official.get("f_min", 0)), f_max=float(official.get("f_max", 8000)),
        top_db=official.get("top_db", 120.0), patch_size=(int(patch[0]), int(patch[1])),
    )


def _build(source: str, **kwargs: Any) -> EncoderConfig:
    try:
        return EncoderConfig(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: unsupported dasheng layout ({exc})") from None


def _reject_unbuildable(official: Mapping[str, Any], source: str) -> None:
    """Raise for config values that change the computation in ways this implementation does not build."""
    checks = {
        "patch_stride": lambda v: tuple(v) == tuple(official.get("patch_size", (64, 4))),
        "win_size": lambda v: int(v) == int(official.get("n_fft", 512)),
        "center": lambda v: bool(v),
        "block_type": lambda v: v == "Block",
        "attention_type": lambda v: v == "Attention",
        "act_layer": lambda v: v is None or v is nn.GELU,
    }
    for key, ok in checks.items():
        if key in official and not ok(official[key]):
            raise CheckpointError(f"{source}: unsupported dasheng layout: {key}={official[key]!r}")


def _layer_norm_eps(norm_layer: Any, source: str) -> float:
    """eps of ``partial(nn.LayerNorm, eps=...)`` (1e-6 when absent); other norm layers are rejected."""
    if norm_layer is None:
        return 1e-6
    if isinstance(norm_layer, functools.partial) and norm_layer.func is nn.LayerNorm:
        return float(norm_layer.keywords.get("eps", 1e-5))
    if norm_layer is nn.LayerNorm:
        return 1e-5
    raise CheckpointError(f"{source}: unsupported dasheng layout: norm_layer={norm_layer!r}")


def prepare_state_dict(sd: Mapping[str, Tensor], cfg: EncoderConfig, source: str) -> dict[str, Tensor]:
    """Official state dict -> ours: drop ``outputlayer.*``, check + drop DSP buffers, fit position tables."""
    out = {k: v for k, v in sd.items() if not k.startswith("outputlayer.")}
    _check_buffers(out, cfg, source)
    for key in BUFFER_KEYS:
        out.pop(key, None)
    if "time_pos_embed" in out:
        out["time_pos_embed"] = _fit_pos_embed(out["time_pos_embed"], cfg.tokens_per_chunk)
    return out


def _check_buffers(sd: Mapping[str, Tensor], cfg: EncoderConfig, source: str) -> None:
    expected = {
        WINDOW_KEY: dsp.hann_window(cfg.n_fft),
        FB_KEY: dsp.mel_filterbank(cfg.n_fft // 2 + 1, cfg.n_mels, cfg.sample_rate, cfg.f_min, cfg.f_max),
    }
    for key, ref in expected.items():
        if key not in sd:
            continue
        got = sd[key].float()
        if got.shape != ref.shape or not torch.allclose(got, ref, atol=1e-5, rtol=1e-4):
            raise CheckpointError(f"{source}: {key} differs from the front end this config builds "
                                  f"(shape {tuple(got.shape)} vs {tuple(ref.shape)})")


def _fit_pos_embed(table: Tensor, length: int) -> Tensor:
    """``[1, D, 1, L0]`` -> ``[1, D, 1, length]`` by truncation or bilinear interpolation."""
    if table.shape[-1] == length:
        return table
    if table.shape[-1] > length:
        return table[..., :length].contiguous()
    return F.interpolate(table, size=(table.shape[-2], length), mode="bilinear", align_corners=False)

