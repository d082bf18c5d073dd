"""Flags of ``sara train hifigan`` (the common loop flags come from :mod:`sara.cli.train`).

Example (CPU demo, mel loss only)::

    sara train hifigan --run-dir runs/hifigan --data corpus/manifest.jsonl --preset small --no-adversarial \\
        --max-steps 20000 --batch-size 16 --sample-every 2000 --export releases/hifigan-small

HiFi-GAN V1 (MPD + MSD) at the Tango size, or fine-tuning Tango's own vocoder::

    sara train hifigan --run-dir runs/hifigan-paper --data corpus/manifest.jsonl --preset paper
    sara train hifigan --run-dir runs/hifigan-ft --data corpus/manifest.jsonl --init path/to/tango
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

PRESETS = ("paper", "small", "tiny")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the HiFi-GAN task's flags."""
    g = p.add_argument_group("hifigan")
    g.add_argument("--data", nargs="+", required=True, help="manifests (.jsonl), audio directories or files")
    g.add_argument("--valid-data", nargs="*", default=[], help="validation sources (default: manifests' valid split)")
    g.add_argument("--preset", choices=PRESETS, default=None,
                   help="generator size (default small; paper = Tango's 55 M vocoder); not with --init")
    g.add_argument("--init", default=None,
                   help="vocoder to fine-tune: sara release, Tango dir, diffusers vocoder/ or AudioLDM checkpoint")
    g.add_argument("--segment-samples", type=int, default=8160, help="16 kHz crop length (a multiple of 160)")
    g.add_argument("--no-adversarial", dest="adversarial", action="store_false",
                   help="no discriminators: train on the mel L1 alone (much cheaper on a CPU)")
    g.add_argument("--disc-preset", choices=PRESETS, default="paper", help="MPD / MSD widths")
    g.add_argument("--no-weight-norm", dest="weight_norm", action="store_false",
                   help="train the generator without weight norm")
    g.add_argument("--init-std", type=float, default=None,
                   help="N(0, std) initialisation (HiFi-GAN's intended 0.01); default: PyTorch's, which it "
                        "effectively uses")
    g.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate (both groups)")
    g.add_argument("--lr-decay", type=float, default=0.999, help="lr factor per --lr-decay-steps")
    g.add_argument("--lr-decay-steps", type=int, default=1000, help="steps per --lr-decay factor (continuous)")
    g.add_argument("--mel-weight", type=float, default=45.0, help="weight of the log-mel L1")
    g.add_argument("--fm-weight", type=float, default=2.0, help="weight of the feature-matching losses")
    g.add_argument("--num-log-samples", type=int, default=2, help="clips vocoded at each --sample-every")


def _model_config(args: argparse.Namespace) -> Any:
    """The generator config: the preset's, or that of ``--init``."""
    from sara.errors import ConfigError
    from sara.mel.hifigan import HiFiGAN, HiFiGANConfig

    if args.init is None:
        return getattr(HiFiGANConfig, args.preset or "small")()
    if args.preset is not None:
        raise ConfigError("--preset does not apply with --init (the generator's size comes from --init)")
    return HiFiGAN.from_pretrained(args.init).config


def build_task(args: argparse.Namespace) -> Any:
    """The :class:`~sara.mel.hifigan_training.HiFiGANTask` described by ``args``."""
    from sara.errors import ConfigError
    from sara.mel.frontend import MelConfig
    from sara.mel.hifigan_training import HiFiGANDiscriminatorConfig, HiFiGANTask, HiFiGANTrainConfig

    model = _model_config(args)
    try:
        mel = dataclasses.replace(MelConfig(), n_mels=model.n_mels)
        cfg = HiFiGANTrainConfig(
            model=model, mel=mel, train_data=tuple(args.data), valid_data=tuple(args.valid_data),
            init=None if args.init is None else str(args.init), segment_samples=args.segment_samples,
            seed=args.seed, adversarial=args.adversarial,
            discriminator=getattr(HiFiGANDiscriminatorConfig, args.disc_preset)(), weight_norm=args.weight_norm,
            init_std=args.init_std,
            lr=args.lr, lr_decay=args.lr_decay, lr_decay_steps=args.lr_decay_steps, mel_weight=args.mel_weight,
            fm_weight=args.fm_weight, num_log_samples=args.num_log_samples,
        )
    except ValueError as exc:
        raise ConfigError(f"hifigan: {exc}") from None
    return HiFiGANTask(cfg)
