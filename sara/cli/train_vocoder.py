"""Flags of ``sara train vocoder`` (the common loop flags come from :mod:`sara.cli.train`).

Example (CPU, tiny model, latents computed on the fly)::

    sara train vocoder --run-dir runs/voc --data corpus/manifest.jsonl --encoder dasheng_base.pt \\
        --preset tiny --max-steps 2000 --batch-size 8 --sample-every 500 --export releases/voc-tiny
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

PRESETS = ("paper", "small", "tiny")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the vocoder task's flags."""
    g = p.add_argument_group("vocoder")
    g.add_argument("--data", nargs="+", required=True, help="manifests (.jsonl), audio directories or files")
    g.add_argument("--valid-data", nargs="*", default=[], help="validation sources (default: manifests' valid split)")
    g.add_argument("--encoder", default=None, help="semantic encoder for on-the-fly latents (and the bundle)")
    g.add_argument("--latent-cache", default=None, help="directory written by `sara encode` (faster)")
    g.add_argument("--preset", choices=PRESETS, default="small", help="generator size")
    g.add_argument("--channels", type=int, nargs="+", default=None,
                   help="override the preset's per-branch widths (one per branch)")
    g.add_argument("--num-layers", type=int, nargs="+", default=None,
                   help="override the preset's per-branch depths (one per branch)")
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


def build_task(args: argparse.Namespace) -> Any:
    """The :class:`~sara.vocoder.training.VocoderTask` described by ``args``."""
    from sara.errors import ConfigError
    from sara.vocoder import VocoderConfig
    from sara.vocoder.training import VocoderTask, VocoderTrainConfig

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
            model=dataclasses.replace(model, latent_dim=model.latent_dim if latent_dim is None else latent_dim), train_data=tuple(args.data),
            valid_data=tuple(args.valid_data), encoder=args.encoder, latent_cache=args.latent_cache,
            segment_seconds=args.segment_seconds, optimizer=args.optimizer, lr=args.lr,
            lr_batches=args.lr_batches, warmup_batches=args.warmup_batches,
            num_log_samples=args.num_log_samples, sample_steps=args.sample_steps,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return VocoderTask(cfg)


def _source_latent_dim(args: argparse.Namespace) -> int | None:
    """Latent channels of ``--encoder`` or of the first file in ``--latent-cache`` (None if neither)."""
    if args.encoder is not None:
        from sara.vocoder.vocoder import load_encoder

        return int(load_encoder(args.encoder).latent_dim)
    if args.latent_cache is not None:
        from safetensors import safe_open

        first = next(iter(sorted(Path(args.latent_cache).rglob("*.safetensors"))), None)
        if first is not None:
            with safe_open(str(first), framework="pt") as f:
                return int(f.get_slice("latents").get_shape()[0])
    return None
