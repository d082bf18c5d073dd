"""Release artifacts and safe checkpoint reading.

A *release directory* is what ``save_pretrained`` writes and ``from_pretrained`` reads::

    <dir>/config.json        {"format_version": 1, "class": "SemanticVocoder", "config": {...model config...}}
    <dir>/model.safetensors  the weights (strictly loaded)
    <dir>/README.md          the model card (optional, written by the exporter)

``config.json`` holds the model config only -- never a training config, never an import path.  Format
changes go through :func:`upgrade_release_config`.  Official pickled ``.pt`` checkpoints are read with
:func:`load_torch_checkpoint`, which never executes code from the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import tempfile
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from sara.errors import CheckpointError, ConfigError

__all__ = [
    "FORMAT_VERSION",
    "PretrainedMixin",
    "config_from_dict",
    "config_to_dict",
    "is_release_dir",
    "load_release",
    "load_torch_checkpoint",
    "save_release",
    "strip_prefix",
    "upgrade_release_config",
]

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

C = TypeVar("C")


# ------------------------------------------------------------------------------------------ configs


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass config -> JSON-ready dict (tuples become lists; nested dataclasses recurse)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            value = config_to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def config_from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and restoring tuples / nested configs.

    Raises:
        ConfigError: unknown keys, or a value the dataclass' ``__post_init__`` rejects.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown config keys {unknown}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints.get(name)
        origin = typing.get_origin(hint)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
            value = config_from_dict(hint, value)
        elif (origin is tuple or _optional_tuple(hint)) and isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from None


def _optional_tuple(hint: Any) -> bool:
    return any(typing.get_origin(a) is tuple for a in typing.get_args(hint))


# ---------------------------------------------------------------------------------- release format


def upgrade_release_config(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older ``config.json`` payload to :data:`FORMAT_VERSION` (the one place format changes go)."""
    version = data.get("format_version")
    if version is None:
        raise CheckpointError("config.json has no 'format_version': not a sara release directory")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"config.json format_version {version} is newer than this sara ({FORMAT_VERSION})")
    return data


