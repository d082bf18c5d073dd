"""Official mel-VAE layouts: Tango's ``pytorch_model_vae.bin`` (audioldm names) and diffusers ``vae/`` folders.

Tango directory (declare-lab/tango hub snapshot, read by ``tango.py``: ``AutoencoderKL(**vae_config)`` then a
strict ``load_state_dict``)::

    vae_config.json        {"image_key", "subband", "embed_dim", "time_shuffle", "ddconfig": {...}, "scale_factor"}
    pytorch_model_vae.bin  plain torch.save'd state dict: encoder.*, decoder.*, quant_conv.*, post_quant_conv.*
                           (the VAE) and vocoder.* (Tango's HiFi-GAN, read by sara.mel.hifigan)

audioldm key names (haoheliu/AudioLDM ``audioldm/variational_autoencoder/modules.py``): ``{encoder,decoder}.conv_in``,
``encoder.down.{l}.block.{b}.{norm1,conv1,norm2,conv2,nin_shortcut}``, ``encoder.down.{l}.downsample.conv``
(all levels but the last), ``{encoder,decoder}.mid.{block_1,attn_1,block_2}`` with ``attn_1.{norm,q,k,v,proj_out}``
(q/k/v/proj_out are 1x1 convs), ``{encoder,decoder}.norm_out``, ``{encoder,decoder}.conv_out``,
``decoder.up.{l}.block.{0..layers}`` and ``decoder.up.{l}.upsample.conv`` (levels > 0).  ``decoder.up`` is indexed
by resolution level (the reference builds it reversed and prepends), so audioldm ``up.{l}`` is diffusers
``up_blocks.{L-1-l}``.  A ``nin_shortcut`` exists where a block changes the channel count.

AudioLDM checkpoint (``audioldm-s-full.ckpt``, PyTorch Lightning): ``{"state_dict": {"scale_factor", "first_stage_model.*"
(the names above, plus ``vocoder.*``), "model.*", "cond_stage_model.*", ...}}``; the VAE's architecture is read
from the tensor shapes.

diffusers folder (``convert_original_audioldm_to_diffusers.py``; an AudioLDM pipeline root has it as ``vae/``)::

    config.json                                   {"_class_name": "AutoencoderKL", ...}
    diffusion_pytorch_model.safetensors | .bin    diffusers key names
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from sara.errors import CheckpointError
from sara.mel.vae import MelVAEConfig
from sara.serialization import load_torch_checkpoint, read_json_object

__all__ = [
    "TANGO_VAE_CONFIG",
    "TANGO_VAE_WEIGHTS",
    "VAE_PREFIXES",
    "audioldm_key_map",
    "convert_audioldm_state",
    "infer_vae_config",
    "load_official_vae",
    "read_audioldm_checkpoint",
    "read_diffusers_vae",
    "read_tango_state",
    "read_tango_vae_config",
    "split_tango_state",
    "to_audioldm_state",
]

TANGO_VAE_WEIGHTS = "pytorch_model_vae.bin"
TANGO_VAE_CONFIG = "vae_config.json"
VAE_PREFIXES = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")
FOREIGN_PREFIXES = ("vocoder.",)  # Tango's HiFi-GAN lives in the same file; sara.mel.hifigan reads it
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")

# Tango's AutoencoderKL(**vae_config) keyword arguments; the ones that change the model are checked below.
_TANGO_TOP_KEYS = {"ddconfig", "lossconfig", "image_key", "embed_dim", "time_shuffle", "subband", "ckpt_path",
                   "reload_from_ckpt", "ignore_keys", "colorize_nlabels", "monitor", "base_learning_rate",
                   "scale_factor"}
# ddconfig entries sara's VAE supports only at these values (the reference's defaults / AudioLDM's config).
_DDCONFIG_FIXED: dict[str, Any] = {"in_channels": 1, "out_ch": 1, "double_z": True, "attn_resolutions": [],
                                   "resamp_with_conv": True, "use_linear_attn": False, "attn_type": "vanilla",
                                   "downsample_time_stride4_levels": [], "give_pre_end": False, "tanh_out": False}
# ddconfig entries with no effect on the architecture (resolution/mel_bins are informational; dropout is 0.0 in
# every released config and only acts in training).
_DDCONFIG_FREE = {"ch", "ch_mult", "num_res_blocks", "z_channels", "resolution", "dropout", "downsample_time",
                  "mel_bins"}
# diffusers attention names from before the Attention refactor (old AudioLDM conversions) -> current names
_DEPRECATED_ATTENTION = {".query.": ".to_q.", ".key.": ".to_k.", ".value.": ".to_v.", ".proj_attn.": ".to_out.0."}


# ------------------------------------------------------------------------------------------ key names


def _resnet_pairs(src: str, dst: str, has_shortcut: bool) -> dict[str, str]:
    """audioldm ResnetBlock -> diffusers ResnetBlock2D parameter names (weight and bias)."""
    parts = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2"}
    if has_shortcut:
        parts["nin_shortcut"] = "conv_shortcut"
    return {f"{src}.{a}.{p}": f"{dst}.{b}.{p}" for a, b in parts.items() for p in ("weight", "bias")}


def _mid_pairs(side: str) -> dict[str, str]:
    """``{side}.mid.*`` (block_1, attn_1, block_2) -> ``{side}.mid_block.*``."""
    out = _resnet_pairs(f"{side}.mid.block_1", f"{side}.mid_block.resnets.0", False)
    out |= _resnet_pairs(f"{side}.mid.block_2", f"{side}.mid_block.resnets.1", False)
    attn = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
    for a, b in attn.items():
        for p in ("weight", "bias"):
            out[f"{side}.mid.attn_1.{a}.{p}"] = f"{side}.mid_block.attentions.0.{b}.{p}"
    return out


def _ends(side: str) -> dict[str, str]:
    names = {"conv_in": "conv_in", "norm_out": "conv_norm_out", "conv_out": "conv_out"}
    return {f"{side}.{a}.{p}": f"{side}.{b}.{p}" for a, b in names.items() for p in ("weight", "bias")}


def _encoder_pairs(cfg: MelVAEConfig) -> dict[str, str]:
    chans, levels = cfg.block_out_channels, len(cfg.block_out_channels)
    out = _ends("encoder") | _mid_pairs("encoder")
    for lvl in range(levels):
        block_in = chans[max(lvl - 1, 0)]
        for b in range(cfg.layers_per_block):
            src, dst = f"encoder.down.{lvl}.block.{b}", f"encoder.down_blocks.{lvl}.resnets.{b}"
            out |= _resnet_pairs(src, dst, b == 0 and block_in != chans[lvl])
        if lvl < levels - 1:
            for p in ("weight", "bias"):
                out[f"encoder.down.{lvl}.downsample.conv.{p}"] = f"encoder.down_blocks.{lvl}.downsamplers.0.conv.{p}"
    return out


def _decoder_pairs(cfg: MelVAEConfig) -> dict[str, str]:
    chans, levels = cfg.block_out_channels, len(cfg.block_out_channels)
    out = _ends("decoder") | _mid_pairs("decoder")
    block_in = chans[-1]
    for lvl in reversed(range(levels)):
        up = levels - 1 - lvl  # diffusers up_blocks run from the lowest resolution
        for b in range(cfg.layers_per_block + 1):
            src, dst = f"decoder.up.{lvl}.block.{b}", f"decoder.up_blocks.{up}.resnets.{b}"
            out |= _resnet_pairs(src, dst, b == 0 and block_in != chans[lvl])
        block_in = chans[lvl]
        if lvl > 0:
            for p in ("weight", "bias"):
                out[f"decoder.up.{lvl}.upsample.conv.{p}"] = f"decoder.up_blocks.{up}.upsamplers.0.conv.{p}"
    return out


def audioldm_key_map(cfg: MelVAEConfig) -> dict[str, str]:
    """Every audioldm VAE parameter name for ``cfg`` -> its diffusers ``AutoencoderKL`` name."""
    out = _encoder_pairs(cfg) | _decoder_pairs(cfg)
    for conv in ("quant_conv", "post_quant_conv"):
        out |= {f"{conv}.{p}": f"{conv}.{p}" for p in ("weight", "bias")}
    return out


def _is_attention_projection(diffusers_key: str) -> bool:
    return ".attentions.0." in diffusers_key and diffusers_key.endswith("weight") and "group_norm" not in diffusers_key


def convert_audioldm_state(state: Mapping[str, Tensor], cfg: MelVAEConfig, source: str) -> dict[str, Tensor]:
    """audioldm-named VAE weights -> diffusers names; attention 1x1-conv weights ``[C, C, 1, 1]`` -> ``[C, C]``.

    Raises:
        CheckpointError: a key is missing or unexpected for ``cfg`` (one line naming them).
    """
    names = audioldm_key_map(cfg)
    missing, unexpected = sorted(set(names) - set(state)), sorted(set(state) - set(names))
    if missing or unexpected:
        raise CheckpointError(f"{source}: does not fit the AudioLDM VAE of its vae_config.json: "
                              f"missing keys {_abbrev(missing)}, unexpected keys {_abbrev(unexpected)}")
    out = {}
    for src, dst in names.items():
        t = state[src]
        out[dst] = t.reshape(t.shape[0], -1) if _is_attention_projection(dst) and t.dim() == 4 else t
    return out


def to_audioldm_state(state: Mapping[str, Tensor], cfg: MelVAEConfig) -> dict[str, Tensor]:
    """Inverse of :func:`convert_audioldm_state` (for writing a Tango-format ``pytorch_model_vae.bin``)."""
    out = {}
    for src, dst in audioldm_key_map(cfg).items():
        t = state[dst]
        out[src] = t[:, :, None, None] if _is_attention_projection(dst) else t
    return out


def _abbrev(keys: list[str], limit: int = 4) -> str:
    if not keys:
        return "[]"
    return f"[{', '.join(keys[:limit])}{', ...' if len(keys) > limit else ''}] ({len(keys)})"


# ------------------------------------------------------------------------------------------ Tango


def read_tango_state(tango_dir: Path) -> dict[str, Tensor]:
    """The whole ``pytorch_model_vae.bin`` of a Tango directory (VAE and ``vocoder.*``), read weights-only."""
    path = tango_dir / TANGO_VAE_WEIGHTS if tango_dir.is_dir() else tango_dir
    state = load_torch_checkpoint(path)
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a plain state dict of tensors (Tango's torch.save layout)")
    return dict(state)


def split_tango_state(state: Mapping[str, Tensor], source: str) -> dict[str, Tensor]:
    """The VAE part of a Tango ``pytorch_model_vae.bin`` state; ``vocoder.*`` is left out.

    Raises:
        CheckpointError: keys under any other prefix (named in the message).
    """
    unknown = sorted(k for k in state if not k.startswith(VAE_PREFIXES + FOREIGN_PREFIXES))
    if unknown:
        raise CheckpointError(f"{source}: keys that are neither the VAE ({', '.join(VAE_PREFIXES)}) nor the "
                              f"vocoder (vocoder.): {_abbrev(unknown)}")
    return {k: v for k, v in state.items() if k.startswith(VAE_PREFIXES)}



def _check_ddconfig(dd: Any, source: str) -> None:
    if not isinstance(dd, Mapping):
        raise CheckpointError(f"{source}: ddconfig must be a JSON object, got {type(dd).__name__}")
    unknown = sorted(set(dd) - set(_DDCONFIG_FIXED) - _DDCONFIG_FREE)
    if unknown:
        raise CheckpointError(f"{source}: unknown ddconfig keys {unknown}")
    for key, value in _DDCONFIG_FIXED.items():
        if key in dd and dd[key] != value:
            raise CheckpointError(f"{source}: ddconfig.{key} = {dd[key]!r} is not supported (AudioLDM uses {value!r})")
    missing = sorted({"ch", "ch_mult", "num_res_blocks", "z_channels"} - set(dd))
    if missing:
        raise CheckpointError(f"{source}: ddconfig lacks {missing}")


def _tango_n_mels(tango_dir: Path) -> int:
    stft = tango_dir / "stft_config.json"
    return int(read_json_object(stft).get("n_mel_channels", 64)) if stft.is_file() else 64


def read_tango_vae_config(tango_dir: Path) -> MelVAEConfig:
    """``vae_config.json`` (+ ``stft_config.json`` for the mel count) -> :class:`MelVAEConfig`.

    Raises:
        CheckpointError: missing file, unknown keys, or a setting sara's VAE does not implement.
    """
    path = tango_dir / TANGO_VAE_CONFIG
    data = read_json_object(path)
    unknown = sorted(set(data) - _TANGO_TOP_KEYS)
    if unknown:
        raise CheckpointError(f"{path}: unknown keys {unknown}")
    for key in ("ddconfig", "embed_dim", "scale_factor"):
        if key not in data:
            raise CheckpointError(f"{path}: missing {key!r}")
    dd = data["ddconfig"]
    _check_ddconfig(dd, str(path))
    if int(data.get("subband", 1)) != 1:
        raise CheckpointError(f"{path}: subband {data['subband']} is not supported (AudioLDM uses 1)")
    if int(data["embed_dim"]) != int(dd["z_channels"]):
        raise CheckpointError(f"{path}: embed_dim {data['embed_dim']} != ddconfig.z_channels {dd['z_channels']}")
    chans = tuple(int(dd["ch"]) * int(m) for m in dd["ch_mult"])
    return _config(path, block_out_channels=chans, layers_per_block=int(dd["num_res_blocks"]),
                   latent_channels=int(dd["z_channels"]), n_mels=_tango_n_mels(tango_dir),
                   scale_factor=float(data["scale_factor"]))


def _config(source: Path, **kwargs: Any) -> MelVAEConfig:
    try:
        return MelVAEConfig(norm_num_groups=32, **kwargs)  # AudioLDM's Normalize: 32 groups
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from None


def _load_tango(tango_dir: Path) -> tuple[MelVAEConfig, dict[str, Tensor]]:
    weights = tango_dir / TANGO_VAE_WEIGHTS
    cfg = read_tango_vae_config(tango_dir)
    vae_state = split_tango_state(read_tango_state(tango_dir), str(weights))
    return cfg, convert_audioldm_state(vae_state, cfg, str(weights))


# ------------------------------------------------------------------------------------------ AudioLDM


def _count(state: Mapping[str, Tensor], prefix: str) -> int:
    """Number of consecutive indices ``i`` with keys under ``{prefix}{i}.``."""
    n = 0
    while any(k.startswith(f"{prefix}{n}.") for k in state):
        n += 1
    return n


def infer_vae_config(state: Mapping[str, Tensor], scale_factor: float, source: str) -> MelVAEConfig:
    """The architecture of audioldm-named VAE weights, read from their shapes (no config file).

    ``ch`` from ``encoder.conv_in``, the level widths from each level's first block, ``num_res_blocks`` from
    level 0, ``z_channels`` from ``decoder.conv_in``; :func:`convert_audioldm_state` then checks every key.
    """
    try:
        widths = tuple(int(state[f"encoder.down.{lvl}.block.0.conv1.weight"].shape[0])
                       for lvl in range(_count(state, "encoder.down.")))
        blocks = _count(state, "encoder.down.0.block.")
        latent = int(state["decoder.conv_in.weight"].shape[1])
    except KeyError as exc:
        raise CheckpointError(f"{source}: no AudioLDM VAE weights (missing {exc.args[0]})") from None
    return _config(Path(source), block_out_channels=widths, layers_per_block=blocks, latent_channels=latent,
                   n_mels=64, scale_factor=scale_factor)


def read_audioldm_checkpoint(path: Path) -> tuple[MelVAEConfig, dict[str, Tensor]]:
    """An AudioLDM Lightning checkpoint (``audioldm-s-full.ckpt``) -> (config, diffusers-named VAE weights).

    Layout (read as Tango's ``models.py`` ``build_pretrained_models`` reads it): ``{"state_dict": {...}}`` with
    the latent-diffusion ``scale_factor`` buffer and the VAE under ``first_stage_model.`` (its ``vocoder.*``
    and every other sub-model are ignored).  The architecture comes from the shapes (:func:`infer_vae_config`).
    """
    ckpt = load_torch_checkpoint(path, inert_fallback=True)
    state = ckpt.get("state_dict") if isinstance(ckpt, Mapping) else None
    if not isinstance(state, Mapping) or "scale_factor" not in state:
        raise CheckpointError(f"{path}: not an AudioLDM checkpoint (expected a 'state_dict' with 'scale_factor')")
    prefix = "first_stage_model."
    vae = split_tango_state({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, str(path))
    cfg = infer_vae_config(vae, float(state["scale_factor"]), str(path))
    return cfg, convert_audioldm_state(vae, cfg, str(path))


# ------------------------------------------------------------------------------------------ diffusers


def _diffusers_n_mels(vae_dir: Path) -> int:
    """Mel bins from a sibling ``vocoder/config.json`` (SpeechT5HifiGan ``model_in_dim``), else AudioLDM's 64."""
    vocoder = vae_dir.parent / "vocoder" / "config.json"
    return int(read_json_object(vocoder).get("model_in_dim", 64)) if vocoder.is_file() else 64


def _check_diffusers_config(data: Mapping[str, Any], source: Path) -> None:
    from diffusers import AutoencoderKL

    if data.get("_class_name") != "AutoencoderKL":
        raise CheckpointError(f"{source}: _class_name {data.get('_class_name')!r} is not 'AutoencoderKL'")
    accepted = set(inspect.signature(AutoencoderKL.__init__).parameters)
    unknown = sorted(k for k in data if not k.startswith("_") and k not in accepted)
    if unknown:
        raise CheckpointError(f"{source}: unknown AutoencoderKL config keys {unknown}")
    levels = len(data.get("block_out_channels", (64,)))
    fixed = {"in_channels": 1, "out_channels": 1, "act_fn": "silu", "down_block_types": ["DownEncoderBlock2D"] * levels,
             "up_block_types": ["UpDecoderBlock2D"] * levels, "use_quant_conv": True, "use_post_quant_conv": True,
             "mid_block_add_attention": True, "shift_factor": None, "latents_mean": None, "latents_std": None}
    for key, value in fixed.items():
        if key in data and (list(data[key]) if isinstance(data[key], tuple) else data[key]) != value:
            raise CheckpointError(f"{source}: {key} = {data[key]!r} is not the AudioLDM VAE layout ({value!r})")


def _upgrade_attention_names(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename pre-refactor diffusers attention keys (query/key/value/proj_attn) to to_q/to_k/to_v/to_out.0."""
    out = {}
    for key, value in state.items():
        if ".attentions." in key:
            for old, new in _DEPRECATED_ATTENTION.items():
                key = key.replace(old, new)
            value = value.reshape(value.shape[0], -1) if key.endswith("weight") and value.dim() == 4 else value
        out[key] = value
    return out


def _read_diffusers_weights(vae_dir: Path) -> dict[str, Tensor]:
    for name in DIFFUSERS_WEIGHTS:
        path = vae_dir / name
        if path.is_file() and name.endswith(".safetensors"):
            from safetensors.torch import load_file

            try:
                return load_file(str(path))
            except Exception as exc:  # noqa: BLE001 - any safetensors failure is an unreadable file
                raise CheckpointError(f"{path}: cannot read weights ({exc})") from None
        if path.is_file():
            return dict(load_torch_checkpoint(path))
    raise CheckpointError(f"{vae_dir}: no {' or '.join(DIFFUSERS_WEIGHTS)}")


def read_diffusers_vae(vae_dir: Path) -> tuple[MelVAEConfig, dict[str, Tensor]]:
    """A diffusers ``AutoencoderKL`` folder -> (config, diffusers-named weights)."""
    path = vae_dir / "config.json"
    data = read_json_object(path)
    _check_diffusers_config(data, path)
    cfg = _config_from_diffusers(data, vae_dir)
    return cfg, _upgrade_attention_names(_read_diffusers_weights(vae_dir))


def _config_from_diffusers(data: Mapping[str, Any], vae_dir: Path) -> MelVAEConfig:
    """diffusers ``AutoencoderKL`` config (its defaults for absent keys) -> :class:`MelVAEConfig`."""
    try:
        return MelVAEConfig(
            block_out_channels=tuple(int(c) for c in data.get("block_out_channels", (64,))),
            layers_per_block=int(data.get("layers_per_block", 1)), latent_channels=int(data.get("latent_channels", 4)),
            norm_num_groups=int(data.get("norm_num_groups", 32)), n_mels=_diffusers_n_mels(vae_dir),
            scale_factor=float(data.get("scaling_factor", 0.18215)),
        )
    except ValueError as exc:
        raise CheckpointError(f"{vae_dir / 'config.json'}: {exc}") from None


# ------------------------------------------------------------------------------------------ dispatch


def load_official_vae(path: Path) -> tuple[MelVAEConfig, dict[str, Tensor]]:
    """Config and diffusers-named weights from a Tango directory, a diffusers ``vae/`` folder, a pipeline root or
    an AudioLDM checkpoint file.

    Raises:
        CheckpointError: nothing recognisable at ``path``, or a file/key that does not fit (named in the message).
    """
    if path.is_file() and path.name == TANGO_VAE_WEIGHTS:
        path = path.parent
    elif path.is_file():
        return read_audioldm_checkpoint(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such directory")
    if (path / TANGO_VAE_WEIGHTS).is_file() or (path / TANGO_VAE_CONFIG).is_file():
        return _load_tango(path)
    if (path / "config.json").is_file():
        return read_diffusers_vae(path)
    if (path / "vae" / "config.json").is_file():
        return read_diffusers_vae(path / "vae")
    raise CheckpointError(
        f"{path}: not a mel VAE: expected a sara release (config.json + model.safetensors), a Tango directory "
        f"({TANGO_VAE_WEIGHTS} + {TANGO_VAE_CONFIG}), a diffusers AutoencoderKL folder, a pipeline root with vae/ "
        "or an AudioLDM .ckpt file"
    )
