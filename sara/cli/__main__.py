"""``sara`` entry point.

Each command lives in ``sara/cli/<name>.py`` and exposes ``register(subparsers)``, which adds its parser
and sets ``func=run`` (``run(args) -> int``).  Heavy imports happen inside ``run`` so ``sara --help`` is
fast.  Errors caused by the user print one line on stderr, never a traceback, and set the exit status:

* 2 -- bad arguments: argparse errors (every numeric flag is range-checked, see :mod:`sara.cli._args`) and
  :class:`~sara.errors.ConfigError` (including :class:`~sara.errors.OutputPathError`: ``-o`` names a
  directory, device, FIFO or an unsupported extension);
* 1 -- bad data or environment: any other :class:`~sara.errors.SaraError` (:class:`~sara.errors.AudioError`,
  :class:`~sara.errors.CheckpointError`, :class:`~sara.errors.OutputError` when a write fails), an
  ``OSError`` (permission denied, disk full) or running out of
  memory;
* 130 -- interrupted (Ctrl-C).

The mapping lives in :func:`sara.cli.guard.run_guarded`, which the scripts in ``recipes/`` use too.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sara.cli._args import OneLineParser, harden
from sara.cli.guard import run_guarded

# command modules, in the order shown by --help
COMMANDS: tuple[str, ...] = (
    "demo",
    "generate",
    "edit",
    "inpaint",
    "extend",
    "encode",
    "reconstruct",
    "decode",
    "train",
    "export",
    "data",
    "eval",
    "serve",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command registered."""
    parser = OneLineParser(prog="sara", description="Text-to-audio generation in a semantic latent space.")
    parser.add_argument("--version", action="version", version=f"sara {importlib.import_module('sara').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = _import_command(name)
        if module is not None:
            module.register(sub)
    return harden(parser)


def _import_command(name: str):  # noqa: ANN202 - returns a module or None
    """Import ``sara.cli.<name>``; a command module that is not part of this install is skipped."""
    try:
        return importlib.import_module(f"sara.cli.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"sara.cli.{name}":
            return None
        raise


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (``sys.argv[1:]`` when None) and return the exit status."""
    from sara.runtime.threads import set_passive_wait

    set_passive_wait()  # before torch loads (see sara.runtime.threads)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line argument error (status 2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    from sara.cli._resolve import resolve_model_arguments

    return run_guarded(f"sara {args.command}", lambda: args.func(resolve_model_arguments(args)))


if __name__ == "__main__":
    sys.exit(main())
