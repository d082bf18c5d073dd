"""Reduced-precision inference: network forwards under ``torch.autocast``, everything else in float32.

A pipeline's *networks* (DiT, vocoder generator, UNet, VAE decoder, HiFi-GAN, token LM, codec decoder) are
the matrix-multiply- and convolution-heavy parts; :func:`set_forward_precision` wraps such a module's
``forward`` so that it runs under ``torch.autocast(device_type, dtype)`` and returns float32 tensors (the
approach of ``accelerate``'s mixed-precision inference).  The weights stay float32; what autocast keeps in
float32 it keeps (reductions, norms on CUDA), and the parts that are numerically sensitive stay outside the
wrapper and therefore in float32: the samplers' state and update (the wrapped forward returns float32),
STFT / iSTFT (the vocoder casts to float32 around them) and the text encoders (run once per prompt).

Supported: ``bfloat16`` on CPU and GPU, ``float16`` on GPU only (CPU float16 kernels are slow and
autocast's CPU float16 policy is incomplete).  The quality cost is measured in ``benchmarks/bench_inference.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from sara.errors import ConfigError

__all__ = ["DTYPES", "dtype_name", "resolve_dtype", "set_forward_precision", "to_float32"]

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}
_WRAPPED = "_sara_precision_inner"  # attribute holding the unwrapped forward


def resolve_dtype(value: str | torch.dtype | None, device: torch.device | str = "cpu") -> torch.dtype:
    """Parse a compute dtype (``"float32"``, ``"bfloat16"``, ``"float16"``, aliases, or a torch dtype).

    Args:
        value: the dtype; None means float32.
        device: where the networks run (float16 needs CUDA).

    Raises:
        ConfigError: unknown dtype, or float16 on a CPU.
    """
    if value is None:
        return torch.float32
    if isinstance(value, torch.dtype):
        name = dtype_name(value)
    else:
        name = _ALIASES.get(str(value).lower(), str(value).lower())
    if name not in DTYPES:
        raise ConfigError(f"unknown dtype {value!r} (expected one of {', '.join(DTYPES)})")
    if name == "float16" and torch.device(device).type == "cpu":
        raise ConfigError("float16 needs a GPU (CPU float16 kernels are slow); use bfloat16 on CPU")
    return DTYPES[name]


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``; ConfigError for dtypes sara does not compute in."""
    for name, known in DTYPES.items():
        if known == dtype:
            return name
    raise ConfigError(f"unsupported compute dtype {dtype} (expected one of {', '.join(DTYPES)})")


def to_float32(out: Any) -> Any:
    """Cast every floating tensor in a (nested) output to float32; other values pass through."""
    if isinstance(out, Tensor):
        return out.float() if out.is_floating_point() and out.dtype != torch.float32 else out
    if isinstance(out, tuple) and hasattr(out, "_fields"):  # namedtuple
        return type(out)(*(to_float32(v) for v in out))
    if isinstance(out, (list, tuple)):
        return type(out)(to_float32(v) for v in out)
    if hasattr(out, "to_tuple") and hasattr(out, "keys"):  # diffusers / transformers ModelOutput (a dict)
        for key in list(out.keys()):
            out[key] = to_float32(out[key])
        return out
    if isinstance(out, dict):
        return {k: to_float32(v) for k, v in out.items()}
    return out


def set_forward_precision(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Run ``module.forward`` under autocast to ``dtype`` (float32: restore the plain forward).

    The module's device decides the autocast device type.  Calling it again replaces the previous
    setting (wrappers never stack).  Returns the module.
    """
    inner = module.__dict__.pop(_WRAPPED, None)
    if inner is not None:
        if inner is _CLASS_FORWARD:
            module.__dict__.pop("forward", None)
        else:
            module.forward = inner
    if dtype == torch.float32:
        return module
    original = module.__dict__.get("forward", _CLASS_FORWARD)
    setattr(module, _WRAPPED, original)
    module.forward = _autocast_forward(module, dtype)
    return module


_CLASS_FORWARD: Any = object()  # marker: the module used its class's forward (no instance attribute)


def _autocast_forward(module: nn.Module, dtype: torch.dtype) -> Callable[..., Any]:
    """A forward that enters autocast on the module's current device and returns float32 outputs."""
    inner = module.__dict__[_WRAPPED]
    call = functools.partial(type(module).forward, module) if inner is _CLASS_FORWARD else inner

    def forward(*args: Any, **kwargs: Any) -> Any:
        device_type = _device_type(module)
        with torch.autocast(device_type=device_type, dtype=dtype):
            return to_float32(call(*args, **kwargs))

    return forward


def _device_type(module: nn.Module) -> str:
    for tensor in module.parameters():
        return tensor.device.type
    return "cpu"
