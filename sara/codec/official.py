"""Loading audiocraft's exported EnCodec (``compression_state_dict.bin``) without audiocraft or OmegaConf.

The file (``audiocraft/utils/export.py`` ``export_encodec``) is a ``torch.save``d dict
``{"best_state": state_dict, "xp.cfg": <yaml string>, "version": str, "exported": True}``.  The yaml is the
full, *unresolved* hydra composition of the training run: the keys this loader needs (``sample_rate``,
``channels``, ``compression_model``, ``encodec.*``, ``seanet.*``, ``rvq.*``) may be ``${...}`` references
(``encodec.sample_rate: ${sample_rate}``, ``seanet.causal: ${encodec.causal}``), and unrelated keys may hold
environment lookups (``${oc.env:...}``) that cannot be resolved here -- so references are resolved lazily,
only for the keys read.  Missing SEANet/RVQ keys take the defaults of audiocraft's constructors
(``SEANetEncoder``, ``ResidualVectorQuantizer``), as ``builders.get_compression_model`` would.

:func:`save_audiocraft_codec` writes the same packaging for a sara codec (a minimal, resolved ``xp.cfg`` with
the keys ``builders.get_compression_model`` reads), so a codec trained here can be used by audiocraft.

Settings this implementation does not have (renormalisation, other activations or norms, a final
activation, different encoder/decoder overrides) raise a one-line :class:`~sara.errors.CheckpointError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from sara.codec.config import CodecConfig
from sara.errors import CheckpointError
from sara.serialization import load_state_dict_strict, load_torch_checkpoint

__all__ = ["COMPRESSION_FILE", "LazyConfig", "codec_config_from_xp", "load_audiocraft_codec",
           "read_compression_package", "save_audiocraft_codec", "xp_cfg_from_config"]

COMPRESSION_FILE = "compression_state_dict.bin"
_REF = re.compile(r"\$\{([^${}]*)\}")
_MISSING = object()

# audiocraft constructor defaults (SEANetEncoder / SEANetDecoder / ResidualVectorQuantizer signatures),
# used for keys absent from an older or trimmed xp.cfg
SEANET_DEFAULTS: dict[str, Any] = {
    "channels": 1, "dimension": 128, "n_filters": 32, "n_residual_layers": 3, "ratios": [8, 5, 4, 2],
    "activation": "ELU", "activation_params": {"alpha": 1.0}, "norm": "none", "norm_params": {},
    "kernel_size": 7, "last_kernel_size": 7, "residual_kernel_size": 3, "dilation_base": 2, "causal": False,
    "pad_mode": "reflect", "true_skip": True, "compress": 2, "lstm": 0, "disable_norm_outer_blocks": 0,
    "trim_right_ratio": 1.0, "final_activation": None, "final_activation_params": None,
}
RVQ_DEFAULTS: dict[str, Any] = {
    "n_q": 8, "q_dropout": False, "bins": 1024, "decay": 0.99, "kmeans_init": True, "kmeans_iters": 10,
    "threshold_ema_dead_code": 2, "orthogonal_reg_weight": 0.0, "orthogonal_reg_active_codes_only": False,
    "orthogonal_reg_max_codes": None,
}


class LazyConfig:
    """Dotted-key access to a parsed hydra yaml, resolving ``${a.b}`` references only when read.

    Args:
        root: the ``yaml.safe_load`` result (a mapping).
        source: file name for error messages.
    """

    def __init__(self, root: Mapping[str, Any], source: str) -> None:
        self.root, self.source = root, source

    def _lookup(self, dotted: str) -> Any:
        node: Any = self.root
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise KeyError(dotted)
            node = node[part]
        return node

    def get(self, dotted: str, default: Any = _MISSING) -> Any:
        """The resolved value at ``dotted`` (nested mappings/lists resolved recursively).

        Raises:
            CheckpointError: missing key without default, unresolvable reference, ``???`` value.
        """
        try:
            value = self._lookup(dotted)
        except KeyError:
            if default is _MISSING:
                raise CheckpointError(f"{self.source}: xp.cfg has no key {dotted!r}") from None
            return default
        return self._resolve(value, (dotted,))

    def _resolve(self, value: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(value, Mapping):
            return {k: self._resolve(v, seen + (f"{seen[-1]}.{k}",)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, seen) for v in value]
        if not isinstance(value, str):
            return value
        if value == "???":
            raise CheckpointError(f"{self.source}: xp.cfg key {seen[-1]!r} is a missing mandatory value (???)")
        whole = _REF.fullmatch(value.strip())
        if whole:
            return self._reference(whole.group(1), seen)
        return _REF.sub(lambda m: str(self._reference(m.group(1), seen)), value)

    def _reference(self, expr: str, seen: tuple[str, ...]) -> Any:
        key = expr.strip()
        if ":" in key or key.startswith(".") or not key:
            raise CheckpointError(f"{self.source}: xp.cfg key {seen[-1]!r} needs ${{{expr}}}, which cannot be "
                                  "resolved without OmegaConf resolvers")
        if key in seen:
            raise CheckpointError(f"{self.source}: xp.cfg has a reference cycle through {key!r}")
        try:
            target = self._lookup(key)
        except KeyError:
            raise CheckpointError(f"{self.source}: xp.cfg key {seen[-1]!r} refers to missing ${{{key}}}") from None
        return self._resolve(target, seen + (key,))


def _section(cfg: LazyConfig, name: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` updated by the resolved ``cfg[name]``; unknown keys are refused."""
    values = cfg.get(name, {})
    if not isinstance(values, Mapping):
        raise CheckpointError(f"{cfg.source}: xp.cfg {name!r} is not a mapping")
    unknown = sorted(set(values) - set(defaults) - {"encoder", "decoder"})
    if unknown:
        raise CheckpointError(f"{cfg.source}: xp.cfg {name} has keys this loader does not know: {unknown}")
    return {**defaults, **values}


