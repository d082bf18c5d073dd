"""Lazy package exports: ``import sara.x`` stays cheap, a public name imports its module on first access.

Each package ``__init__`` keeps its name -> module table and calls :func:`lazy_exports`::

    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str],
                 namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` (PEP 562) for ``package``.

    Args:
        package: the package's ``__name__`` (used in the AttributeError message).
        exports: public name -> the module that defines it.
        namespace: the package's ``globals()`` (listed by ``__dir__`` beside the exports).
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
