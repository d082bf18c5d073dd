"""``sara export RUN_DIR OUT_DIR``: training checkpoint -> release directory (EMA weights by default)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a release directory from a training run")
    p.add_argument("run_dir", help="a --run-dir of `sara train`")
    p.add_argument("out_dir", help="release directory to write (config.json + model.safetensors)")
    p.add_argument("--no-ema", action="store_true", help="export the raw weights instead of the EMA")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sara.train import export_run

    out = export_run(args.run_dir, args.out_dir, use_ema=not args.no_ema)
    print(f"exported {out}")
    return 0
