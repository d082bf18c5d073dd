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
from sara.outputs import (  # noqa: F401 - re-exported: the release writers' home
    check_output_file,
    write_bytes_atomically,
    write_output_atomically,
    write_text_atomically,
)

__all__ = [
    "FORMAT_VERSION",
    "PretrainedMixin",
    "check_output_file",
    "config_from_dict",
    "config_to_dict",
    "is_release_dir",
    "load_release",
    "load_torch_checkpoint",
    "read_json_object",
    "read_release_config",
    "release_config",
    "save_release",
    "strip_prefix",
    "upgrade_release_config",
    "write_bytes_atomically",
    "write_output_atomically",
    "write_text_atomically",
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


def config_from_dict(cls: type[C], data: Mapping[str, Any], *, require_all: bool = False) -> C:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and restoring tuples / nested configs.

    Every value is checked against its field's type hint (``int``, ``float``, ``bool``, ``str``,
    ``Literal``, ``X | None``, tuples, nested configs), so a wrong type is reported here, in one line,
    rather than as a failure deep inside model construction.

    Args:
        cls: the config dataclass.
        data: its fields (JSON-like).
        require_all: also reject missing keys (release configs are written complete; a missing key means
            the file was edited or truncated, and defaulting it would silently change the architecture).

    Raises:
        ConfigError: ``data`` is not a mapping, has unknown, missing (``require_all``) or wrongly typed keys,
            or holds a value the dataclass' ``__post_init__`` rejects.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown config keys {unknown}")
    missing = sorted(set(fields) - set(data))
    if require_all and missing:
        raise ConfigError(f"{cls.__name__}: missing config keys {missing}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _convert(cls.__name__, name, value, hints.get(name), require_all) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cls.__name__}: {exc}") from None


def _convert(owner: str, name: str, value: Any, hint: Any, require_all: bool) -> Any:
    """JSON value -> field value (nested configs, tuples), checked against ``hint``."""
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return config_from_dict(hint, value, require_all=require_all)
    if (origin is tuple or _optional_tuple(hint)) and isinstance(value, list):
        value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if hint is not None and not _matches(value, hint):
        raise ConfigError(f"{owner}: {name} must be {_describe(hint)}, got {value!r}")
    return value


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON-derived ``value`` fits type ``hint`` (unknown hints match anything)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, TypeVar):
        return True
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        return isinstance(value, tuple) and _tuple_matches(value, args)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return isinstance(value, hint)
    return True


def _tuple_matches(value: tuple, args: tuple) -> bool:
    if not args:
        return True
    if len(args) == 2 and args[1] is Ellipsis:
        return all(_matches(v, args[0]) for v in value)
    return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))


def _describe(hint: Any) -> str:
    """Readable name of a type hint (``int``, ``float | None``, ``one of ('a', 'b')``)."""
    if typing.get_origin(hint) is typing.Literal:
        return f"one of {typing.get_args(hint)}"
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _optional_tuple(hint: Any) -> bool:
    return any(typing.get_origin(a) is tuple for a in typing.get_args(hint))


# ---------------------------------------------------------------------------------- release format


def upgrade_release_config(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older ``config.json`` payload to :data:`FORMAT_VERSION` (the one place format changes go).

    A new field in a model config needs an entry here (``config_from_dict(..., require_all=True)`` rejects
    release configs that lack a field).
    """
    if not isinstance(data, dict):
        raise CheckpointError(f"config.json must hold a JSON object, not {type(data).__name__}")
    version = data.get("format_version")
    if version is None:
        raise CheckpointError("config.json has no 'format_version': not a sara release directory")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"config.json format_version must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"config.json format_version {version} is newer than this sara ({FORMAT_VERSION})")
    if not isinstance(data.get("class"), str):
        raise CheckpointError(f"config.json 'class' must be a string, got {data.get('class')!r}")
    if not isinstance(data.get("config"), dict):
        raise CheckpointError(f"config.json 'config' must be a JSON object, got {type(data.get('config')).__name__}")
    return data


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON file that must hold an object; :class:`CheckpointError` naming the file otherwise."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{p}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{p}: invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{p}: must hold a JSON object, not {type(data).__name__}")
    return data


def read_release_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The upgraded, checked ``config.json`` payload of a release directory (errors name the file)."""
    path = Path(directory) / CONFIG_NAME
    try:
        return upgrade_release_config(read_json_object(path))
    except CheckpointError as exc:
        msg = str(exc)
        raise CheckpointError(msg if msg.startswith(str(path)) else f"{path}: {msg.removeprefix('config.json ')}") \
            from None


def is_release_dir(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` holds a sara release: ``config.json`` + ``model.safetensors``, the config either
    carrying ``format_version`` or being unreadable / not a JSON object.

    The unreadable case counts as a release so that loaders report the broken ``config.json`` (via
    :func:`load_release`) instead of falling back to guessing the architecture from the weights; a readable
    config without ``format_version`` (e.g. a transformers directory) is not a release.
    """
    p = Path(path)
    if not (p / CONFIG_NAME).is_file() or not (p / WEIGHTS_NAME).is_file():
        return False
    try:
        data = json.loads((p / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return True
    return not isinstance(data, dict) or "format_version" in data


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
    payload = read_release_config(p)
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
        model = cls(release_config(cls.config_class, payload, directory))  # type: ignore[call-arg]
        load_state_dict_strict(model, state, source=str(directory))
        return model.to(map_location).eval()


def release_config(config_class: type[C], payload: Mapping[str, Any], directory: str | os.PathLike[str]) -> C:
    """``payload["config"]`` as ``config_class``, complete and well-typed, else :class:`CheckpointError`."""
    try:
        return config_from_dict(config_class, payload["config"], require_all=True)
    except ConfigError as exc:
        raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: {exc}") from None


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
