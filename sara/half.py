"""Store a release's weights in float16 (half the bytes) for bundling; loading casts them back.

Every sara loader copies the stored tensors into a float32 model through ``load_state_dict``, which converts
the dtype, so a halved release loads anywhere a float32 one does.  A tensor is kept in float32 when float16
would change it by more than rounding: values beyond float16's range (e.g. codebook usage sums) or tensors
of values so small that they would go subnormal or flush to zero.  The rewrite is atomic per file (``os.replace``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from sara.errors import CheckpointError

HALF_MAX = 65504.0  # largest finite float16
MAX_REL_ERROR = 1e-3  # float16 rounding alone gives ~3e-4; tensors of tiny values (subnormal in float16) exceed it


@dataclass(frozen=True)
class HalfReport:
    """What :func:`store_half` did: files rewritten, bytes before / after, tensors kept in float32."""

    files: int
    bytes_before: int
    bytes_after: int
    kept_float32: tuple[str, ...]


def _half_safe(t: torch.Tensor) -> bool:
    """True when ``t`` (float32/64) survives float16 up to rounding: every value within float16's range and the
    relative error of the whole tensor (``||half(t) - t|| / ||t||``) under ``MAX_REL_ERROR``."""
    x = t.detach().double()
    norm = float(x.norm())
    if norm == 0.0:
        return True
    if float(x.abs().max()) > HALF_MAX:
        return False
    return float((x.half().double() - x).norm()) / norm < MAX_REL_ERROR


def _halve_file(path: Path) -> tuple[int, int, list[str]]:
    """Rewrite one ``model.safetensors``; returns (bytes before, bytes after, names kept in float32)."""
    try:
        state = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for corrupt files
        raise CheckpointError(f"{path}: cannot read weights ({exc})") from None
    kept = [k for k, v in state.items() if v.dtype in (torch.float32, torch.float64) and not _half_safe(v)]
    out = {k: (v.half() if v.dtype in (torch.float32, torch.float64) and k not in kept else v).contiguous()
           for k, v in state.items()}
    before = path.stat().st_size
    tmp = path.with_name(path.name + ".tmp")
    save_file(out, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, path)
    return before, path.stat().st_size, [f"{path.parent.name}/{k}" for k in kept]


def store_half(directory: str | os.PathLike[str]) -> HalfReport:
    """Convert every ``model.safetensors`` under ``directory`` (a release, with its component folders).

    Raises:
        CheckpointError: no weights under ``directory``, or an unreadable file.
    """
    files = sorted(Path(directory).rglob("model.safetensors"))
    if not files:
        raise CheckpointError(f"{directory}: no model.safetensors to convert")
    before = after = 0
    kept: list[str] = []
    for path in files:
        b, a, k = _halve_file(path)
        before, after, kept = before + b, after + a, kept + k
    return HalfReport(len(files), before, after, tuple(kept))
