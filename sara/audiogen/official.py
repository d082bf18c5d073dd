"""Reading audiocraft's AudioGen LM package (``state_dict.bin``) without audiocraft.

Packaging (``audiocraft/utils/export.py``; ``audiocraft/models/loaders.py`` reads it): a ``torch.save``d dict
``{"best_state": state_dict, "xp.cfg": <Hydra config as a YAML string>, "version": str, "exported": True}``.
The YAML is the full, unresolved Hydra composition (interpolations such as ``${sample_rate}``, environment
lookups in unrelated keys), so it is parsed with ``yaml.safe_load`` and only the keys the LM needs are resolved,
lazily: ``lm_model``, ``transformer_lm.*``, ``codebooks_pattern.*``, ``fuser.*``, ``conditioners.description.*``,
``classifier_free_guidance.*``.  An audiocraft model directory holds this file beside
``compression_state_dict.bin`` (the EnCodec; read by :mod:`sara.codec`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from sara.audiogen.conditioning import T5_DIMS
from sara.audiogen.config import LMConfig
from sara.audiogen.lm import TokenLM
from sara.errors import CheckpointError
from sara.serialization import load_state_dict_strict, load_torch_checkpoint

__all__ = ["CODEC_FILE", "LM_FILE", "AudiocraftLM", "is_audiocraft_dir", "load_audiocraft_lm",
           "lm_config_from_xp", "read_audiocraft_lm"]

LM_FILE = "state_dict.bin"
CODEC_FILE = "compression_state_dict.bin"
_MISSING = object()
_INTERPOLATION = re.compile(r"^\$\{([A-Za-z0-9_.]+)\}$")

# (key, required value): the LM variants sara builds; anything else is refused by name
_REQUIRED: tuple[tuple[str, Any], ...] = (
    ("lm_model", "transformer_lm"),
    ("transformer_lm.norm_first", True),
    ("transformer_lm.norm", "layer_norm"),
    ("transformer_lm.activation", "gelu"),
    ("transformer_lm.causal", True),
    ("transformer_lm.positional_embedding", "sin"),
    ("transformer_lm.layer_scale", None),
    ("transformer_lm.past_context", None),
    ("transformer_lm.qk_layer_norm", False),
    ("transformer_lm.qk_layer_norm_cross", False),
    ("transformer_lm.kv_repeat", 1),
    ("codebooks_pattern.modeling", "delay"),
    ("codebooks_pattern.delay.flatten_first", 0),
    ("codebooks_pattern.delay.empty_initial", 0),
    ("fuser.cross", ["description"]),
    ("fuser.sum", []),
    ("fuser.prepend", []),
    ("fuser.input_interpolate", []),
    ("fuser.cross_attention_pos_emb", False),
    ("conditioners.description.model", "t5"),
)
# keys whose absence means audiocraft's default (config/model/lm/default.yaml, conditioners.py)
_DEFAULTS: dict[str, Any] = {
    "transformer_lm.hidden_scale": 4, "transformer_lm.layer_scale": None, "transformer_lm.past_context": None,
    "transformer_lm.qk_layer_norm": False, "transformer_lm.qk_layer_norm_cross": False,
    "transformer_lm.kv_repeat": 1, "transformer_lm.max_period": 10_000, "transformer_lm.positional_scale": 1.0,
    "transformer_lm.bias_ff": True, "transformer_lm.bias_attn": True, "transformer_lm.bias_proj": True,
    "transformer_lm.activation": "gelu", "transformer_lm.norm": "layer_norm", "transformer_lm.causal": True,
    "transformer_lm.positional_embedding": "sin", "fuser.input_interpolate": [],
    "fuser.cross_attention_pos_emb": False, "codebooks_pattern.delay.flatten_first": 0,
    "codebooks_pattern.delay.empty_initial": 0,
}


@dataclass
class AudiocraftLM:
    """The parts of an audiocraft LM package sara uses.

    Attributes:
        config: the LM hyper-parameters read from ``xp.cfg``.
        state: ``best_state`` (audiocraft key names).
        t5_name: the T5 the conditioner loads by name (``conditioners.description.t5.name``).
        version: the audiocraft version that exported it.
    """

    config: LMConfig
    state: dict[str, Tensor]
    t5_name: str
    version: str | None = None


def is_audiocraft_dir(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a directory holding audiocraft's ``state_dict.bin``."""
    return (Path(path) / LM_FILE).is_file()


