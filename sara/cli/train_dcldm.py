"""Flags of ``sara train dcldm`` (the common loop flags come from :mod:`sara.cli.train`).

DC-LDM trains on the LDM latent cache (:mod:`sara.ldm.cache`) plus AudioGen tokens (:mod:`sara.dcldm.tokens`):
the clips' codec tokens (``--acoustic-source codec``) or the LM's tokens per caption (``lm``).  ``--build-cache``
builds the latent cache as ``sara train ldm`` does; ``--build-tokens`` fills ``--token-cache`` first (both resume
and reuse finished files).  Example (the paper's best placement, initialised from an LDM release)::

    sara train dcldm --run-dir runs/dcldm --latent-cache cache/ldm --data corpus/manifest.jsonl \\
        --audiogen releases/audiogen --token-cache cache/codec-tokens --build-tokens \\
        --init-from releases/ldm --placement down1 up1 --vae releases/vae --vocoder releases/hifigan \\
        --max-steps 20000 --export releases/dcldm
"""

from __future__ import annotations

import argparse
from typing import Any

PRESETS = ("tango", "tango_xl", "small", "tiny")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the DC-LDM task's flags."""
    g = p.add_argument_group("dcldm")
    g.add_argument("--latent-cache", required=True, help="latent cache directory (see --build-cache)")
    g.add_argument("--build-cache", action="store_true", help="encode --data through --vae into --latent-cache first")
    g.add_argument("--data", default=None, help="corpus manifest (for --build-cache and codec --build-tokens)")
    g.add_argument("--frames", type=int, default=1024, help="mel frames per clip for --build-cache (100 / s)")
    g.add_argument("--mix-fraction", type=float, default=0.0,
                   help="caption mixtures per training clip for --build-cache (used only with --mixtures)")
    g.add_argument("--audiogen", required=True, help="AudioGen directory (sara release or audiocraft layout)")
    g.add_argument("--token-cache", required=True, help="codec token cache or LM token cache directory")
    g.add_argument("--build-tokens", action="store_true",
                   help="fill --token-cache first: the clips' codec tokens (codec) or the LM's per caption (lm)")
    g.add_argument("--acoustic-source", choices=("codec", "lm"), default="codec",
                   help="training tokens: the clip's own codec tokens or AudioGen LM tokens per caption")
    g.add_argument("--acoustic", choices=("t2a", "t2a_mel"), default="t2a",
                   help="E_t2a (codec latent, 128-d at 50 Hz) or E'_t2a (decoded audio through the mel VAE)")
    g.add_argument("--positions", choices=("sinusoidal", "none"), default="sinusoidal")
    g.add_argument("--placement", nargs="+", choices=("down1", "mid", "up1"), default=["down1", "up1"],
                   help="acoustic cross-attention positions (recorded in the release config)")
    g.add_argument("--conditioning", choices=("dual", "acoustic"), default="dual",
                   help="dual = DC-LDM; acoustic = the acoustic-only LDM baseline (no text, no placements)")
    g.add_argument("--train-modules", choices=("all", "acoustic"), default="all",
                   help="train the whole UNet or only the added acoustic modules")
    g.add_argument("--preset", choices=PRESETS, default="small", help="UNet size (ignored with --init-from)")
    g.add_argument("--text-encoder", choices=("minilm", "t5"), default="minilm")
    g.add_argument("--t5-path", default=None, help="local FLAN-T5 directory or cached HF id (with t5)")
    g.add_argument("--init-from", default=None,
                   help="Tango dir, LatentDiffusion / UNet release, ldm run, or a DCLDM / DualConditionUNet release")
    g.add_argument("--lr", type=float, default=3e-5, help="AdamW learning rate (Tango: 3e-5)")
    g.add_argument("--warmup-steps", type=int, default=0)
    g.add_argument("--lr-schedule", choices=("linear", "constant"), default="linear")
    g.add_argument("--snr-gamma", type=float, default=5.0, help="Min-SNR gamma (0 = plain MSE)")
    g.add_argument("--uncondition-prob", type=float, default=0.1,
                   help="probability of dropping text and acoustic condition together (CFG)")
    g.add_argument("--mixtures", action="store_true", help="train on caption mixtures too (needs --acoustic-source lm)")
    g.add_argument("--posterior-mean", action="store_true", help="train on the VAE posterior mean")
    g.add_argument("--vae", default=None, help="mel-VAE release (--build-cache, E'_t2a, samples, --export)")
    g.add_argument("--vocoder", default=None, help="HiFi-GAN release (samples and a full --export)")
    g.add_argument("--no-bundle-audiogen", action="store_true",
                   help="the exported release names --audiogen instead of copying it")
    g.add_argument("--sample-prompts", nargs="+", default=None, help="prompts for --sample-every")
    g.add_argument("--sample-steps", type=int, default=25, help="DPM-Solver++ steps of the samples")
    g.add_argument("--sample-guidance", type=float, default=4.0, help="guidance of the samples (the paper's w = 4)")


