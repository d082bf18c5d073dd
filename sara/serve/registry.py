"""The models a server offers: names mapped to directories, loaded on first use (one lock per model).

A request names a model only by one of these names, so no request can make the server open a path.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sara.errors import ConfigError
from sara.serve.backends import Backend, make_backend

__all__ = ["ModelRegistry", "resolve_model"]


def resolve_model(spec: str) -> tuple[str, Path]:
    """``(name, directory)`` for a bundled model name (``sara-demo``...) or a model directory.

    Raises:
        ConfigError: neither a bundled model nor an existing directory.
    """
    from sara.pretrained import BUNDLED_DIR, BUNDLED_NAMES

    if spec in BUNDLED_NAMES:
        path = BUNDLED_DIR / spec
        if not (path / "config.json").is_file():
            raise ConfigError(f"--model {spec}: the bundled model is not installed")
        return spec, path
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise ConfigError(f"--model {spec}: not a bundled model ({', '.join(BUNDLED_NAMES)}) nor a directory")
    return path.resolve().name, path.resolve()


@dataclass
class _Entry:
    source: Path | Backend
    backend: Backend | None = None
    kind: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelRegistry:
    """Named models, loaded lazily on ``device``; the first name is the default.

    Args:
        models: name -> model directory, or an already built :class:`Backend` (tests, embedding).
        device: torch device for the models loaded from directories.
        dtype, compile: compute dtype and compilation of their networks (``set_inference``).
    """

    def __init__(self, models: Mapping[str, Path | Backend], device: str = "cpu", *, dtype: str = "float32",
                 compile: bool = False) -> None:
        if not models:
            raise ConfigError("give at least one model")
        self.device, self.dtype, self.compile = device, dtype, compile
        self._entries = {name: _Entry(src, src if isinstance(src, Backend) else None) for name, src in models.items()}
        self.default = next(iter(self._entries))

    @classmethod
    def from_specs(cls, specs: Sequence[str], device: str = "cpu", *, dtype: str = "float32",
                   compile: bool = False) -> ModelRegistry:
        """Resolve ``--model`` values (names or directories); a repeated name gets ``-2``, ``-3``..."""
        models: dict[str, Path | Backend] = {}
        for spec in specs:
            name, path = resolve_model(spec)
            base, n = name, 1
            while name in models:
                n += 1
                name = f"{base}-{n}"
            models[name] = path
        return cls(models, device, dtype=dtype, compile=compile)

    @property
    def names(self) -> list[str]:
        """The model names, default first."""
        return list(self._entries)

    def get(self, name: str | None) -> Backend:
        """The backend for ``name`` (None: the default), loading it on first use.

        Raises:
            ConfigError: an unknown name.
            SaraError: a model that fails to load (one line).
        """
        entry = self._entry(name)
        with entry.lock:
            if entry.backend is None:
                entry.backend = self._load(Path(entry.source))  # type: ignore[arg-type]
        return entry.backend

    def _entry(self, name: str | None) -> _Entry:
        entry = self._entries.get(self.default if name is None else name)
        if entry is None:
            raise ConfigError(f"model: unknown model {name!r} (see GET /v1/models: {', '.join(self.names)})")
        return entry

    def _load(self, path: Path) -> Backend:
        from sara.pipelines.detect import detect_model_kind, load_pipeline

        kind = detect_model_kind(path)
        pipe = load_pipeline(path, device=self.device, dtype=self.dtype, compile=self.compile)
        return make_backend(pipe, kind)

    def describe(self) -> list[dict[str, Any]]:
        """``GET /v1/models``: name, default, loaded, and for loaded models system, sample rate and defaults."""
        return [self._describe(name, entry) for name, entry in self._entries.items()]

    def _describe(self, name: str, entry: _Entry) -> dict[str, Any]:
        info: dict[str, Any] = {"name": name, "default": name == self.default, "loaded": entry.backend is not None}
        if entry.backend is not None:
            b = entry.backend
            info.update(system=b.system, kind=b.kind, sample_rate=b.sample_rate, defaults=b.defaults())
        return info