def is_release_dir(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` holds a sara release (``config.json`` with ``format_version`` + ``model.safetensors``)."""
    p = Path(path)
    if not (p / CONFIG_NAME).is_file() or not (p / WEIGHTS_NAME).is_file():
        return False
    try:
        return "format_version" in json.loads((p / CONFIG_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        return False


def save_release(
    directory: str | os.PathLike[str],
    class_name: str,
    config: Mapping[str, Any],
    state_dict: Mapping[str, Tensor],
    *,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a release directory atomically (a temp dir renamed into place; existing files replaced).

    Args:
        directory: target directory.
        class_name: the model class recorded as ``"class"``.
        config: the model config dict.
        state_dict: weights; tensors are made contiguous and de-aliased.
        extra: additional top-level JSON entries (e.g. ``{"components": {...}}`` for pipelines).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"format_version": FORMAT_VERSION, "class": class_name, "config": dict(config), **(extra or {})}
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out))
    try:
        save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        (tmp / CONFIG_NAME).write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
        for name in (WEIGHTS_NAME, CONFIG_NAME):
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load_release(directory: str | os.PathLike[str], expected_class: str | None = None) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Read a release directory.

    Returns:
        ``(payload, state_dict)`` where ``payload`` is the upgraded ``config.json`` content.

    Raises:
        CheckpointError: missing files, wrong class, or unreadable weights.
    """
    p = Path(directory)
    if not (p / CONFIG_NAME).is_file():
        raise CheckpointError(f"{p}: no {CONFIG_NAME} (expected a sara release directory)")
    if not (p / WEIGHTS_NAME).is_file():
        raise CheckpointError(f"{p}: no {WEIGHTS_NAME} (expected a sara release directory)")
    try:
        payload = upgrade_release_config(json.loads((p / CONFIG_NAME).read_text()))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{p / CONFIG_NAME}: invalid JSON ({exc})") from None
    if expected_class is not None and payload.get("class") != expected_class:
        raise CheckpointError(f"{p}: holds a {payload.get('class')!r}, not a {expected_class!r}")
    try:
        state = load_file(str(p / WEIGHTS_NAME))
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise CheckpointError(f"{p / WEIGHTS_NAME}: cannot read weights ({exc})") from None
    return payload, state


class PretrainedMixin:
    """``save_pretrained`` / release loading for modules built from a frozen config dataclass.

    Subclasses set ``config_class`` and keep their config in ``self.config``.  Non-persistent buffers
    (windows, filterbanks) are rebuilt from the config and never stored.
    """

    config_class: ClassVar[type]
    config: Any

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` + ``model.safetensors`` to ``directory``."""
        assert isinstance(self, nn.Module)
        return save_release(directory, type(self).__name__, config_to_dict(self.config), self.state_dict())

    @classmethod
    def from_release(cls, directory: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> Any:
        """Build the module from a release directory and load its weights strictly."""
        payload, state = load_release(directory, cls.__name__)
        model = cls(config_from_dict(cls.config_class, payload["config"]))  # type: ignore[call-arg]
        load_state_dict_strict(model, state, source=str(directory))
        return model.to(map_location).eval()


def load_state_dict_strict(model: nn.Module, state: Mapping[str, Tensor], *, source: str) -> None:
    """``load_state_dict(strict=True)`` whose failure is a one-line :class:`CheckpointError` naming the keys."""
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: unknown checkpoint layout for {type(model).__name__}: "
            f"missing keys {_abbrev(missing)}, unexpected keys {_abbrev(unexpected)}"
        )
    try:
        model.load_state_dict(dict(state), strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        detail = next((ln.strip() for ln in first if "size mismatch" in ln), first[0] if first else "")
        raise CheckpointError(f"{source}: weights do not fit {type(model).__name__}: {detail}") from None


def _abbrev(keys: list[str], limit: int = 6) -> str:
    if not keys:
        return "[]"
    shown = ", ".join(keys[:limit])
    return f"[{shown}{', ...' if len(keys) > limit else ''}] ({len(keys)})"


def strip_prefix(state: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Keys starting with ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


# ------------------------------------------------------------------------------ pickled checkpoints

# Plain, non-executing references that official checkpoints' config dicts are known to contain
# (dasheng stores e.g. ``norm_layer=functools.partial(nn.LayerNorm, eps=1e-6)``).  Allowing these lets the
# weights-only unpickler rebuild the *references*; nothing is called except ``functools.partial``'s
# constructor, which only stores its arguments.
def _safe_globals() -> list[Any]:
    import functools

    return [functools.partial, nn.LayerNorm, nn.GELU, nn.Identity, nn.SiLU, nn.ReLU, nn.BatchNorm2d]


def load_torch_checkpoint(path: str | os.PathLike[str], *, inert_fallback: bool = False) -> Any:
    """Read a pickled PyTorch checkpoint without executing code from it.

    Uses ``torch.load(weights_only=True)`` with a small allow-list of harmless globals.  Anything else
    (custom classes, arbitrary callables) is refused with a :class:`CheckpointError` -- unless
    ``inert_fallback`` is set: then the file is re-read with an unpickler that resolves only torch's
    weights-only allow-list and turns every other class or callable into an inert data holder
    (:class:`_Inert`), so training-state extras (e.g. icefall's ``AttributeDict`` of ``PosixPath``) load
    as data next to the tensors, and a malicious ``__reduce__`` builds a harmless object instead of running.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if inert_fallback:
            return _load_inert(p)
        msg = str(exc).splitlines()[0] if str(exc) else "unsupported content"
        raise CheckpointError(f"{p}: refused to unpickle (it needs code execution): {msg}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{p}: not a readable PyTorch checkpoint ({str(exc).splitlines()[0] if str(exc) else exc!r})") from None


class _Inert(dict):
    """Stand-in for any class a checkpoint references that is not a tensor building block: it keeps its
    constructor arguments and state as data and runs no code (Flow2GAN-style checkpoints pickle their
    training ``params`` as an ``AttributeDict`` holding ``pathlib`` paths, which ``weights_only`` refuses)."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _InertUnpickler(pickle.Unpickler):
    """Resolves only torch's weights-only allow-list; every other global becomes an inert :class:`_Inert`."""

    def find_class(self, module: str, name: str) -> Any:
        from torch._weights_only_unpickler import _get_allowed_globals

        full = f"{module}.{name}"
        allowed = _get_allowed_globals()
        if full in allowed:
            return allowed[full]
        return type(name, (_Inert,), {"qualname": full})


_INERT_PICKLE = types.ModuleType("sara_inert_pickle")
_INERT_PICKLE.Unpickler = _InertUnpickler  # type: ignore[attr-defined]
# torch reads the legacy format's header pickles through ``pickle_module.load``: it must be inert too
_INERT_PICKLE.load = lambda f, **kwargs: _InertUnpickler(f, **kwargs).load()  # type: ignore[attr-defined]


def _load_inert(path: Path) -> Any:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False, pickle_module=_INERT_PICKLE)
    except Exception as exc:  # noqa: BLE001 - any failure here is an unreadable file for the user
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({str(exc).splitlines()[0]})") from None
