"""``sara encode INPUT... --output DIR [--encoder PATH | --codec DIR]``: audio files -> latent or token files.

The encoder defaults to the one bundled with the ``sara-demo`` vocoder (the latent space of the bundled
models).  With ``--codec`` the files hold EnCodec tokens instead (tensor ``codes [K, F]``; see
:mod:`sara.cli._codec_io`), encoded one file at a time (``--batch-size`` and ``--long-seconds`` do not apply).

Writes ``<stem>.safetensors`` (tensor ``latents [D, N]`` + metadata) per input; directory inputs keep their
relative sub-paths.  Unreadable files are reported one line each and skipped; the exit status is 1 if any
file failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sara.cli._args import float_range, int_range


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``encode`` command."""
    p = sub.add_parser("encode", help="encode audio files into semantic latents (one .safetensors per file)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files and/or directories (searched recursively)")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--encoder", default=None, help="release dir, official dasheng .pt, or dir holding one "
                                                       "(default: the bundled sara-demo encoder)")
    model.add_argument("--codec", default=None, metavar="DIR",
                       help="write EnCodec tokens with this codec (sara release or audiocraft "
                            "compression_state_dict.bin / its dir) instead of semantic latents")
    p.add_argument("--output", "-o", required=True, help="output directory")
    p.add_argument("--batch-size", type=int_range(1, 1024), default=8, help="max equal-length files per forward pass")
    p.add_argument("--long-seconds", type=float_range(1.0, 3600.0), default=60.0, help="encode longer files alone, block-wise")
    p.add_argument("--pad-seconds", type=float_range(0.0, 600.0), default=0.0,
                   help="append silence to shorter files before encoding (for text-to-latent training data)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Encode every input; return 0 if all succeeded, 1 if any failed."""
    if args.codec is not None:
        from sara.cli._codec_io import run_encode

        return run_encode(args)
    from tqdm.auto import tqdm

    from sara.cli._output import check_output_dir
    from sara.encoder import SemanticEncoder
    from sara.encoder.files import EncodeResult, encode_files, plan_items
    from sara.errors import ConfigError

    out_dir = check_output_dir(args.output)
    items, planned_failures = plan_items(args.inputs, out_dir)
    if not items and not planned_failures:
        raise ConfigError("no audio files found in the inputs")
    encoder = SemanticEncoder.from_pretrained(encoder_path(args.encoder), map_location=args.device)
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


def encoder_path(encoder: str | None) -> Path:
    """``--encoder``, or the bundled demo encoder; ConfigError when the given path does not exist."""
    from sara.errors import CheckpointError, ConfigError
    from sara.pretrained import DEFAULT_MODEL

    if encoder is not None:
        if not Path(encoder).exists():
            raise ConfigError(f"--encoder {encoder}: no such file or directory")
        return Path(encoder)
    path = DEFAULT_MODEL / "vocoder" / "encoder"
    if not path.is_dir():
        raise CheckpointError(f"{path}: the bundled encoder is not installed; pass --encoder PATH")
    return path
