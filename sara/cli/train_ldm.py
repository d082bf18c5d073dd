"""Flags of ``sara train ldm`` (the common loop flags come from :mod:`sara.cli.train`).

The UNet trains on a latent cache (:mod:`sara.ldm.cache`).  ``--build-cache`` (re)builds it first from a corpus
manifest and a mel-VAE release; an interrupted build resumes, a finished one is reused.  Example::

    sara train ldm --run-dir runs/ldm --latent-cache cache/ldm --build-cache --data corpus/manifest.jsonl \\
        --vae releases/vae --vocoder releases/hifigan --frames 512 --preset small --lr 1e-4 \\
        --max-steps 20000 --export releases/ldm
"""

from __future__ import annotations

import argparse
from typing import Any

PRESETS = ("tango", "tango_xl", "small", "tiny")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the LDM task's flags."""
    g = p.add_argument_group("ldm")
    g.add_argument("--latent-cache", required=True, help="latent cache directory (see --build-cache)")
    g.add_argument("--build-cache", action="store_true",
                   help="encode --data through --vae into --latent-cache first (reuses finished files)")
    g.add_argument("--data", default=None, help="corpus manifest (.jsonl with path/captions/split), for --build-cache")
    g.add_argument("--frames", type=int, default=1024,
                   help="mel frames per clip for --build-cache (100 per second; Tango: 1024 = 10.24 s); keep it a "
                        "multiple of 32 (VAE factor 4 x 8 for the UNet's 4 levels), as LatentDiffusion generates")
    g.add_argument("--mix-fraction", type=float, default=0.5,
                   help="caption mixtures per training clip for --build-cache (Tango: one per two clips; 0 = none)")
    g.add_argument("--preset", choices=PRESETS, default="small", help="UNet size (ignored with --init-from)")
    g.add_argument("--text-encoder", choices=("minilm", "t5"), default="minilm")
    g.add_argument("--t5-path", default=None, help="local FLAN-T5 directory or cached HF id (with t5)")
    g.add_argument("--init-from", default=None, help="UNet / LatentDiffusion release, ldm run dir or Tango dir")
    g.add_argument("--lr", type=float, default=3e-5, help="AdamW learning rate (Tango: 3e-5)")
    g.add_argument("--warmup-steps", type=int, default=0)
    g.add_argument("--lr-schedule", choices=("linear", "constant"), default="linear",
                   help="after warm-up: linear decay to 0 at --max-steps (Tango) or constant")
    g.add_argument("--snr-gamma", type=float, default=5.0, help="Min-SNR gamma (0 = plain MSE)")
    g.add_argument("--uncondition-prob", type=float, default=0.1,
                   help="probability of zeroing a sample's text states (CFG; Tango's --uncondition)")
    g.add_argument("--no-mixtures", action="store_true", help="do not train on the cache's caption mixtures")
    g.add_argument("--posterior-mean", action="store_true",
                   help="train on the VAE posterior mean instead of a fresh sample per step")
    g.add_argument("--vae", default=None, help="mel-VAE release (--build-cache, samples and --export)")
    g.add_argument("--vocoder", default=None, help="HiFi-GAN release (samples and a full --export)")
    g.add_argument("--sample-prompts", nargs="+", default=None, help="prompts for --sample-every")
    g.add_argument("--sample-steps", type=int, default=25, help="DPM-Solver++ steps of the samples")


def build_task(args: argparse.Namespace) -> Any:
    """The :class:`~sara.ldm.training.LDMTask` described by ``args`` (building the cache first if asked)."""
    from sara.errors import ConfigError
    from sara.ldm.config import UNetConfig
    from sara.ldm.training import LDMTask, LDMTrainConfig
    from sara.text import TextEncoderSpec

    if args.build_cache:
        build_cache(args)
    extra = {} if args.sample_prompts is None else {"sample_prompts": tuple(args.sample_prompts)}
    try:
        cfg = LDMTrainConfig(
            latent_cache=args.latent_cache, unet=getattr(UNetConfig, args.preset)(),
            text_encoder=TextEncoderSpec(kind=args.text_encoder, path=args.t5_path), init_from=args.init_from,
            lr=args.lr, warmup_steps=args.warmup_steps, lr_schedule=args.lr_schedule,
            snr_gamma=args.snr_gamma or None, uncondition_prob=args.uncondition_prob,
            mixtures=not args.no_mixtures, sample_posterior=not args.posterior_mean, seed=args.seed,
            vae=args.vae, vocoder=args.vocoder, sample_steps=args.sample_steps, **extra,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return LDMTask(cfg)


def build_cache(args: argparse.Namespace) -> Any:
    """Encode ``--data`` through ``--vae`` into ``--latent-cache`` (Tango's mel front end at ``--frames``)."""
    from sara.data.manifest import load_manifest
    from sara.errors import ConfigError
    from sara.ldm.cache import build_latent_cache
    from sara.mel.vae import MelVAE

    if args.data is None or args.vae is None:
        raise ConfigError("--build-cache needs --data (a corpus manifest) and --vae (a mel-VAE release)")
    if not 0.0 <= args.mix_fraction <= 4.0:
        raise ConfigError(f"--mix-fraction must be in [0, 4], got {args.mix_fraction}")
    train = [r for r in load_manifest(args.data) if r.get("split", "train") == "train"]
    vae = MelVAE.from_pretrained(args.vae)
    return build_latent_cache(args.data, vae, args.latent_cache, args.frames,
                              num_mixtures=round(args.mix_fraction * len(train)), seed=args.seed)