def _unet_config(args: argparse.Namespace) -> Any:
    """The preset, with ``cross_attention_dim`` = the acoustic width for the acoustic-only baseline."""
    import dataclasses

    from sara.ldm.config import UNetConfig

    cfg = getattr(UNetConfig, args.preset)()
    if args.conditioning != "acoustic":
        return cfg
    return dataclasses.replace(cfg, cross_attention_dim=acoustic_width(args))


def acoustic_width(args: argparse.Namespace) -> int:
    """Width of the chosen acoustic encoding: the codec latent (t2a) or VAE channels x mel rows (t2a_mel)."""
    from sara.audiogen import AudioGen

    if args.acoustic == "t2a":
        return int(AudioGen.from_pretrained(args.audiogen).codec.latent_dim)
    from sara.errors import ConfigError
    from sara.mel.vae import MelVAE

    if args.vae is None:
        raise ConfigError("--acoustic t2a_mel needs --vae (a mel-VAE release)")
    vae = MelVAE.from_pretrained(args.vae)
    return int(vae.latent_channels * (vae.config.n_mels // vae.downsample_factor))


def build_task(args: argparse.Namespace) -> Any:
    """The :class:`~sara.dcldm.training.DCLDMTask` described by ``args`` (building caches first if asked)."""
    from sara.dcldm.acoustic import AcousticConfig
    from sara.dcldm.training import DCLDMTask, DCLDMTrainConfig
    from sara.errors import ConfigError
    from sara.text import TextEncoderSpec

    if args.build_cache:
        from sara.cli.train_ldm import build_cache

        build_cache(args)
    extra = {} if args.sample_prompts is None else {"sample_prompts": tuple(args.sample_prompts)}
    try:
        cfg = DCLDMTrainConfig(
            latent_cache=args.latent_cache, unet=_unet_config(args), init_from=args.init_from,
            text_encoder=TextEncoderSpec(kind=args.text_encoder, path=args.t5_path), lr=args.lr,
            warmup_steps=args.warmup_steps, lr_schedule=args.lr_schedule, snr_gamma=args.snr_gamma or None,
            uncondition_prob=args.uncondition_prob, mixtures=args.mixtures, sample_posterior=not args.posterior_mean,
            seed=args.seed, vae=args.vae, vocoder=args.vocoder, sample_steps=args.sample_steps,
            sample_guidance=args.sample_guidance, audiogen=args.audiogen, token_cache=args.token_cache,
            placements=() if args.conditioning == "acoustic" else tuple(args.placement),
            conditioning=args.conditioning, acoustic=AcousticConfig(kind=args.acoustic, positions=args.positions),
            acoustic_source=args.acoustic_source, train_modules=args.train_modules,
            bundle_audiogen=not args.no_bundle_audiogen, **extra)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    task = DCLDMTask(cfg)
    if args.build_tokens:
        build_tokens(task, args)
    return task


def build_tokens(task: Any, args: argparse.Namespace) -> Any:
    """Fill the token cache: the manifest's codec tokens, or LM tokens for every caption of the latent cache."""
    from sara.errors import ConfigError

    cfg = task.config
    encoder = task.acoustic_encoder
    if cfg.acoustic_source == "codec":
        from sara.codec.tokens import encode_manifest_to_tokens

        if args.data is None:
            raise ConfigError("--build-tokens with --acoustic-source codec needs --data (the corpus manifest)")
        return encode_manifest_to_tokens(encoder.codec, args.data, cfg.token_cache, progress=True)
    from sara.dcldm.tokens import build_lm_token_cache
    from sara.ldm.cache import LatentCache

    cache = LatentCache(cfg.latent_cache)
    captions = [c for item in cache.clips + cache.mixtures for c in item.captions]
    frames = task.token_frames(cache.latent_shape[1])
    return build_lm_token_cache(encoder, captions, cfg.token_cache, frames, seed=cfg.seed, progress=True)
