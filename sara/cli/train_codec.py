"""Flags of ``sara train codec``: the 16 kHz EnCodec tokenizer (the common loop flags come from :mod:`sara.cli.train`).

audiocraft's recipe (``config/solver/compression/encodec_audiogen_16khz.yaml``) is ``--preset audiogen`` with
1 s crops, batch 64, Adam 3e-4 (betas 0.5/0.9), the balancer over L1 0.1 / msspec 2 / adversarial 4 / feature
matching 4, and an EMA of 0.99 (``--ema-decay 0.99``); with sara's effective dead-code replacement also lower
the threshold below the codebook usage (e.g. ``--dead-code-threshold 0.1`` for 3200 frames per batch and 2048
codes; see :class:`sara.codec.config.CodecConfig`).  CPU demo::

    sara train codec --run-dir runs/codec --data corpus/manifest.jsonl --preset small --no-adversarial \\
        --batch-size 8 --max-steps 5000 --export releases/codec

Then ``sara.codec.encode_manifest_to_tokens(EncodecCodec.from_pretrained("releases/codec"), ...)`` writes the
token cache that ``sara train audiogen --token-cache`` reads.
"""

from __future__ import annotations

import argparse
from typing import Any

PRESETS = ("audiogen", "small", "tiny")
DISC_PRESETS = ("paper", "small", "tiny")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the codec task's flags."""
    g = p.add_argument_group("codec")
    g.add_argument("--data", nargs="+", required=True, help="manifests (.jsonl), audio directories or files")
    g.add_argument("--valid-data", nargs="*", default=[], help="validation sources (default: manifests' valid split)")
    g.add_argument("--preset", choices=PRESETS, default="small", help="codec size (audiogen = audiocraft's)")
    g.add_argument("--n-filters", type=int, default=None, help="override the preset's SEANet base width")
    g.add_argument("--bins", type=int, default=None, help="override the preset's codebook size")
    g.add_argument("--dead-code-threshold", type=float, default=None,
                   help="override the preset's dead-code threshold (EMA uses per batch; keep it well below "
                        "batch frames / bins)")
    g.add_argument("--segment-seconds", type=float, default=1.0, help="training crop length (audiocraft: 1 s)")
    g.add_argument("--window-seconds", type=float, default=10.0, help="longest audio window read per item")
    g.add_argument("--no-adversarial", dest="adversarial", action="store_false",
                   help="no MS-STFT discriminator: L1 + multi-scale mel only (cheap on a CPU)")
    g.add_argument("--disc-preset", choices=DISC_PRESETS, default="paper", help="discriminator size")
    g.add_argument("--no-balancer", dest="balance_grads", action="store_false",
                   help="plain weighted sum of the losses instead of audiocraft's gradient balancer")
    g.add_argument("--l1-weight", type=float, default=0.1)
    g.add_argument("--msspec-weight", type=float, default=2.0)
    g.add_argument("--adv-weight", type=float, default=4.0)
    g.add_argument("--feat-weight", type=float, default=4.0)
    g.add_argument("--commitment-weight", type=float, default=1.0)
    g.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (codec)")
    g.add_argument("--disc-lr", type=float, default=None, help="Adam learning rate of the discriminator (= --lr)")
    g.add_argument("--num-log-samples", type=int, default=2, help="clips reconstructed at each --sample-every")


def build_task(args: argparse.Namespace) -> Any:
    """The :class:`~sara.codec.training.CodecTask` described by ``args``."""
    import dataclasses

    from sara.codec.config import CodecConfig
    from sara.codec.discriminator import MSSTFTDConfig
    from sara.codec.training import CodecTask, CodecTrainConfig
    from sara.errors import ConfigError

    overrides = {k: v for k, v in (("n_filters", args.n_filters), ("bins", args.bins),
                                   ("threshold_ema_dead_code", args.dead_code_threshold)) if v is not None}
    try:
        model = dataclasses.replace(getattr(CodecConfig, args.preset)(), **overrides)
        cfg = CodecTrainConfig(
            model=model, train_data=tuple(args.data), valid_data=tuple(args.valid_data),
            segment_seconds=args.segment_seconds, window_seconds=args.window_seconds, seed=args.seed,
            adversarial=args.adversarial, discriminator=getattr(MSSTFTDConfig, args.disc_preset)(),
            balance_grads=args.balance_grads, l1_weight=args.l1_weight, msspec_weight=args.msspec_weight,
            adv_weight=args.adv_weight, feat_weight=args.feat_weight, commitment_weight=args.commitment_weight,
            lr=args.lr, disc_lr=args.disc_lr, num_log_samples=args.num_log_samples,
        )
    except ValueError as exc:
        raise ConfigError(f"codec: {exc}") from None
    return CodecTask(cfg)