def read_audiocraft_lm(path: str | os.PathLike[str]) -> AudiocraftLM:
    """Read ``state_dict.bin`` (a file, or the directory holding it) and its config.

    Raises:
        CheckpointError: not the audiocraft packaging, an unreadable config, or an LM variant sara does not build.
    """
    file = Path(path) / LM_FILE if Path(path).is_dir() else Path(path)
    package = load_torch_checkpoint(file)
    if not isinstance(package, Mapping) or "best_state" not in package or "xp.cfg" not in package:
        found = sorted(package)[:6] if isinstance(package, Mapping) else type(package).__name__
        raise CheckpointError(f"{file}: not an audiocraft LM package (expected 'best_state' and 'xp.cfg'; found {found})")
    cfg = _parse_xp_cfg(package["xp.cfg"], file)
    config = lm_config_from_xp(cfg, str(file))
    state = dict(package["best_state"])
    # audiocraft without memory_efficient/custom attention wraps nn.MultiheadAttention as ``.mha``
    state = {k.replace(".self_attn.mha.", ".self_attn.").replace(".cross_attention.mha.", ".cross_attention."): v
             for k, v in state.items()}
    t5_name = str(_get(cfg, "conditioners.description.t5.name", str(file)))
    return AudiocraftLM(config, state, t5_name, package.get("version"))


def load_audiocraft_lm(path: str | os.PathLike[str]) -> tuple[TokenLM, str]:
    """Build the :class:`TokenLM` of an audiocraft package and load it strictly.

    Returns:
        ``(lm in eval mode, t5_name)``.
    """
    package = read_audiocraft_lm(path)
    lm = TokenLM(package.config)
    load_state_dict_strict(lm, package.state, source=str(path))
    return lm.eval(), package.t5_name


def _parse_xp_cfg(text: Any, file: Path) -> dict[str, Any]:
    """``yaml.safe_load`` of the stored config (interpolations stay strings until :func:`_get`)."""
    import yaml

    if isinstance(text, Mapping):  # some exports keep the config as a plain dict
        return dict(text)
    try:
        cfg = yaml.safe_load(str(text))
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{file}: 'xp.cfg' is not readable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{file}: 'xp.cfg' is not a mapping")
    return cfg


def _lookup(cfg: Mapping[str, Any], key: str) -> Any:
    """The raw value at dotted ``key`` or ``_MISSING``."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _get(cfg: Mapping[str, Any], key: str, source: str, depth: int = 0) -> Any:
    """``cfg[key]`` (dotted), following absolute ``${other.key}`` interpolations; defaults from :data:`_DEFAULTS`.

    Raises:
        CheckpointError: missing key, or an interpolation sara cannot resolve (resolvers like ``${oc.env:X}``).
    """
    value = _lookup(cfg, key)
    if value is _MISSING:
        if key in _DEFAULTS:
            return _DEFAULTS[key]
        raise CheckpointError(f"{source}: 'xp.cfg' has no {key!r}")
    if isinstance(value, str) and "${" in value:
        match = _INTERPOLATION.match(value.strip())
        if match is None or depth > 10:
            raise CheckpointError(f"{source}: cannot resolve {key!r} = {value!r} in 'xp.cfg'")
        return _get(cfg, match.group(1), source, depth + 1)
    return value


def _delays(cfg: Mapping[str, Any], n_q: int, source: str) -> tuple[int, ...]:
    """``codebooks_pattern.delay.delays`` (``DelayedPatternProvider`` default: ``range(n_q)``)."""
    if _lookup(cfg, "codebooks_pattern.delay.delays") in (_MISSING, None):
        return tuple(range(n_q))
    return tuple(int(d) for d in _get(cfg, "codebooks_pattern.delay.delays", source))


def lm_config_from_xp(cfg: Mapping[str, Any], source: str = "xp.cfg") -> LMConfig:
    """The :class:`LMConfig` of an audiocraft Hydra config (checks that it is the AudioGen variant).

    Raises:
        CheckpointError: a required key is missing or has a value sara does not implement (named).
    """
    for key, expected in _REQUIRED:
        value = _get(cfg, key, source)
        if value != expected:
            raise CheckpointError(f"{source}: unsupported {key} = {value!r} (sara builds {expected!r})")
    t5_name = _get(cfg, "conditioners.description.t5.name", source)
    if t5_name not in T5_DIMS:
        raise CheckpointError(f"{source}: unknown T5 conditioner {t5_name!r} (audiocraft knows {sorted(T5_DIMS)})")
    lm = {k: _get(cfg, f"transformer_lm.{k}", source) for k in (
        "dim", "num_heads", "num_layers", "hidden_scale", "n_q", "card", "max_period", "positional_scale",
        "bias_ff", "bias_attn", "bias_proj")}
    guidance = {k: _get(cfg, f"classifier_free_guidance.{k}", source) for k in ("training_dropout", "inference_coef")}
    try:
        return LMConfig(
            dim=int(lm["dim"]), num_heads=int(lm["num_heads"]), num_layers=int(lm["num_layers"]),
            hidden_scale=float(lm["hidden_scale"]), n_q=int(lm["n_q"]), card=int(lm["card"]),
            delays=_delays(cfg, int(lm["n_q"]), source),
            text_dim=T5_DIMS[t5_name], max_period=float(lm["max_period"]),
            positional_scale=float(lm["positional_scale"]), bias_ff=bool(lm["bias_ff"]),
            bias_attn=bool(lm["bias_attn"]), bias_proj=bool(lm["bias_proj"]),
            cfg_dropout=float(guidance["training_dropout"]), cfg_coef=float(guidance["inference_coef"]))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: invalid LM config in 'xp.cfg' ({exc})") from None
