"""``sara encode INPUT... --output DIR [--encoder PATH | --codec DIR]``: audio files -> latent or token files;
``sara encode (--manifest M | --shards SPEC | INPUT... --shard-size N) --output DIR``: a sharded latent store.

The encoder defaults to the one bundled with the ``sara-demo`` vocoder (the latent space of the bundled
models).  With ``--codec`` the files hold EnCodec tokens instead (tensor ``codes [K, F]``; see
:mod:`sara.cli._codec_io`), encoded one file at a time (``--batch-size`` and ``--long-seconds`` do not apply).

Writes ``<stem>.safetensors`` (tensor ``latents [D, N]`` + metadata) per input; directory inputs keep their
relative sub-paths.  Unreadable files are reported one line each and skipped; the exit status is 1 if any
file failed.

The sharded store (:mod:`sara.data.latent_store`, :mod:`sara.data.encode_store`) holds float16 latents in
``latents-NNNNNN.safetensors`` shards plus ``index.json`` (random access by clip key: the manifest ``id``);
it is written when ``--manifest`` or ``--shards`` is given, or ``--shard-size`` with INPUTs.  It resumes
after an interruption (finished shards are skipped) and runs data-parallel under
``torchrun --nproc_per_node N -m sara.cli encode ...`` (each process encodes and writes its own shards).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sara.cli._args import float_range, int_range

if TYPE_CHECKING:  # sara.data.encode_store imports torch; `sara --help` must stay fast
    from sara.data.encode_store import StorePlan


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``encode`` command."""
    p = sub.add_parser("encode", help="encode audio files into semantic latents (one .safetensors per file)")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="audio files and/or directories (searched recursively)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--manifest", default=None, help="encode the clips of this sara manifest into a sharded store")
    src.add_argument("--shards", default=None, metavar="SPEC",
                     help="encode the clips of these WebDataset shards (`sara data shard` directory, brace "
                          "pattern or URLs) into a sharded store, one store shard per input shard")
    p.add_argument("--shard-size", type=int_range(1, 10_000_000), default=None,
                   help="clips per store shard (default 512); with INPUTs: write a sharded store instead of one "
                        "file per input")
    p.add_argument("--split", nargs="+", default=None, help="with --manifest / --shards: only these splits")
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
    from sara.errors import ConfigError

    sharded = args.manifest is not None or args.shards is not None or args.shard_size is not None
    if bool(args.inputs) == (args.manifest is not None or args.shards is not None):
        raise ConfigError("give audio INPUTs or --manifest / --shards (one of them)")
    if sharded and args.codec is not None:
        raise ConfigError("--codec writes one token file per input; it does not take --manifest, --shards or "
                          "--shard-size")
    if args.split is not None and args.inputs:
        raise ConfigError("--split selects clips of --manifest / --shards")
    if sharded:
        return _run_sharded(args)
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


def _plan(args: argparse.Namespace) -> StorePlan:
    """The store plan of the inputs (manifest, shards, or audio files keyed by their relative paths)."""
    from sara.data import encode_store
    from sara.encoder.files import plan_items

    splits = tuple(args.split) if args.split else None
    size = args.shard_size if args.shard_size is not None else 512
    if args.manifest is not None:
        return encode_store.plan_from_manifest(args.manifest, size, splits)
    if args.shards is not None:
        return encode_store.plan_from_shards(args.shards, splits)
    root = Path(args.output)
    items, clashes = plan_items(args.inputs, root)
    if clashes:
        from sara.errors import ConfigError

        raise ConfigError(f"{clashes[0].item.source}: {clashes[0].error}")
    return encode_store.plan_from_files(
        [(it.source, it.output.relative_to(root).with_suffix("").as_posix()) for it in items], size)


def _run_sharded(args: argparse.Namespace) -> int:
    """Encode into a sharded store (this process's share under torchrun); 1 if any clip failed."""
    import dataclasses
    import json

    from tqdm.auto import tqdm

    from sara.cli._output import check_output_dir
    from sara.data.encode_store import dist_rank, encode_store
    from sara.encoder import SemanticEncoder

    out = check_output_dir(args.output)
    plan = _plan(args)
    rank, world, local = dist_rank()
    device = f"cuda:{local}" if args.device == "cuda" and world > 1 else args.device
    path = encoder_path(args.encoder)
    encoder = SemanticEncoder.from_pretrained(path, map_location=device)
    ident = json.dumps([str(path.resolve()), dataclasses.asdict(encoder.config)], default=str)
    mine = len(range(rank, len(plan.shards), world))
    with tqdm(total=mine, desc=f"encode (rank {rank})" if world > 1 else "encode", unit="shard",
              dynamic_ncols=True) as bar:
        result = encode_store(encoder, plan, out, rank=rank, world_size=world, batch_size=args.batch_size,
                              long_seconds=args.long_seconds, pad_seconds=args.pad_seconds, encoder_id=ident,
                              on_shard=lambda _: bar.update(1))
    for name, error in result.failures:
        print(f"sara encode: {name}: {error}", file=sys.stderr)
    index = "index.json written" if result.index_written else "index.json follows when every process is done"
    print(f"encoded {result.encoded} clip(s) into {out}: {result.written} shard(s) written, {result.skipped} "
          f"already done, of {result.num_shards}; {len(result.failures)} failed; {index}")
    return 1 if result.failures else 0


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
