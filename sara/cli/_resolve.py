"""Resolve every model-naming flag (``--model``, ``--encoder``, ``--init-from``, ...) through :mod:`sara.hub`
before a command runs, so each accepts a local path, a hub id ``owner/name[@revision]`` or an http(s) URL.

Bundled names (``sara-demo``, ...) and values that are not hub ids or URLs are left for the command itself,
which reports a missing local path in its own words.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["MODEL_FLAGS", "resolve_model_arguments"]

# attributes of parsed arguments that name a model, component or checkpoint to read
MODEL_FLAGS = ("model", "encoder", "init", "init_from", "vocoder", "vae", "audiogen", "codec", "t5_path",
               "classifier", "also_classifier")


def resolve_model_arguments(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with every hub id / URL in :data:`MODEL_FLAGS` replaced by its local path (SaraError, one
    line, when one cannot be resolved)."""
    for name in MODEL_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            setattr(args, name, _resolve_value(value))
    return args


def _resolve_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_resolve_value(v) for v in value]
    if not isinstance(value, str):
        return value
    from sara.hub import local_path

    resolved = local_path(value)
    return value if str(resolved) == value else str(resolved)
