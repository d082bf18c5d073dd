"""Opt-in ``torch.compile`` of network forwards, composable with :mod:`sara.runtime.precision`.

Shape policy: networks are compiled with ``dynamic=True``, so the sequence length (the duration) is a
symbolic dimension and one compilation serves every duration and batch size; without it Dynamo compiles
a static graph first and recompiles for the second shape it sees.  The first call pays the compilation
(tens of seconds on a small CPU; measured in ``benchmarks/bench_inference.py``), so compiling pays off in
long-lived processes (``sara serve``, batch generation), not in one-shot commands.  Inductor caches
compiled kernels on disk (``TORCHINDUCTOR_CACHE_DIR``), which shortens later warm-ups.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from sara.runtime.precision import set_forward_precision

__all__ = ["configure_networks", "set_compiled"]

_COMPILED = "_sara_compile_inner"


def set_compiled(module: nn.Module, enabled: bool, *, dynamic: bool = True) -> nn.Module:
    """Replace ``module.forward`` by a compiled version (``enabled``) or restore the eager one.

    Call on a module whose forward is not wrapped for precision (use :func:`configure_networks`, which
    orders the two).  Returns the module.
    """
    if _COMPILED in module.__dict__:
        if enabled:
            return module  # already compiled: keep its compiled graphs
        module.__dict__.pop(_COMPILED)
        module.__dict__.pop("forward", None)
    if enabled:
        module.__dict__[_COMPILED] = True
        module.forward = torch.compile(type(module).forward.__get__(module), dynamic=dynamic)
    return module


def configure_networks(modules: Iterable[nn.Module | None], dtype: torch.dtype, compile: bool) -> None:
    """Set the compute dtype and compilation of each network (None entries are skipped).

    Precision wraps outside compilation: ``forward = autocast(compiled(eager_forward))``.
    """
    for module in modules:
        if module is None:
            continue
        set_forward_precision(module, torch.float32)  # unwrap before (re)compiling
        set_compiled(module, compile)
        set_forward_precision(module, dtype)
