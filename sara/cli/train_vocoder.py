"""Flags of ``sara train vocoder`` (the common loop flags come from :mod:`sara.cli.train`).

Example (CPU, tiny model, latents computed on the fly)::

    sara train vocoder --run-dir runs/voc --data corpus/manifest.jsonl --encoder dasheng_base.pt \\
        --preset tiny --max-steps 2000 --batch-size 8 --sample-every 500 --export releases/voc-tiny

Streaming WebDataset shards (``sara data shard``; latents from the shards, a cache or the encoder)::

    sara train vocoder --run-dir runs/voc --shards shards/ --latent-cache latents/ --preset small

Stage 2 (few-step GAN fine-tuning of a stage-1 release; the generator's size comes from ``--init``)::

    sara train vocoder --stage gan --init releases/voc-tiny --gan-steps 1 --run-dir runs/voc-gan \
        --data corpus/manifest.jsonl --encoder dasheng_base.pt --max-steps 4000 --export releases/voc-tiny-1step

``--num-layers`` with ``--stage gan`` deepens ``--init``: the extra blocks start as the identity
(:mod:`sara.vocoder.grow`).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from sara.cli._args import float_range

PRESETS = ("paper", "small", "tiny")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the vocoder task's flags."""
    g = p.add_argument_group("vocoder")
    g.add_argument("--stage", choices=("flow", "gan"), default="flow",
                   help="flow: stage-1 flow matching; gan: stage-2 few-step GAN fine-tuning of --init")
    g.add_argument("--init", default=None, help="vocoder to start from (required for --stage gan)")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", nargs="+", default=None, help="manifests (.jsonl), audio directories or files")
    src.add_argument("--shards", default=None, metavar="SPEC",
                     help="stream WebDataset shards instead: a `sara data shard` directory, a brace pattern "
                          "(dir/shard-{000000..000009}.tar) or URLs webdataset opens")
    g.add_argument("--shuffle-buffer", type=int, default=512, help="with --shards: clips per shuffle buffer")
    g.add_argument("--valid-data", nargs="*", default=[], help="validation sources (default: manifests' valid split)")
    g.add_argument("--encoder", default=None, help="semantic encoder for on-the-fly latents (and the bundle)")
    g.add_argument("--latent-cache", default=None,
                   help="cache written by `sara encode` (per-file directory or sharded store; faster)")
    g.add_argument("--preset", choices=PRESETS, default="small", help="generator size")
    g.add_argument("--channels", type=int, nargs="+", default=None,
                   help="override the preset's per-branch widths (one per branch)")
    g.add_argument("--num-layers", type=int, nargs="+", default=None,
                   help="override the preset's per-branch depths (one per branch); with --stage gan: deepen "
                        "--init's branches to these depths with blocks that start as the identity")
    g.add_argument("--cond-channels", type=int, default=None, help="override the condition encoder's width")
    g.add_argument("--latent-dim", type=int, default=None,
                   help="latent channels (default: the encoder's, else the cache's, else 768)")
    g.add_argument("--segment-seconds", type=float, default=1.6, help="crop length (rounded to 40 ms frames)")
    g.add_argument("--optimizer", choices=("scaled_adam", "adamw"), default="scaled_adam")
    g.add_argument("--lr", type=float, default=None, help="base lr (default 0.035 ScaledAdam, 2e-4 AdamW)")
    g.add_argument("--lr-batches", type=float, default=7500.0, help="Eden2 decay constant (steps)")
    g.add_argument("--warmup-batches", type=float, default=500.0, help="Eden2 warm-up (steps)")
    g.add_argument("--num-log-samples", type=int, default=2, help="clips reconstructed at each --sample-every")
    g.add_argument("--sample-steps", type=int, default=16, help="Euler steps for the logged samples")
    g.add_argument("--class-balance", type=float_range(0.0, 4.0), default=0.0,
                   help="draw training clips with weight (clips of their manifest class) ** -this; 0 = uniform, "
                        "1 = classes equal (sara extension)")
    gan = p.add_argument_group("vocoder stage 2 (--stage gan)")
    gan.add_argument("--gan-steps", type=int, default=1, help="Euler steps trained through and exported (k)")
    gan.add_argument("--no-adversarial", dest="adversarial", action="store_false",
                     help="no discriminators: fine-tune through the k-step sampler on the mel loss alone (cheap)")
    gan.add_argument("--disc-preset", choices=PRESETS, default="paper", help="discriminator widths")
    gan.add_argument("--gen-start-step", type=int, default=1000, help="discriminator-only warm-up batches")
    gan.add_argument("--mel-weight", type=float, default=45.0, help="weight of the multi-scale log-mel L1")
    gan.add_argument("--mel-floor", type=float, default=1e-7,
                     help="magnitude floor of the log-mel L1 (spec 1e-7; on corpora with digital silence 1e-4 "
                          "keeps the loss on audible content)")
    gan.add_argument("--semantic-weight", type=float, default=0.0,
                     help="weight of the semantic consistency loss (the encoder's latents of the output vs of the "
                          "real audio; needs --encoder; sara extension, 0 = off)")
    gan.add_argument("--lr-gen", type=float, default=0.002)
    gan.add_argument("--lr-disc", type=float, default=0.02)


