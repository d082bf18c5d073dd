"""``--solver``, ``--vocoder-solver`` and ``--vocoder-grid``: the ODE sampler flags of the SARA commands.

Defaults come from the model (a release's ``config["sampling"]``; the official Euler sampler otherwise).  See
:mod:`sara.flow.solvers` and :mod:`sara.vocoder.solvers` for the solvers and the README's performance section
for the measured trade-off between network calls and distance to a many-step reference.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_sampler_arguments", "apply_sampler", "refuse_sampler", "vocoder_sampler"]


def add_sampler_arguments(p: argparse.ArgumentParser, *, dit: bool = True) -> None:
    """Add the vocoder sampler flags (and the DiT's ``--solver`` when ``dit``) to a command's parser."""
    from sara.flow.solvers import SOLVERS
    from sara.vocoder.solvers import GRIDS

    g = p.add_argument_group("sampler")
    if dit:
        g.add_argument("--solver", choices=SOLVERS, default=None,
                       help="DiT ODE solver (default: the model's; euler = the official sampler; heun, midpoint, "
                            "dpm2m and ab2 are higher order)")
    g.add_argument("--vocoder-solver", choices=SOLVERS, default=None,
                   help="vocoder ODE solver (default: the model's, euler)")
    g.add_argument("--vocoder-grid", choices=GRIDS, default=None,
                   help="vocoder time grid (default: the model's, uniform)")


def apply_sampler(pipe: Any, args: argparse.Namespace) -> Any:
    """Set the given sampler flags as ``pipe``'s defaults (``pipe.set_sampler``); returns ``pipe``."""
    pipe.set_sampler(solver=getattr(args, "solver", None), vocoder_solver=getattr(args, "vocoder_solver", None),
                     vocoder_grid=getattr(args, "vocoder_grid", None))
    return pipe


def vocoder_sampler(args: argparse.Namespace) -> dict[str, str]:
    """``vocoder.decode`` keywords for ``--vocoder-solver`` / ``--vocoder-grid`` (none for the official Euler /
    uniform sampler, the default)."""
    from sara.pipelines.sampling import vocoder_sampler_kwargs

    return vocoder_sampler_kwargs(getattr(args, "vocoder_solver", None) or "euler",
                                  getattr(args, "vocoder_grid", None) or "uniform")


def refuse_sampler(args: argparse.Namespace, kind: str) -> None:
    """One-line ConfigError when a SARA sampler flag is given to a ``kind`` model that has no such sampler."""
    from sara.errors import ConfigError

    for flag, attr in (("--solver", "solver"), ("--vocoder-solver", "vocoder_solver"),
                       ("--vocoder-grid", "vocoder_grid")):
        if getattr(args, attr, None) is not None:
            raise ConfigError(f"{flag} applies to SARA (semantic-latent) models only, not to {kind} models")
