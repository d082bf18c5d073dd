"""``sara data``: build and describe the open captioned corpus.

``sara data build-corpus DIR [--preset v1|full|tiny] [--source-dir NAME=PATH ...] [--seed N]``
``sara data describe MANIFEST [-o CORPUS.md]``
``sara data prepare FORMAT (--csv FILE | --json FILE) --audio-dir DIR -o MANIFEST [--split NAME] [--append]``
``sara data shard MANIFEST OUT --shard-size N [--latent-cache DIR] [--split NAME ...]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sara.cli._args import int_range
from sara.errors import ConfigError

PREPARE_FORMATS = ("audiocaps", "clotho", "wavcaps", "semanticvocoder", "folder")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sara data`` and its sub-commands."""
    parser = subparsers.add_parser("data", help="build or describe the training corpus")
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    build = sub.add_parser("build-corpus", help="fetch allowed sources, synthesize, write DIR/manifest.jsonl")
    build.add_argument("dir", type=Path, help="output corpus directory")
    build.add_argument("--preset", default="v1", help="v1 (~2 h, quick) | full (~8-10 h) | tiny (tests)")
    build.add_argument("--seed", type=int, default=None, help="corpus seed (default: the preset's, 0)")
    build.add_argument("--sources", default=None, help="comma-separated subset of real sources")
    build.add_argument(
        "--source-dir",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="use an already extracted source directory instead of downloading",
    )
    build.add_argument("--no-synth", action="store_true", help="skip the synthesizers (real sources only)")
    build.add_argument(
        "--mixtures", type=int, default=None, help="number of mixtures (default: the preset's)"
    )
    build.add_argument("--describe", type=Path, default=None, help="also write a CORPUS.md here")
    build.set_defaults(func=run)
    describe = sub.add_parser("describe", help="write a Markdown description of a corpus manifest")
    describe.add_argument("manifest", type=Path)
    describe.add_argument("-o", "--output", type=Path, default=None, help="write here instead of stdout")
    describe.set_defaults(func=run)
    _register_prepare(sub)
    _register_shard(sub)


def _register_shard(sub: argparse._SubParsersAction) -> None:
    """Add ``sara data shard``."""
    p = sub.add_parser("shard", help="write a manifest's clips as WebDataset tar shards (for --shards)",
                       description="Write the clips of a manifest as WebDataset tar shards (audio bytes as "
                                   "stored, the manifest record as json, optionally cached latents) plus "
                                   "shards.json; a rerun resumes, skipping finished shards.")
    p.add_argument("manifest", type=Path, help="sara manifest (jsonl)")
    p.add_argument("out", type=Path, help="output directory (shard-000000.tar, ..., shards.json)")
    p.add_argument("--shard-size", type=int_range(1, 10_000_000), required=True, help="clips per shard")
    p.add_argument("--latent-cache", default=None,
                   help="add each clip's latents from this `sara encode` cache (per-file or sharded store); "
                        "clips without latents are left out")
    p.add_argument("--split", nargs="+", default=None, help="only clips of these splits (default: all)")
    p.set_defaults(func=run)


def _register_prepare(sub: argparse._SubParsersAction) -> None:
    """Add ``sara data prepare``."""
    p = sub.add_parser("prepare", help="write a manifest for AudioCaps, Clotho, WavCaps or your own clips",
                       description="Write a sara manifest from a dataset's caption file and its audio "
                                   "directory: one row per clip (its captions merged), missing or unreadable "
                                   "audio reported and skipped.")
    p.add_argument("format", choices=PREPARE_FORMATS, help="layout of the caption file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", type=Path, help="caption CSV (audiocaps, clotho, folder)")
    src.add_argument("--json", type=Path, help="caption JSON / JSON lines (wavcaps, semanticvocoder, folder)")
    p.add_argument("--audio-dir", type=Path, required=True, help="directory holding the audio files")
    p.add_argument("-o", "--output", type=Path, required=True, help="manifest to write (jsonl)")
    p.add_argument("--split", default=None,
                   help="split of every clip (default: a folder list's split column, else what the caption "
                        "file's name says: train/val/test, development/validation/evaluation; else train)")
    p.add_argument("--append", action="store_true",
                   help="add to an existing manifest (its clips with the same ids are replaced)")
    p.add_argument("--jobs", type=int_range(1, 64), default=8, help="threads reading audio headers")
    p.set_defaults(func=run)