def _seanet_kwargs(cfg: LazyConfig) -> dict[str, Any]:
    """Shared SEANet kwargs after applying and checking the ``encoder`` / ``decoder`` overrides."""
    seanet = _section(cfg, "seanet", SEANET_DEFAULTS)
    enc = dict(seanet.pop("encoder", None) or {})
    dec = dict(seanet.pop("decoder", None) or {})
    for side, overrides in (("encoder", enc), ("decoder", dec)):
        for key, value in overrides.items():
            if key not in SEANET_DEFAULTS:
                raise CheckpointError(f"{cfg.source}: xp.cfg seanet.{side} has an unknown key {key!r}")
            if key not in ("trim_right_ratio", "final_activation", "final_activation_params") and value != seanet[key]:
                raise CheckpointError(f"{cfg.source}: seanet.{side}.{key}={value!r} differs from the other side; "
                                      "separate encoder/decoder settings are not supported")
    seanet.update(dec)  # decoder-only keys (trim ratio, final activation)
    return seanet


def _check_supported(seanet: Mapping[str, Any], encodec: Mapping[str, Any], source: str) -> None:
    problems = []
    if seanet["activation"] != "ELU":
        problems.append(f"activation {seanet['activation']!r} (only ELU)")
    if seanet["norm"] not in ("weight_norm", "none"):
        problems.append(f"norm {seanet['norm']!r} (only weight_norm / none)")
    if seanet["final_activation"] is not None:
        problems.append(f"final_activation {seanet['final_activation']!r}")
    if encodec.get("renormalize", False) or encodec.get("renorm", False):
        problems.append("renormalize: true")
    if encodec.get("autoencoder", "seanet") != "seanet" or encodec.get("quantizer", "rvq") != "rvq":
        problems.append(f"autoencoder/quantizer {encodec.get('autoencoder')}/{encodec.get('quantizer')}")
    if problems:
        raise CheckpointError(f"{source}: unsupported EnCodec settings: {'; '.join(problems)}")


