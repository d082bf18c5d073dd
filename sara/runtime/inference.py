"""The inference options every pipeline shares: compute dtype and compilation of its networks.

Pipelines mix in :class:`InferenceOptions` and list their networks in ``networks()``;
``pipe.set_inference(dtype="bfloat16", compile=True)`` (or ``from_pretrained(..., dtype=...)``) then applies
:mod:`sara.runtime.precision` and :mod:`sara.runtime.compile` to each of them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from sara.runtime.compile import configure_networks
from sara.runtime.precision import dtype_name, resolve_dtype

__all__ = ["InferenceOptions", "largest_network_params"]


class InferenceOptions:
    """Mixin: ``compute_dtype`` / ``compiled`` state and :meth:`set_inference` over ``networks()``."""

    compute_dtype: torch.dtype = torch.float32
    compiled: bool = False

    def networks(self) -> list[nn.Module]:
        """The modules whose forwards do the heavy lifting (subclasses list theirs)."""
        raise NotImplementedError

    def set_inference(self, *, dtype: str | torch.dtype | None = None, compile: bool | None = None) -> Any:
        """Set the compute dtype (None: keep) and compilation (None: keep) of every network; returns self.

        Raises:
            ConfigError: unknown dtype, or float16 on a CPU.
        """
        device = _device_of(self.networks())
        new_dtype = resolve_dtype(dtype, device) if dtype is not None else self.compute_dtype
        new_compile = self.compiled if compile is None else bool(compile)
        configure_networks(self.networks(), new_dtype, new_compile)
        self.compute_dtype, self.compiled = new_dtype, new_compile
        return self

    @property
    def inference_settings(self) -> dict[str, Any]:
        """``{"dtype": "bfloat16", "compile": False}`` (for logs and output metadata)."""
        return {"dtype": dtype_name(self.compute_dtype), "compile": self.compiled}


def largest_network_params(pipe: Any) -> int | None:
    """Parameters of the pipeline's largest network (None when it lists none): the thread policy's size hint."""
    networks = getattr(pipe, "networks", None)
    if networks is None:
        return None
    sizes = [sum(p.numel() for p in net.parameters()) for net in networks()]
    return max(sizes) if sizes else None


def _device_of(modules: list[nn.Module]) -> torch.device:
    for module in modules:
        for tensor in module.parameters():
            return tensor.device
    return torch.device("cpu")
