"""Loading HiFi-GAN weights from the layouts Tango, AudioLDM and diffusers publish (strict, never executing code).

Layouts (key names from haoheliu/AudioLDM ``audioldm/hifigan/models.py`` -- ``Generator``: ``conv_pre``,
``ups.{i}``, ``resblocks.{i}.convs1.{j}`` / ``convs2.{j}``, ``conv_post`` -- and transformers'
``SpeechT5HifiGan``: the same names with ``upsampler.{i}`` for ``ups.{i}`` plus ``mean`` / ``scale`` buffers):

* **Tango directory** (declare-lab/tango hub snapshot): ``pytorch_model_vae.bin`` holds the VAE *and* the
  vocoder as ``vocoder.*`` with weight norm already removed (plain ``weight`` / ``bias``).  Its size is
  fixed in Tango's code (``HIFIGAN_16K_64``): :meth:`HiFiGANConfig.paper`.
* **AudioLDM checkpoints**: ``audioldm-*.ckpt`` (``{"state_dict": {"first_stage_model.vocoder.*"}}``, plain
  weights) and AudioLDM-training's ``hifigan_16k_64bins.ckpt`` (``{"generator": {...}}`` saved *with* weight
  norm: ``weight_g`` / ``weight_v``, possibly with ``torch.compile``'s ``_orig_mod.`` in the names, next to a
  ``hifigan_16k_64bins.json`` config; see AudioLDM-training ``audioldm_train/utilities/model_util.py``
  ``get_vocoder``, which loads the state and only then removes weight norm).  Weight norm is folded here:
  ``weight = g * v / ||v||`` with the norm over every dimension but 0 (``torch.nn.utils.weight_norm``'s
  default ``dim=0``; the same formula for the ``parametrizations.weight.original0/1`` keys of the newer API).
* **diffusers** ``vocoder/`` folder (``config.json`` of ``SpeechT5HifiGanConfig`` + ``model.safetensors`` or
  ``pytorch_model.bin``), or an AudioLDM pipeline root that contains one.
* **sara release** (``config.json`` with ``format_version`` + ``model.safetensors``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor

from sara.errors import CheckpointError
from sara.mel.hifigan import HiFiGAN, HiFiGANConfig
from sara.serialization import (
    config_from_dict,
    is_release_dir,
    load_release,
    load_state_dict_strict,
    read_json_object,
)

__all__ = ["TANGO_VAE_FILE", "audioldm_to_speecht5", "config_from_audioldm", "config_from_speecht5",
           "fold_weight_norm", "load_audioldm_checkpoint", "load_diffusers_vocoder", "load_hifigan",
           "load_tango_vocoder", "save_diffusers_vocoder"]

TANGO_VAE_FILE = "pytorch_model_vae.bin"
DIFFUSERS_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "diffusion_pytorch_model.safetensors",
                     "diffusion_pytorch_model.bin")
_BUFFERS = ("mean", "scale")  # SpeechT5HifiGan's normalisation buffers (absent from AudioLDM files)
_WN_SUFFIXES = ((".weight_g", ".weight_v"), (".parametrizations.weight.original0", ".parametrizations.weight.original1"))


# ------------------------------------------------------------------------------------ conversions
def fold_weight_norm(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Replace every weight-norm pair (``X.weight_g`` + ``X.weight_v``, or ``X.parametrizations.weight.original0``
    + ``original1``) by ``X.weight = g * v / ||v||`` (norm over all dims except 0); other keys pass unchanged.
    An incomplete pair is left as it is, so strict loading names it."""
    out = dict(state)
    for g_suffix, v_suffix in _WN_SUFFIXES:
        for key in [k for k in state if ("." + k).endswith(g_suffix)]:
            base = ("." + key)[: -len(g_suffix)]  # "" for a bare module's own weight
            v_key = (base + v_suffix)[1:]
            if v_key not in state:
                continue
            g, v = out.pop(key), out.pop(v_key)
            norm = v.float().pow(2).sum(dim=tuple(range(1, v.dim())), keepdim=True).sqrt()
            out[(base + ".weight")[1:]] = (v.float() * (g.float() / norm)).to(v.dtype)
    return out