def build_task(args: argparse.Namespace) -> Any:
    """The :class:`~sara.vocoder.training.VocoderTask` described by ``args``."""
    from sara.errors import ConfigError
    from sara.vocoder import VocoderConfig
    from sara.vocoder.training import VocoderTask, VocoderTrainConfig

    if args.stage == "gan":
        return _build_gan_task(args)
    if args.init is not None:
        raise ConfigError("--init is for --stage gan (stage 1 trains from a fresh initialisation)")
    if args.semantic_weight != 0.0 or args.mel_floor != 1e-7:
        raise ConfigError("--semantic-weight and --mel-floor are stage-2 losses (--stage gan)")
    model = getattr(VocoderConfig, args.preset)()
    overrides = {k: v for k, v in (("channels", args.channels and tuple(args.channels)),
                                   ("num_layers", args.num_layers and tuple(args.num_layers)),
                                   ("cond_enc_channels", args.cond_channels)) if v is not None}
    try:
        model = dataclasses.replace(model, **overrides)
    except ValueError as exc:
        raise ConfigError(f"vocoder: {exc}") from None
    latent_dim = args.latent_dim if args.latent_dim is not None else _source_latent_dim(args)
    try:
        cfg = VocoderTrainConfig(
            model=dataclasses.replace(model, latent_dim=model.latent_dim if latent_dim is None else latent_dim),
            train_data=tuple(args.data or ()), valid_data=tuple(args.valid_data), encoder=args.encoder,
            latent_cache=args.latent_cache, shards=args.shards, shuffle_buffer=args.shuffle_buffer,
            segment_seconds=args.segment_seconds, optimizer=args.optimizer, lr=args.lr,
            lr_batches=args.lr_batches, warmup_batches=args.warmup_batches,
            num_log_samples=args.num_log_samples, sample_steps=args.sample_steps, class_balance=args.class_balance,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return VocoderTask(cfg)


def _build_gan_task(args: argparse.Namespace) -> Any:
    """The stage-2 :class:`~sara.vocoder.gan.VocoderGANTask`; the generator's config is that of ``--init``."""
    from sara.errors import ConfigError
    from sara.vocoder import SemanticVocoder
    from sara.vocoder.discriminators import DiscriminatorConfig
    from sara.vocoder.gan import VocoderGANTask, VocoderGANTrainConfig
    from sara.vocoder.grow import check_deepening

    if args.init is None:
        raise ConfigError("--stage gan needs --init: the stage-1 vocoder to fine-tune")
    ignored = [flag for flag, value in (("--lr", args.lr), ("--channels", args.channels),
                                        ("--cond-channels", args.cond_channels),
                                        ("--latent-dim", args.latent_dim)) if value is not None]
    if ignored:
        raise ConfigError(f"{', '.join(ignored)} do not apply to --stage gan (the generator comes from --init; "
                          "use --lr-gen / --lr-disc)")
    model = SemanticVocoder.from_pretrained(args.init).config
    try:
        if args.num_layers is not None:  # deepen --init with identity blocks (sara.vocoder.grow)
            check_deepening(tuple(model.num_layers), tuple(args.num_layers))
            model = dataclasses.replace(model, num_layers=tuple(args.num_layers))
        cfg = VocoderGANTrainConfig(
            model=model, train_data=tuple(args.data or ()), valid_data=tuple(args.valid_data), encoder=args.encoder,
            latent_cache=args.latent_cache, shards=args.shards, shuffle_buffer=args.shuffle_buffer,
            segment_seconds=args.segment_seconds, optimizer=args.optimizer,
            warmup_batches=args.warmup_batches, num_log_samples=args.num_log_samples, init=str(args.init),
            gen_steps=args.gan_steps, adversarial=args.adversarial, discriminator=getattr(DiscriminatorConfig, args.disc_preset)(),
            gen_start_step=args.gen_start_step, mel_weight=args.mel_weight, lr_gen=args.lr_gen, lr_disc=args.lr_disc,
            semantic_weight=args.semantic_weight, mel_floor=args.mel_floor, class_balance=args.class_balance,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return VocoderGANTask(cfg)


def _source_latent_dim(args: argparse.Namespace) -> int | None:
    """Latent channels of ``--encoder``, of ``--latent-cache`` (either layout) or of the ``--shards``' latents
    (None if none of them says)."""
    if args.encoder is not None:
        from sara.vocoder.vocoder import load_encoder

        return int(load_encoder(args.encoder).latent_dim)
    from sara.cli.train_t2a import cache_latent_dim

    return cache_latent_dim(args)  # the same lookup the DiT trainer uses