def _number(value: Any, kind: type, key: str, source: str) -> Any:
    """``int`` / ``float`` / ``bool`` from a yaml scalar (PyYAML reads ``1e-5`` as a string)."""
    try:
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        return kind(value)
    except (TypeError, ValueError):
        raise CheckpointError(f"{source}: xp.cfg {key}={value!r} is not a valid {kind.__name__}") from None


def codec_config_from_xp(cfg: LazyConfig) -> CodecConfig:
    """The :class:`CodecConfig` an audiocraft ``xp.cfg`` describes (see the module docstring)."""
    src = cfg.source
    model = cfg.get("compression_model", "encodec")
    if model != "encodec":
        raise CheckpointError(f"{src}: compression_model {model!r} is not an EnCodec")
    encodec = cfg.get("encodec", {})
    seanet = _seanet_kwargs(cfg)
    _check_supported(seanet, encodec, src)
    rvq = _section(cfg, "rvq", RVQ_DEFAULTS)
    sample_rate = encodec.get("sample_rate", cfg.get("sample_rate"))
    ints = {k: _number(seanet[k], int, f"seanet.{k}", src) for k in (
        "channels", "dimension", "n_filters", "n_residual_layers", "kernel_size", "last_kernel_size",
        "residual_kernel_size", "dilation_base", "compress", "lstm", "disable_norm_outer_blocks")}
    try:
        return CodecConfig(
            sample_rate=_number(sample_rate, int, "encodec.sample_rate", src), **ints,
            ratios=tuple(_number(r, int, "seanet.ratios", src) for r in seanet["ratios"]),
            activation_alpha=_number((seanet["activation_params"] or {}).get("alpha", 1.0), float, "alpha", src),
            norm=seanet["norm"], causal=_number(seanet["causal"], bool, "seanet.causal", src),
            pad_mode=seanet["pad_mode"], true_skip=_number(seanet["true_skip"], bool, "seanet.true_skip", src),
            trim_right_ratio=_number(seanet["trim_right_ratio"], float, "trim_right_ratio", src),
            num_codebooks=_number(rvq["n_q"], int, "rvq.n_q", src), bins=_number(rvq["bins"], int, "rvq.bins", src),
            decay=_number(rvq["decay"], float, "rvq.decay", src),
            kmeans_init=_number(rvq["kmeans_init"], bool, "rvq.kmeans_init", src),
            kmeans_iters=_number(rvq["kmeans_iters"], int, "rvq.kmeans_iters", src),
            threshold_ema_dead_code=_number(rvq["threshold_ema_dead_code"], float, "rvq.threshold", src),
        )
    except ValueError as exc:
        raise CheckpointError(f"{src}: xp.cfg describes an invalid codec: {exc}") from None


def _compression_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / COMPRESSION_FILE
    if not p.is_file():
        raise CheckpointError(f"{p}: no such file (expected a sara codec release or an audiocraft {COMPRESSION_FILE})")
    return p


def read_compression_package(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], LazyConfig]:
    """``(best_state, xp.cfg)`` of an audiocraft compression package (file or directory), read safely.

    Raises:
        CheckpointError: unreadable file, a ``pretrained`` reference package, no ``best_state`` / ``xp.cfg``.
    """
    p = _compression_file(path)
    pkg = load_torch_checkpoint(p)
    if not isinstance(pkg, Mapping):
        raise CheckpointError(f"{p}: not an audiocraft compression package (a {type(pkg).__name__})")
    if "pretrained" in pkg:
        raise CheckpointError(f"{p}: refers to the external model {pkg['pretrained']!r} instead of holding weights")
    missing = [k for k in ("best_state", "xp.cfg") if k not in pkg]
    if missing:
        raise CheckpointError(f"{p}: not an audiocraft compression package: missing {missing}")
    state = pkg["best_state"]
    if isinstance(state, Mapping) and set(state) == {"model"}:  # a solver checkpoint's nesting
        state = state["model"]
    return dict(state), LazyConfig(_parse_yaml(pkg["xp.cfg"], p), str(p))


