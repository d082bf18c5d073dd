"""Reading official SemanticVocoder / Flow2GAN generator checkpoints (spec B.5, E.2, E.4).

Official layout: ``semanticVocoder_epoch-270.pt`` = pickled ``{"model": generator_state_dict, ...}``
(keys without prefix, including the ``loss_spec.*`` and ``*.fft.window`` / ``*.ifft.window`` buffers),
optionally with a hydra ``config.json`` whose ``model.autoencoder`` node holds the autoencoder arguments
and, under ``vocoder``, the generator arguments.  Without ``config.json`` the architecture is read from
the tensor shapes and the hop lengths are taken as ``n_fft / 2``.  Pickles are read weights-only.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sara.errors import CheckpointError, ConfigError
from sara.serialization import load_torch_checkpoint, read_json_object
from sara.vocoder.config import VocoderConfig

__all__ = [
    "OfficialCheckpoint",
    "config_from_hydra",
    "drop_rebuilt_buffers",
    "extract_generator_state",
    "find_encoder_weights",
    "find_official_checkpoint",
    "infer_config",
    "read_official",
]

ANCHOR = "cond_encoder.in_proj.weight"

# official generator argument -> VocoderConfig field (same meaning, same value)
_VOCODER_ARGS = {
    "latent_dim": "latent_dim", "hop_length": "hop_length", "sampling_rate": "sample_rate", "n_ffts": "n_ffts",
    "hop_lengths": "hop_lengths", "channels": "channels", "time_embed_channels": "time_embed_dim",
    "hidden_factor": "hidden_factor", "conv_kernel_sizes": "kernel_sizes", "num_layers": "num_layers",
    "cond_enc_channels": "cond_enc_channels", "cond_enc_hidden_factor": "cond_enc_hidden_factor",
    "cond_enc_conv_kernel_size": "cond_enc_kernel_size", "cond_enc_num_layers": "cond_enc_num_layers",
    "init_noise_scale": "init_noise_scale", "pred_x1": "pred_x1", "branch_reduction": "branch_reduction",
    "branch_dropout": "branch_dropout", "loss_n_filters": "loss_n_filters", "loss_n_fft": "loss_n_fft",
    "loss_hop_length": "loss_hop_length", "loss_power": "loss_power", "loss_eps": "loss_eps",
    "loss_scale_min": "loss_scale_min", "loss_scale_max": "loss_scale_max",
}
# official arguments with no effect on inference or on our training recipe
_IGNORED_ARGS = {"_target_", "_partial_", "spec_scaling_loss", "mel_n_fft", "max_add_noise_scale", "n_mels",
                 "mel_hop_length", "cond_dim", "cond_hop_length"}

# encoder_name in the official config -> file names that hold those weights, in order of preference
ENCODER_FILES: dict[str, tuple[str, ...]] = {
    "dasheng_base": ("dasheng_base.pt", "dasheng_base"),
    "dasheng_06B": ("dasheng_06b.pt", "dasheng_06B.pt", "dasheng_06B"),
    "dasheng_12B": ("dasheng_12b.pt", "dasheng_12B.pt", "dasheng_12B"),
    "dasheng_audioset": ("dasheng_audioset_mAP497.pt", "dasheng_audioset.pt", "dasheng_audioset"),
}


@dataclass
class OfficialCheckpoint:
    """An official generator checkpoint, read and interpreted.

    Attributes:
        config: the generator configuration (from config.json and/or tensor shapes).
        state_dict: generator weights with official key names (prefixes removed).
        encoder_name: the official ``encoder_name`` (None when unknown, ``"none"`` for decode-only).
        checkpoint_path: the ``.pt`` file.
        config_path: the hydra ``config.json`` used, if any.
    """

    config: VocoderConfig
    state_dict: dict[str, Tensor]
    encoder_name: str | None
    checkpoint_path: Path
    config_path: Path | None


def find_official_checkpoint(directory: Path) -> Path:
    """The generator ``.pt`` in ``directory`` (prefers ``semanticVocoder*.pt``; ignores dasheng weights)."""
    preferred = sorted(directory.glob("semanticVocoder*.pt"))
    if len(preferred) == 1:
        return preferred[0]
    others = [p for p in sorted(directory.glob("*.pt")) if not p.name.lower().startswith("dasheng")]
    candidates = preferred or others
    if not candidates:
        raise CheckpointError(f"{directory}: no sara release (config.json + model.safetensors) and no vocoder .pt file")
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise CheckpointError(f"{directory}: several checkpoints ({names}); pass the .pt file itself")
    return candidates[0]


def extract_generator_state(ckpt: Any, source: str) -> dict[str, Tensor]:
    """Generator weights from a loaded checkpoint: ``ckpt["model"]`` or a bare state dict, with any key
    prefix before ``cond_encoder.`` (``module.``, ``generator.``, ``model.autoencoder.generator.``) removed."""
    state = ckpt.get("model", ckpt) if isinstance(ckpt, Mapping) else None
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: expected a dict with a 'model' state dict")
    anchors = [k for k in state if isinstance(k, str) and k.endswith(ANCHOR)]
    if len(anchors) != 1:
        raise CheckpointError(f"{source}: not a SemanticVocoder/Flow2GAN generator checkpoint (no {ANCHOR})")
    prefix = anchors[0][: -len(ANCHOR)]
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and isinstance(v, Tensor)}


def _count(state: Mapping[str, Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in state if (m := regex.match(k))})


def _shape(state: Mapping[str, Tensor], key: str, source: str) -> torch.Size:
    if key not in state:
        raise CheckpointError(f"{source}: missing tensor {key}")
    return state[key].shape


def infer_config(state: Mapping[str, Tensor], source: str = "checkpoint", **overrides: Any) -> VocoderConfig:
    """Read the architecture from tensor shapes (spec E.4); hops default to ``n_fft / 2``.

    Args:
        state: generator state dict with official keys.
        source: name used in error messages.
        overrides: VocoderConfig fields that take precedence (e.g. from config.json).
    """
    num = _count(state, r"estimators\.(\d+)\.decoder\.in_proj\.weight")
    if num == 0:
        raise CheckpointError(f"{source}: no estimators.*.decoder.in_proj.weight tensors")
    n_ffts, channels, layers, kernels = [], [], [], []
    for i in range(num):
        c, k2, _ = _shape(state, f"estimators.{i}.decoder.in_proj.weight", source)
        n_ffts.append(int(k2) - 2)
        channels.append(int(c))
        layers.append(_count(state, rf"estimators\.{i}\.decoder\.blocks\.(\d+)\.dwconv\.weight"))
        dw = state.get(f"estimators.{i}.decoder.blocks.0.dwconv.weight")
        kernels.append(int(dw.shape[-1]) if dw is not None else 7)
    cc, latent_dim, _ = _shape(state, ANCHOR, source)
    pw = state.get("estimators.0.decoder.blocks.0.pwconv1.weight")
    enc_dw = state.get("cond_encoder.blocks.0.dwconv.weight")
    enc_pw = state.get("cond_encoder.blocks.0.pwconv1.weight")
    values: dict[str, Any] = dict(
        latent_dim=int(latent_dim), n_ffts=tuple(n_ffts), hop_lengths=tuple(n // 2 for n in n_ffts),
        channels=tuple(channels), num_layers=tuple(layers), kernel_sizes=tuple(kernels),
        hidden_factor=int(pw.shape[0]) // channels[0] if pw is not None else 3,
        time_embed_dim=int(_shape(state, "estimators.0.decoder.time_mlp.2.weight", source)[0]),
        cond_enc_channels=int(cc),
        cond_enc_num_layers=_count(state, r"cond_encoder\.blocks\.(\d+)\.dwconv\.weight"),
        cond_enc_kernel_size=int(enc_dw.shape[-1]) if enc_dw is not None else 7,
        cond_enc_hidden_factor=int(enc_pw.shape[0]) // int(cc) if enc_pw is not None else 3,
        residual_scale=any(k.endswith("residual_scale.scale") for k in state),
    )
    if "loss_spec.spectrogram.window" in state:
        values["loss_n_fft"] = int(state["loss_spec.spectrogram.window"].shape[0])
    if "loss_spec.fb" in state:
        values["loss_n_filters"] = int(state["loss_spec.fb"].shape[1])
    values.update(overrides)
    try:
        return VocoderConfig(**values)
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc} (give the hop lengths through the official config.json)") from None


def config_from_hydra(payload: Mapping[str, Any], source: str) -> tuple[dict[str, Any], str | None]:
    """Translate an official hydra ``config.json`` into VocoderConfig overrides and the ``encoder_name``.

    Accepts ``{"model": {"autoencoder": {...}}}`` and the HF wrapper ``{"model_config": {...same...}}``.
    """
    root = payload.get("model_config", payload)
    node = root.get("model", {}).get("autoencoder") if isinstance(root.get("model"), Mapping) else None
    if not isinstance(node, Mapping):
        raise CheckpointError(f"{source}: no 'model' -> 'autoencoder' node (not an official SemanticVocoder config)")
    voc = node.get("vocoder", {})
    overrides: dict[str, Any] = {}
    for key, value in voc.items():
        if key in _VOCODER_ARGS:
            overrides[_VOCODER_ARGS[key]] = tuple(value) if isinstance(value, list) else value
        elif key == "residual_scale":
            overrides["residual_scale"] = value is not None
        elif key == "use_cond_encoder":
            if not value:
                raise CheckpointError(f"{source}: generators without a condition encoder are not supported")
        elif key not in _IGNORED_ARGS:
            warnings.warn(f"{source}: ignoring unknown vocoder argument {key!r}", stacklevel=3)
    if "n_timesteps" in node:
        overrides["default_steps"] = int(node["n_timesteps"])
    if "clamp_pred" in node:
        overrides["clamp"] = bool(node["clamp_pred"])
    if "sample_rate" in node:
        overrides.setdefault("sample_rate", int(node["sample_rate"]))
    if "downsampling_ratio" in node:
        overrides.setdefault("hop_length", int(node["downsampling_ratio"]))
    return overrides, node.get("encoder_name", "dasheng_base")


def drop_rebuilt_buffers(model: nn.Module, state: dict[str, Tensor], source: str) -> dict[str, Tensor]:
    """Remove the STFT windows and loss filterbank (our non-persistent buffers) after checking that the
    checkpoint's copies equal the ones we rebuild; a mismatch means an unsupported variant."""
    persistent = set(model.state_dict())
    out = dict(state)
    for name, buf in model.named_buffers():
        if name in persistent or name not in out:
            continue
        theirs = out.pop(name)
        if theirs.shape != buf.shape or not torch.allclose(theirs.float(), buf.float().cpu(), atol=1e-5):
            raise CheckpointError(f"{source}: buffer {name} {tuple(theirs.shape)} differs from the rebuilt one "
                                  f"{tuple(buf.shape)} (unsupported window or filterbank)")
    return out


