"""Reading dasheng in the Hugging Face transformers layout (``mispeech/dasheng-base``, ``-0.6B``, ``-1.2B``).

Those hub repos hold ``config.json`` + ``model.safetensors`` (or ``pytorch_model.bin``, possibly sharded with a
``*.index.json``), ``preprocessor_config.json`` and the repo's own ``configuration_dasheng.py`` /
``modeling_dasheng.py`` / ``feature_extraction_dasheng.py``.  The Python files are never imported or run
(no ``trust_remote_code``): only the JSON and the tensors are read.

* ``config.json`` (``DashengConfig``): ``model_type: "dasheng"``, ``architectures: ["DashengModel"]``,
  ``auto_map`` naming ``configuration_dasheng`` / ``modeling_dasheng``, ``name`` (``"dasheng-base"`` |
  ``"dasheng-0.6B"`` | ``"dasheng-1.2B"``, a size preset) and ``encoder_kwargs`` -- the
  ``AudioTransformerMAE_Encoder`` keyword arguments (``embed_dim``, ``depth``, ``num_heads``,
  ``target_length``, ``patch_size``, ``patch_stride``), i.e. the same names as the Zenodo ``.pt`` config.
* weights: ``DashengModel`` keeps the encoder as its ``encoder`` submodule, so every key is the original
  ``.pt`` key with ``encoder.`` in front; the ``front_end.*`` STFT/mel buffers are not stored (the front end
  lives in the feature extractor).  A fine-tuned ``DashengModel(outputdim=...)`` adds ``outputlayer.*``
  (ignored, as for the AudioSet checkpoint).
* ``preprocessor_config.json`` (``DashengFeatureExtractor``): ``sampling_rate``, ``n_fft``, ``win_size``,
  ``hop_size``, ``feature_size`` (mel bins), ``f_min``, ``f_max``, ``center``; the dB floor is a fixed
  ``top_db=120``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from sara.errors import CheckpointError
from sara.serialization import load_torch_checkpoint

__all__ = ["HF_WEIGHT_NAMES", "is_hf_dasheng_dir", "load_hf_dasheng", "official_config_from_hf", "official_keys"]

HF_WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")
ENCODER_PREFIX = "encoder."
HEAD_PREFIX = "outputlayer."
# DashengConfig(name=...) size presets; the saved ``encoder_kwargs`` take precedence over them
_PRESETS = {"dasheng-base": (768, 12, 12), "dasheng-0.6B": (1280, 32, 16), "dasheng-1.2B": (1536, 40, 24)}
# transformers bookkeeping that DashengConfig's kwargs merge can copy into ``encoder_kwargs``
_HF_KEYS = {"architectures", "auto_map", "torch_dtype", "dtype", "transformers_version", "_name_or_path",
            "model_type", "name", "loss", "encoder_kwargs", "outputdim", "return_dict", "output_hidden_states",
            "id2label", "label2id", "_attn_implementation_autoset"}
# preprocessor_config.json field -> official (AudioTransformerMAE_Encoder) config key
_FRONT_END_KEYS = {"n_fft": "n_fft", "win_size": "win_size", "hop_size": "hop_size", "feature_size": "n_mels",
                   "f_min": "f_min", "f_max": "f_max", "center": "center"}


def _read_json(path: Path) -> Any:
    """Parsed JSON, or None when unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def is_hf_dasheng_dir(path: str | Path) -> bool:
    """True if ``path/config.json`` names dasheng (``model_type``, ``architectures`` or ``auto_map``)."""
    cfg = _read_json(Path(path) / "config.json")
    if not isinstance(cfg, dict):
        return False
    names = [cfg.get("model_type"), *(cfg.get("architectures") or [])]
    auto_map = cfg.get("auto_map")
    names += list(auto_map.values()) if isinstance(auto_map, dict) else []
    return any(isinstance(n, str) and "dasheng" in n.lower() for n in names)


def _flatten_encoder_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``encoder_kwargs`` without transformers bookkeeping; a nested ``encoder_kwargs`` (left by re-saving a
    loaded config) is merged underneath, the outer values winning."""
    inner = kwargs.get("encoder_kwargs")
    out = _flatten_encoder_kwargs(inner) if isinstance(inner, Mapping) else {}
    out.update((k, v) for k, v in kwargs.items() if k not in _HF_KEYS)
    return out


def _front_end_kwargs(pre: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``preprocessor_config.json`` -> official front-end keys (``f_max: null`` = Nyquist)."""
    rate = pre.get("sampling_rate", 16000)
    if rate != 16000:
        raise CheckpointError(f"{source}: unsupported dasheng front end: sampling_rate={rate!r} (need 16000)")
    out = {ours: pre[theirs] for theirs, ours in _FRONT_END_KEYS.items() if theirs in pre}
    if "f_max" in out and out["f_max"] is None:
        out["f_max"] = rate // 2
    return out