def _source_dirs(items: list[str]) -> dict[str, Path]:
    """Parse ``NAME=PATH`` pairs."""
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--source-dir expects NAME=PATH, got {item!r}")
        out[name] = Path(path)
    return out


def _build(args: argparse.Namespace) -> int:
    """Run the corpus builder and print the summary."""
    from dataclasses import replace

    from sara.data.build import CorpusConfig, build_corpus
    from sara.data.describe import describe_corpus

    cfg = CorpusConfig.preset(args.preset)
    if args.seed is not None:
        cfg = replace(cfg, seed=args.seed)
    if args.no_synth:
        cfg = replace(cfg, num_phrases=0, num_drum_patterns=0, gm_sfx_per_program=0, num_espeak=0)
    if args.mixtures is not None:
        cfg = replace(cfg, num_mixtures=args.mixtures)
    if args.sources is not None:
        cfg = replace(cfg, sources=tuple(s for s in args.sources.split(",") if s))
    result = build_corpus(args.dir, cfg, _source_dirs(args.source_dir))
    for line in result.skipped:
        print(f"skipped: {line}")
    print(
        f"wrote {result.manifest}: {result.num_clips} clips, {result.hours:.2f} h, {result.num_classes} classes "
        f"in {result.seconds:.0f} s"
    )
    print(f"manifest sha256 {result.manifest_sha256}")
    if args.describe is not None:
        args.describe.write_text(describe_corpus(result.manifest), encoding="utf-8")
        print(f"wrote {args.describe}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    """Run ``sara data prepare``: the skip summary on stderr, what was written on stdout."""
    import sys

    from sara.data.prepare import prepare_manifest

    if args.split is not None and not args.split.strip():
        raise ConfigError("--split must not be empty")
    kind, captions = ("csv", args.csv) if args.csv is not None else ("json", args.json)
    result = prepare_manifest(args.format, captions, kind, args.audio_dir, args.output, split=args.split,
                              append=args.append, jobs=args.jobs)
    if result.skipped:
        print(f"sara data prepare: {result.skipped.summary(result.total)}", file=sys.stderr)
    splits = ", ".join(f"{n} {s}" for s, n in result.splits.items())
    rows = f"; {result.rows} rows in all" if result.rows != result.clips else ""
    print(f"wrote {result.manifest}: {result.clips} of {result.total} clips ({splits}), "
          f"{result.hours:.2f} h{rows}")
    return 0


def _shard(args: argparse.Namespace) -> int:
    """Run ``sara data shard``: skipped clips on stderr, what was written on stdout."""
    from tqdm.auto import tqdm

    from sara.data.manifest import report_skipped
    from sara.data.shards import write_shards

    with tqdm(desc="shards", unit="shard", dynamic_ncols=True, disable=None) as bar:
        result = write_shards(args.manifest, args.out, args.shard_size, latent_cache=args.latent_cache,
                              splits=tuple(args.split) if args.split else None, progress=lambda n: bar.update(1))
    report_skipped("clips", result.problems, result.total)
    index = result.index
    splits = ", ".join(f"{n} {s}" for s, n in index.split_counts().items())
    latents = f", latents {index.latent_dim}-d" if index.latent_dim is not None else ""
    print(f"wrote {len(index.shards)} shard(s) of {index.num_items} clips ({splits}{latents}) to {args.out}: "
          f"{result.written} new, {result.skipped} already done")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch ``sara data`` sub-commands."""
    if args.data_command == "build-corpus":
        return _build(args)
    if args.data_command == "prepare":
        return _prepare(args)
    if args.data_command == "shard":
        return _shard(args)
    from sara.data.describe import describe_corpus

    text = describe_corpus(args.manifest)
    if args.output is None:
        print(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0
