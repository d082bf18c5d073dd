"""``--dtype``, ``--compile`` and ``--threads``: the inference runtime flags of every generating command.

See :mod:`sara.runtime` for what they do and the README's performance section for measured effects.
"""

from __future__ import annotations

import argparse
from typing import Any

from sara.cli._args import int_range

__all__ = ["add_runtime_arguments", "apply_runtime"]


def add_runtime_arguments(p: argparse.ArgumentParser) -> None:
    """Add the three runtime flags to a command's parser."""
    from sara.runtime.threads import MAX_THREADS

    g = p.add_argument_group("runtime")
    g.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                   help="compute dtype of the networks (bfloat16 on CPU or GPU, float16 on GPU only); samplers, "
                        "STFTs and text encoders stay float32")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the networks (pays a one-off compilation; worth it for long runs)")
    g.add_argument("--threads", type=int_range(1, MAX_THREADS), default=None,
                   help="intra-op CPU threads (default: the idle cores, one for small models; env SARA_THREADS)")


def apply_runtime(pipe: Any, args: argparse.Namespace) -> Any:
    """Apply ``--dtype`` / ``--compile`` to ``pipe``'s networks and set the thread count; returns ``pipe``.

    Raises:
        ConfigError: float16 on a CPU.
    """
    from sara.runtime.inference import largest_network_params
    from sara.runtime.threads import configure_threads

    dtype, compile = getattr(args, "dtype", None), bool(getattr(args, "compile", False))
    if hasattr(pipe, "set_inference"):
        pipe.set_inference(dtype=dtype, compile=compile)
    configure_threads(getattr(args, "threads", None), num_params=largest_network_params(pipe))
    return pipe
