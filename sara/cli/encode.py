"""``sara encode INPUT... --encoder PATH --output DIR``: audio files -> latent cache files.

Writes ``<stem>.safetensors`` (tensor ``latents [D, N]`` + metadata) per input; directory inputs keep their
relative sub-paths.  Unreadable files are reported one line each and skipped; the exit status is 1 if any
file failed.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``encode`` command."""
    p = sub.add_parser("encode", help="encode audio files into semantic latents (one .safetensors per file)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files and/or directories (searched recursively)")
    p.add_argument("--encoder", required=True, help="release dir, official dasheng .pt, or dir holding one")
    p.add_argument("--output", "-o", required=True, help="output directory")
    p.add_argument("--batch-size", type=int, default=8, help="max equal-length files per forward pass")
    p.add_argument("--long-seconds", type=float, default=60.0, help="encode longer files alone, block-wise")
    p.add_argument("--pad-seconds", type=float, default=0.0,
                   help="append silence to shorter files before encoding (for text-to-latent training data)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Encode every input; return 0 if all succeeded, 1 if any failed."""
    from tqdm.auto import tqdm

    from sara.encoder import SemanticEncoder
    from sara.encoder.files import EncodeResult, encode_files, plan_items
    from sara.errors import ConfigError

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not math.isfinite(args.pad_seconds) or not 0 <= args.pad_seconds <= 600:
        raise ConfigError(f"--pad-seconds must be between 0 and 600, got {args.pad_seconds}")
    encoder = SemanticEncoder.from_pretrained(args.encoder, map_location=args.device)
    items, planned_failures = plan_items(args.inputs, Path(args.output))
    failures = list(planned_failures)
    bar = tqdm(total=len(items), desc="encode", unit="file", dynamic_ncols=True)

    def on_result(result: EncodeResult) -> None:
        bar.update(1)
        if result.error is not None:
            failures.append(result)

    encode_files(encoder, items, batch_size=args.batch_size, long_seconds=args.long_seconds,
                 pad_seconds=args.pad_seconds, on_result=on_result)
    bar.close()
    for failure in failures:
        print(f"sara encode: {failure.item.source}: {failure.error}", file=sys.stderr)
    done = len(items) + len(planned_failures) - len(failures)
    print(f"encoded {done} file(s) into {args.output}; {len(failures)} failed")
    return 1 if failures else 0
