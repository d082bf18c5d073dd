"""``sara`` entry point.

Each command lives in ``sara/cli/<name>.py`` and exposes ``register(subparsers)``, which adds its parser
and sets ``func=run`` (``run(args) -> int``).  Heavy imports happen inside ``run`` so ``sara --help`` is
fast.  Errors caused by the user (:class:`~sara.errors.SaraError`) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sara.errors import SaraError

# command modules, in the order shown by --help
COMMANDS: tuple[str, ...] = (
    "demo",
    "generate",
    "encode",
    "reconstruct",
    "decode",
    "train",
    "export",
    "data",
    "eval",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command registered."""
    parser = argparse.ArgumentParser(prog="sara", description="Text-to-audio generation in a semantic latent space.")
    parser.add_argument("--version", action="version", version=f"sara {importlib.import_module('sara').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = _import_command(name)
        if module is not None:
            module.register(sub)
    return parser


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
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SaraError as exc:
        print(f"sara {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sara {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