def _parse_yaml(text: Any, p: Path) -> Mapping[str, Any]:
    if isinstance(text, Mapping):
        return text
    try:
        root = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{p}: xp.cfg is not readable yaml ({str(exc).splitlines()[0]})") from None
    if not isinstance(root, Mapping):
        raise CheckpointError(f"{p}: xp.cfg is not a yaml mapping")
    return root


def load_audiocraft_codec(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> Any:
    """Build an :class:`~sara.codec.model.EncodecCodec` from an audiocraft package and load it strictly.

    Returns:
        The codec in eval mode on ``map_location``.
    """
    from sara.codec.model import EncodecCodec

    state, cfg = read_compression_package(path)
    codec = EncodecCodec(codec_config_from_xp(cfg))
    load_state_dict_strict(codec, state, source=cfg.source)
    return codec.to(map_location).eval()


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def xp_cfg_from_config(cfg: CodecConfig) -> dict[str, Any]:
    """The ``xp.cfg`` mapping audiocraft's ``builders.get_compression_model`` needs to rebuild ``cfg``
    (keys of ``config/model/encodec/default.yaml``; values resolved, no interpolations)."""
    seanet = {
        "dimension": cfg.dimension, "channels": cfg.channels, "causal": cfg.causal, "n_filters": cfg.n_filters,
        "n_residual_layers": cfg.n_residual_layers, "ratios": list(cfg.ratios), "activation": "ELU",
        "activation_params": {"alpha": cfg.activation_alpha}, "norm": cfg.norm, "norm_params": {},
        "kernel_size": cfg.kernel_size, "residual_kernel_size": cfg.residual_kernel_size,
        "last_kernel_size": cfg.last_kernel_size, "dilation_base": cfg.dilation_base, "pad_mode": cfg.pad_mode,
        "true_skip": cfg.true_skip, "compress": cfg.compress, "lstm": cfg.lstm,
        "disable_norm_outer_blocks": cfg.disable_norm_outer_blocks,
        "decoder": {"trim_right_ratio": cfg.trim_right_ratio, "final_activation": None,
                    "final_activation_params": None},
        "encoder": {},
    }
    rvq = {"n_q": cfg.num_codebooks, "q_dropout": False, "bins": cfg.bins, "decay": cfg.decay,
           "kmeans_init": cfg.kmeans_init, "kmeans_iters": cfg.kmeans_iters,
           "threshold_ema_dead_code": _plain(cfg.threshold_ema_dead_code), "orthogonal_reg_weight": 0.0,
           "orthogonal_reg_active_codes_only": False}
    encodec = {"autoencoder": "seanet", "quantizer": "rvq", "sample_rate": cfg.sample_rate,
               "channels": cfg.channels, "causal": cfg.causal, "renormalize": False}
    return {"device": "cpu", "dtype": "float32", "sample_rate": cfg.sample_rate, "channels": cfg.channels,
            "compression_model": "encodec", "encodec": encodec, "seanet": seanet, "rvq": rvq, "no_quant": {}}


def save_audiocraft_codec(codec: Any, path: str | os.PathLike[str], *, version: str = "sara") -> Path:
    """Write ``codec`` as audiocraft's ``export_encodec`` does (``path`` is a file, or a directory that gets
    ``compression_state_dict.bin``); returns the file."""
    p = Path(path)
    if p.is_dir() or not p.suffix:
        p = p / COMPRESSION_FILE
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in codec.state_dict().items()}
    text = yaml.safe_dump(xp_cfg_from_config(codec.config), sort_keys=False)
    torch.save({"best_state": state, "xp.cfg": text, "version": version, "exported": True}, p)
    return p
