"""Task flags of ``sara train encoder`` (MAE pretraining or supervised fine-tuning of the semantic encoder).

Example (tiny CPU run on the bundled corpus)::

    sara train encoder --run-dir runs/enc --manifest corpus/manifest.jsonl --preset tiny --crop-seconds 4 \\
        --max-steps 2000 --batch-size 8 --export models/encoder
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing sara.train loads torch and accelerate; `sara --help` must stay fast
    from sara.train.task import TrainTask


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the encoder task's flags."""
    g = p.add_argument_group("encoder task")
    data = g.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", help="directory of audio files (class = parent folder name)")
    data.add_argument("--manifest", help="corpus manifest jsonl (uses its 'split' and 'class' fields)")
    data.add_argument("--shards", metavar="SPEC",
                      help="stream WebDataset shards: a `sara data shard` directory, a brace pattern "
                           "(dir/shard-{000000..000009}.tar) or URLs webdataset opens")
    g.add_argument("--shuffle-buffer", type=int, default=512, help="with --shards: clips per shuffle buffer")
    g.add_argument("--preset", default="tiny", help="encoder size: tiny, small, base, 0.6B, 1.2B")
    g.add_argument("--embed-dim", type=int, default=None, help="override the preset's width")
    g.add_argument("--depth", type=int, default=None, help="override the preset's number of blocks")
    g.add_argument("--num-heads", type=int, default=None, help="override the preset's attention heads")
    g.add_argument("--objective", choices=("mae", "supervised"), default="mae")
    g.add_argument("--init", default=None, help="encoder to fine-tune from (release dir or dasheng .pt)")
    g.add_argument("--crop-seconds", type=float, default=None, help="crop length (default: 10 s, 4 s for tiny)")
    g.add_argument("--random-gain", action="store_true", help="random gain in [-6, +10] dB (dasheng)")
    g.add_argument("--mask-ratio", type=float, default=0.75)
    g.add_argument("--decoder-dim", type=int, default=0, help="MAE decoder width (0: 512 for base, scaled)")
    g.add_argument("--decoder-depth", type=int, default=0, help="MAE decoder blocks (0: 8 for base, scaled)")
    g.add_argument("--decoder-heads", type=int, default=0, help="MAE decoder heads (0: 16 for base, scaled)")
    g.add_argument("--multi-label", action="store_true", help="supervised: BCE on multi-hot labels")
    g.add_argument("--train-split", default="train")
    g.add_argument("--valid-split", default="valid", help="manifest split for validation ('' disables)")
    g.add_argument("--lr", type=float, default=3e-4)
    g.add_argument("--weight-decay", type=float, default=0.01)
    g.add_argument("--warmup-steps", type=int, default=0)


def build_task(args: argparse.Namespace) -> TrainTask:
    """Turn parsed flags into an :class:`~sara.encoder.training.EncoderTask`."""
    import dataclasses
    from pathlib import Path

    from sara.encoder import EncoderConfig, SemanticEncoder
    from sara.encoder.training import EncoderTask, EncoderTaskConfig
    from sara.errors import ConfigError

    encoder = (SemanticEncoder.from_pretrained(args.init).config if args.init is not None
               else EncoderConfig.preset(args.preset))
    overrides = {k: v for k, v in (("embed_dim", args.embed_dim), ("depth", args.depth),
                                   ("num_heads", args.num_heads)) if v is not None}
    if overrides and args.init is not None:
        raise ConfigError("--embed-dim/--depth/--num-heads cannot change the architecture of an --init encoder")
    try:
        encoder = dataclasses.replace(encoder, **overrides)
    except ValueError as exc:
        raise ConfigError(f"encoder: {exc}") from None
    crop = args.crop_seconds if args.crop_seconds is not None else (4.0 if encoder.tokens_per_chunk < 250 else 10.0)
    classes = _class_names(args) if args.objective == "supervised" else ()

    def absolute(path: str | None) -> str | None:  # the run may be resumed / exported from another cwd
        return None if path is None else str(Path(path).resolve())

    try:
        cfg = EncoderTaskConfig(
            encoder=encoder, objective=args.objective, data_dir=absolute(args.data), manifest=absolute(args.manifest),
            shards=_shards_spec(args.shards), shuffle_buffer=args.shuffle_buffer,
            train_split=args.train_split, valid_split=args.valid_split or None, crop_seconds=crop,
            gain_db=(-6.0, 10.0) if args.random_gain else None, mask_ratio=args.mask_ratio,
            decoder_dim=args.decoder_dim, decoder_depth=args.decoder_depth, decoder_heads=args.decoder_heads,
            class_names=classes, multi_label=args.multi_label, init=absolute(args.init), lr=args.lr,
            weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
        )
    except ValueError as exc:
        raise ConfigError(f"encoder task: {exc}") from None
    return EncoderTask(cfg)


def _shards_spec(spec: str | None) -> str | None:
    """A local shard directory or index made absolute (the run may be resumed from another cwd); patterns and
    URLs as given."""
    from pathlib import Path

    return str(Path(spec).resolve()) if spec is not None and Path(spec).exists() else spec


def _class_names(args: argparse.Namespace) -> tuple[str, ...]:
    """Sorted label vocabulary of the training data (with --shards: the classes their index lists)."""
    from sara.encoder.data import clips_from_dir, clips_from_manifest

    if args.shards is not None:
        from sara.data.shard_source import resolve_shards

        _, index = resolve_shards(args.shards)
        return () if index is None else index.classes

    clips = clips_from_manifest(args.manifest, None) if args.manifest else clips_from_dir(args.data)
    return tuple(sorted({label for clip in clips for label in clip.labels}))