def _to_audioldm_name(speecht5_key: str) -> str:
    return "ups." + speecht5_key[len("upsampler."):] if speecht5_key.startswith("upsampler.") else speecht5_key


def audioldm_to_speecht5(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """AudioLDM ``Generator`` names (plain weights) -> ``SpeechT5HifiGan`` names, adding ``mean = 0`` and
    ``scale = 1`` (unused with ``normalize_before=False``) sized from ``conv_pre.weight [C, n_mels, 7]``.

    The same mapping as ``convert_hifigan_checkpoint`` in diffusers' ``scripts/convert_original_audioldm_to_diffusers.py``
    (``ups.{i}`` -> ``upsampler.{i}``, everything else unchanged, ``mean`` / ``scale`` at their initial values)."""
    out = {("upsampler." + k[len("ups."):] if k.startswith("ups.") else k): v for k, v in state.items()}
    if "conv_pre.weight" in state:
        n_mels = state["conv_pre.weight"].shape[1]
        out["mean"], out["scale"] = torch.zeros(n_mels), torch.ones(n_mels)
    return out


def config_from_audioldm(data: Mapping[str, Any], source: str) -> HiFiGANConfig:
    """An AudioLDM HiFi-GAN JSON config (``HIFIGAN_16K_64`` keys: ``num_mels``, ``sampling_rate``,
    ``upsample_*``, ``resblock*``; training keys are ignored) -> :class:`HiFiGANConfig`."""
    if str(data.get("resblock", "1")) != "1":
        raise CheckpointError(f"{source}: resblock type {data['resblock']!r} is not supported (only type \"1\")")
    keys = {"num_mels": "n_mels", "sampling_rate": "sample_rate", "upsample_rates": "upsample_rates",
            "upsample_kernel_sizes": "upsample_kernel_sizes", "upsample_initial_channel": "upsample_initial_channel",
            "resblock_kernel_sizes": "resblock_kernel_sizes", "resblock_dilation_sizes": "resblock_dilation_sizes"}
    return _config({ours: data[theirs] for theirs, ours in keys.items() if theirs in data}, source)


def config_from_speecht5(data: Mapping[str, Any], source: str) -> HiFiGANConfig:
    """A ``SpeechT5HifiGanConfig`` ``config.json`` (diffusers ``vocoder/``) -> :class:`HiFiGANConfig`."""
    # "hifigan" in transformers 4 (the released AudioLDM vocoder/ folders), "speecht5_hifigan" in transformers 5
    if data.get("model_type") not in (None, "hifigan", "speecht5_hifigan"):
        raise CheckpointError(f"{source}: model_type {data.get('model_type')!r} is not a HiFi-GAN (expected 'hifigan')")
    keys = {"model_in_dim": "n_mels", "sampling_rate": "sample_rate", "upsample_rates": "upsample_rates",
            "upsample_kernel_sizes": "upsample_kernel_sizes", "upsample_initial_channel": "upsample_initial_channel",
            "resblock_kernel_sizes": "resblock_kernel_sizes", "resblock_dilation_sizes": "resblock_dilation_sizes",
            "leaky_relu_slope": "leaky_relu_slope", "normalize_before": "normalize_before"}
    return _config({ours: data[theirs] for theirs, ours in keys.items() if theirs in data}, source)


def _config(fields: dict[str, Any], source: str) -> HiFiGANConfig:
    try:
        return config_from_dict(HiFiGANConfig, fields)
    except Exception as exc:  # noqa: BLE001 - ConfigError or a malformed value: either way a bad file
        raise CheckpointError(f"{source}: invalid HiFi-GAN config ({exc})") from None


# ------------------------------------------------------------------------------------ strict build
def _empty_model(cfg: HiFiGANConfig) -> HiFiGAN:
    """An uninitialised CPU :class:`HiFiGAN` (built on the meta device: no random init of 55 M weights) whose
    every parameter and buffer a strict load then overwrites."""
    with torch.device("meta"):
        model = HiFiGAN(cfg, init_weights=False)
    return model.to_empty(device="cpu")


def _check_keys(found: set[str], expected: set[str], source: str, prefix: str = "") -> None:
    """One-line CheckpointError naming (in the file's own spelling) the missing and unexpected keys."""
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if missing or unexpected:
        def show(keys: list[str]) -> str:
            names = ", ".join(prefix + k for k in keys[:6])
            return f"[{names}{', ...' if len(keys) > 6 else ''}] ({len(keys)})" if keys else "[]"

        raise CheckpointError(f"{source}: unknown HiFi-GAN layout: missing keys {show(missing)}, "
                              f"unexpected keys {show(unexpected)}")


def _build(cfg: HiFiGANConfig, state: Mapping[str, Tensor], source: str, *, audioldm: bool,
           prefix: str = "") -> HiFiGAN:
    """A :class:`HiFiGAN` holding ``state`` (AudioLDM names when ``audioldm``, else SpeechT5 names), strictly."""
    model = _empty_model(cfg)
    target = set(model.generator.state_dict())
    state = fold_weight_norm(state)
    if audioldm:
        _check_keys(set(state), {_to_audioldm_name(k) for k in target if k not in _BUFFERS}, source, prefix)
        state = audioldm_to_speecht5(state)
    else:
        _check_keys(set(state), target, source, prefix)
    load_state_dict_strict(model.generator, state, source=source)
    return model.eval()


# ---------------------------------------------------------------------------------------- readers
def _read_weights(path: Path) -> Any:
    """A safetensors file, or a pickle read without executing code.  Training checkpoints (Lightning's
    ``hyper_parameters`` / ``callbacks`` next to ``state_dict``) may reference classes outside torch's
    weights-only allow-list: those become inert data holders (``inert_fallback``), the tensors load as usual."""
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for corrupt files
            raise CheckpointError(f"{path}: cannot read weights ({exc})") from None
    from sara.serialization import load_torch_checkpoint

    return load_torch_checkpoint(path, inert_fallback=True)


def _tensor_dict(obj: Any, source: str) -> dict[str, Tensor]:
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{source}: expected a state dict of tensors")
    return {str(k).replace("_orig_mod.", ""): v for k, v in obj.items()}


def _generator_state(obj: Any, source: str) -> tuple[dict[str, Tensor], str]:
    """The AudioLDM-named generator weights inside a checkpoint, and the prefix they had in the file.

    Accepts ``{"generator": state}`` (AudioLDM-training), ``{"state_dict": state}`` (Lightning), and states
    whose vocoder keys start with ``first_stage_model.vocoder.`` (AudioLDM) or ``vocoder.`` (Tango).
    """
    if isinstance(obj, Mapping) and isinstance(obj.get("generator"), Mapping):
        obj = obj["generator"]
    elif isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    state = _tensor_dict(obj, source)
    for prefix in ("first_stage_model.vocoder.", "vocoder."):
        if any(k.startswith(prefix) for k in state):
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, prefix
    return state, ""


def load_tango_vocoder(path: str | os.PathLike[str], config: HiFiGANConfig | None = None) -> HiFiGAN:
    """The HiFi-GAN stored as ``vocoder.*`` in a Tango ``pytorch_model_vae.bin`` (the file or its directory).

    Args:
        path: the file or the Tango directory.
        config: generator size; None = the paper size, which Tango's code fixes (other sizes: tests).
    """
    file = Path(path)
    file = file / TANGO_VAE_FILE if file.is_dir() else file
    state, prefix = _generator_state(_read_weights(file), str(file))
    if prefix != "vocoder.":
        raise CheckpointError(f"{file}: no 'vocoder.*' keys (a Tango {TANGO_VAE_FILE} holds its HiFi-GAN there)")
    return _build(config or HiFiGANConfig.paper(), state, str(file), audioldm=True, prefix=prefix)


def load_audioldm_checkpoint(path: str | os.PathLike[str], config: HiFiGANConfig | None = None) -> HiFiGAN:
    """An AudioLDM HiFi-GAN checkpoint file (see the module docstring).

    Args:
        path: the ``.ckpt`` / ``.pt`` / ``.bin`` / ``.safetensors`` file.
        config: generator size; None = the sibling ``<stem>.json`` (AudioLDM-training's convention) when it
            exists, else the paper size (AudioLDM's fixed ``HIFIGAN_16K_64``).
    """
    file = Path(path)
    if config is None:
        sibling = file.with_suffix(".json")
        config = config_from_audioldm(read_json_object(sibling), str(sibling)) if sibling.is_file() else HiFiGANConfig.paper()
    state, prefix = _generator_state(_read_weights(file), str(file))
    return _build(config, state, str(file), audioldm=True, prefix=prefix)


def load_diffusers_vocoder(path: str | os.PathLike[str]) -> HiFiGAN:
    """A diffusers / transformers ``SpeechT5HifiGan`` folder (``config.json`` + weights), or a pipeline root
    holding it as ``vocoder/``."""
    folder = Path(path)
    if (folder / "vocoder").is_dir():
        folder = folder / "vocoder"
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(f"{folder}: no config.json (expected a diffusers vocoder/ folder)")
    data = read_json_object(cfg_file)
    if "format_version" in data:
        raise CheckpointError(f"{cfg_file}: a sara release of a {data.get('class')!r}, not a diffusers vocoder folder")
    config = config_from_speecht5(data, str(cfg_file))
    weights = next((folder / n for n in DIFFUSERS_WEIGHTS if (folder / n).is_file()), None)
    if weights is None:
        raise CheckpointError(f"{folder}: no weights file (looked for {', '.join(DIFFUSERS_WEIGHTS)})")
    return _build(config, _tensor_dict(_read_weights(weights), str(weights)), str(weights), audioldm=False)


def _load_release(path: Path) -> HiFiGAN:
    payload, state = load_release(path, "HiFiGAN")
    model = _empty_model(_config(payload["config"], str(path / "config.json")))
    load_state_dict_strict(model, state, source=str(path))
    return model.eval()


def load_hifigan(path: str | os.PathLike[str]) -> HiFiGAN:
    """Detect the layout of ``path`` and load it strictly.

    Directories, in this order: a sara HiFiGAN release; a Tango directory (``pytorch_model_vae.bin``); a
    folder holding ``vocoder/`` (a diffusers pipeline root or a sara release that bundles its vocoder there,
    read recursively); a diffusers ``vocoder/`` folder.  Files: Tango's ``pytorch_model_vae.bin`` or an
    AudioLDM checkpoint.

    Raises:
        CheckpointError: nothing recognisable at ``path``, or the weights do not fit (keys named).
    """
    p = Path(path)
    if p.is_file():
        return load_tango_vocoder(p) if p.name == TANGO_VAE_FILE else load_audioldm_checkpoint(p)
    if not p.is_dir():
        raise CheckpointError(f"{p}: no such vocoder file or directory")
    release = is_release_dir(p)
    if release and _release_class(p) == "HiFiGAN":
        return _load_release(p)
    if (p / TANGO_VAE_FILE).is_file():
        return load_tango_vocoder(p)
    if (p / "vocoder").is_dir():
        return load_hifigan(p / "vocoder")
    if release:
        return _load_release(p)  # a release of another class: load_release names it
    if (p / "config.json").is_file():
        return load_diffusers_vocoder(p)
    raise CheckpointError(f"{p}: not a HiFi-GAN directory (expected a sara release, a Tango directory with "
                          f"{TANGO_VAE_FILE}, or a diffusers vocoder/ folder)")


def _release_class(path: Path) -> Any:
    return read_json_object(path / "config.json").get("class")


def save_diffusers_vocoder(model: HiFiGAN, directory: str | os.PathLike[str]) -> Path:
    """Write ``model`` as a diffusers ``vocoder/`` folder (transformers' ``save_pretrained``: ``config.json``
    + ``model.safetensors``), e.g. to put a sara-trained vocoder into an AudioLDM pipeline."""
    out = Path(directory)
    model.generator.save_pretrained(str(out))
    return out