def read_official(path: Path) -> OfficialCheckpoint:
    """Read an official checkpoint given as a ``.pt`` file or a directory holding one (+ config.json)."""
    ckpt_path = find_official_checkpoint(path) if path.is_dir() else path
    state = extract_generator_state(load_torch_checkpoint(ckpt_path, inert_fallback=True), str(ckpt_path))
    cfg_path = ckpt_path.parent / "config.json"
    overrides, encoder_name = {}, None
    if cfg_path.is_file():
        payload = read_json_object(cfg_path)  # present but unreadable: an error, never a guess from shapes
        try:
            overrides, encoder_name = config_from_hydra(payload, str(cfg_path))
        except (AttributeError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{cfg_path}: malformed official config ({exc})") from None
    else:
        cfg_path = None
    try:
        config = infer_config(state, str(ckpt_path), **overrides)
    except (TypeError, ConfigError) as exc:
        raise CheckpointError(f"{ckpt_path}: {exc}") from None
    return OfficialCheckpoint(config, state, encoder_name, ckpt_path, cfg_path)


def find_encoder_weights(encoder_name: str | None, directory: Path) -> Path | None:
    """Local weights for the official ``encoder_name`` next to the checkpoint (or in ``encoder/``)."""
    if not encoder_name or encoder_name == "none":
        return None
    for base in (directory, directory / "encoder"):
        for name in ENCODER_FILES.get(encoder_name, (f"{encoder_name}.pt", encoder_name)):
            if (base / name).exists():
                return base / name
    return None