def official_config_from_hf(config: Mapping[str, Any], preprocessor: Mapping[str, Any] | None,
                            source: str) -> dict[str, Any]:
    """``config.json`` (+ ``preprocessor_config.json``) -> a Zenodo-style official config dict.

    Sizes: the ``name`` preset, overridden by ``encoder_kwargs``; ``config_from_official`` then checks
    ``embed_dim`` / ``depth`` against the tensors.

    Raises:
        CheckpointError: ``encoder_kwargs`` not a dict, or options this implementation does not build.
    """
    kwargs = config.get("encoder_kwargs", {})
    if not isinstance(kwargs, Mapping):
        raise CheckpointError(f"{source}: config.json 'encoder_kwargs' is a {type(kwargs).__name__}, expected a dict")
    official: dict[str, Any] = {"target_length": 1008, "patch_size": [64, 4], "patch_stride": [64, 4]}
    if config.get("name") in _PRESETS:
        official.update(zip(("embed_dim", "depth", "num_heads"), _PRESETS[config["name"]], strict=True))
    official.update(_flatten_encoder_kwargs(kwargs))
    for key in ("init_bn", "pad_last"):
        if not official.pop(key, True):
            raise CheckpointError(f"{source}: unsupported dasheng layout: {key}=False")
    official.update(_front_end_kwargs(preprocessor or {}, source))
    return official


def official_keys(sd: Mapping[str, Tensor], source: str) -> dict[str, Tensor]:
    """``encoder.<key>`` -> ``<key>`` (the Zenodo names); ``outputlayer.*`` kept for the loader to drop.

    Raises:
        CheckpointError: keys outside ``encoder.`` / ``outputlayer.`` (named, one line).
    """
    unexpected = sorted(k for k in sd if not k.startswith((ENCODER_PREFIX, HEAD_PREFIX)))
    if unexpected:
        shown = ", ".join(unexpected[:6]) + (", ..." if len(unexpected) > 6 else "")
        raise CheckpointError(f"{source}: unknown transformers dasheng layout: unexpected keys [{shown}] "
                              f"({len(unexpected)}), expected 'encoder.*'")
    return {k.removeprefix(ENCODER_PREFIX): v for k, v in sd.items()}


def _weight_files(directory: Path) -> list[Path]:
    """The weight file(s) of a transformers dir: single file, else the shards of ``<name>.index.json``."""
    for name in HF_WEIGHT_NAMES:
        if (directory / name).is_file():
            return [directory / name]
    for name in HF_WEIGHT_NAMES:
        index = _read_json(directory / f"{name}.index.json")
        if isinstance(index, dict) and isinstance(index.get("weight_map"), dict):
            return [directory / shard for shard in sorted(set(index["weight_map"].values()))]
    raise CheckpointError(f"{directory}: transformers dasheng config.json but no "
                          f"{' / '.join(HF_WEIGHT_NAMES)} (or its .index.json) next to it")


def _read_weights(path: Path) -> dict[str, Tensor]:
    """Tensors of one safetensors / ``torch.save`` file (``weights_only`` unpickling, no code runs)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: weight shard listed in the index is missing")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    obj = load_torch_checkpoint(path)
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors")
    return {str(k): v for k, v in obj.items()}


def load_hf_dasheng(directory: str | Path, weights: str | Path | None = None,
                    ) -> tuple[dict[str, Tensor], dict[str, Any], str]:
    """A transformers dasheng dir -> ``(official state dict, official config, source)``.

    The results go to :meth:`SemanticEncoder.from_official_state_dict`; the state dict has Zenodo key
    names (e.g. ``patch_embed.proj.weight [D, 1, 64, 4]``, ``time_pos_embed [1, D, 1, L]``).

    Args:
        directory: the dir holding ``config.json``.
        weights: one weight file to read instead of the dir's own choice (``model.safetensors`` first).

    Raises:
        CheckpointError: unreadable config/weights, unexpected keys, or an unsupported configuration.
    """
    d = Path(directory)
    config = _read_json(d / "config.json")
    if not isinstance(config, dict):
        raise CheckpointError(f"{d / 'config.json'}: not a readable JSON object")
    pre = _read_json(d / "preprocessor_config.json")
    files = [Path(weights)] if weights is not None else _weight_files(d)
    source = f"{files[0] if len(files) == 1 else d} (transformers layout, 'encoder.' prefix stripped)"
    sd: dict[str, Tensor] = {}
    for f in files:
        sd.update(_read_weights(f))
    official = official_config_from_hf(config, pre if isinstance(pre, dict) else None, source)
    return official_keys(sd, source), official, source
