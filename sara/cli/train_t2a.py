"""Flags of ``sara train t2a`` (the common loop flags come from :mod:`sara.cli.train`).

Example (latents cached once with ``sara encode``)::

    sara encode corpus/ --encoder enc/ --output latents/
    sara train t2a --run-dir runs/t2a --data corpus/manifest.jsonl --latent-cache latents/ --preset small \\
        --vocoder releases/voc --max-steps 100000 --sample-every 5000 --export releases/t2a
    sara train t2a --run-dir runs/t2a-ft --data ft/manifest.jsonl --latent-cache ft-latents/ \\
        --stage finetune --init-from runs/t2a --vocoder releases/voc --export releases/t2a-ft

Streaming WebDataset shards (``sara data shard``; latents inside them, or from a cache by clip key)::

    sara train t2a --run-dir runs/t2a --shards shards/ --latent-cache store/ --preset small
"""

from __future__ import annotations

import argparse
from typing import Any

PRESETS = ("paper", "small", "tiny")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the text-to-audio task's flags."""
    g = p.add_argument_group("t2a")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", default=None, help="corpus manifest (.jsonl with path/captions/split)")
    src.add_argument("--shards", default=None, metavar="SPEC",
                     help="stream WebDataset shards instead: a `sara data shard` directory, a brace pattern "
                          "(dir/shard-{000000..000009}.tar) or URLs webdataset opens")
    g.add_argument("--latent-cache", default=None,
                   help="cache written by `sara encode` (per-file directory or sharded store); required with "
                        "--data, optional with --shards that hold latents")
    g.add_argument("--shuffle-buffer", type=int, default=512, help="with --shards: clips per shuffle buffer")
    g.add_argument("--preset", choices=PRESETS, default="small", help="DiT size (ignored with --init-from)")
    g.add_argument("--dim", type=int, default=None, help="override the preset's width")
    g.add_argument("--depth", type=int, default=None, help="override the preset's number of blocks")
    g.add_argument("--num-heads", type=int, default=None, help="override the preset's attention heads")
    g.add_argument("--latent-dim", type=int, default=None,
                   help="latent channels (default: read from the latent cache)")
    g.add_argument("--pooled-text", action="store_true",
                   help="also add the pooled prompt to the AdaLN conditioning (sara extension; works with "
                        "--init-from, starting from the source's function)")
    g.add_argument("--class-balance", type=float, default=0.0,
                   help="draw training clips with weight (clips of their class) ** -this; 0 = uniform, 1 = classes equal")
    g.add_argument("--text-encoder", choices=("minilm", "t5"), default="minilm")
    g.add_argument("--t5-path", default=None, help="local FLAN-T5 directory or cached HF id (with t5)")
    g.add_argument("--stage", choices=("pretrain", "finetune"), default="pretrain")
    g.add_argument("--init-from", default=None, help="run dir / release / official dir to start from")
    g.add_argument("--segment-seconds", type=float, default=10.0, help="training crop length")
    g.add_argument("--lr", type=float, default=None, help="default 1e-4 (pretrain) or 2e-5 (finetune)")
    g.add_argument("--warmup-steps", type=int, default=500)
    g.add_argument("--cfg-drop", type=float, default=0.2, help="condition dropout probability")
    g.add_argument("--timestep-sampling", choices=("logit_normal", "uniform"), default="logit_normal")
    g.add_argument("--timestep-shift", type=float, default=1.0,
                   help="shift training noise levels towards noise (SD3 map; 1 = official)")
    g.add_argument("--vocoder", default=None, help="vocoder release (audio samples and --export)")
    g.add_argument("--sample-prompts", nargs="+", default=None, help="prompts for --sample-every")
    g.add_argument("--sample-steps", type=int, default=50)


def _model_config(args: argparse.Namespace, model: Any) -> Any:
    """Apply the size overrides, and the latent width found in the cache, to a preset."""
    import dataclasses

    overrides = {k: v for k, v in (("dim", args.dim), ("depth", args.depth), ("num_heads", args.num_heads))
                 if v is not None}
    if args.dim is not None and model.context_dim == model.dim:
        overrides["context_dim"] = args.dim  # presets keep the context width equal to the model width
    latent_dim = args.latent_dim if args.latent_dim is not None else cache_latent_dim(args)
    if latent_dim is not None:
        overrides["latent_dim"] = latent_dim
    if args.pooled_text:
        overrides["pooled_text"] = True
    return dataclasses.replace(model, **overrides)


def cache_latent_dim(args: argparse.Namespace) -> int | None:
    """Channels ``D`` of the ``--latent-cache`` (either layout), else of the ``--shards``' latents (None if
    unknown)."""
    if args.latent_cache is not None:
        from sara.data.latent_store import open_latent_cache

        return open_latent_cache(args.latent_cache).latent_dim
    if args.shards is not None:
        from sara.data.shard_source import shards_latent_dim

        return shards_latent_dim(args.shards)
    return None


def build_task(args: argparse.Namespace) -> Any:
    """The :class:`~sara.dit.training.TextToAudioTask` described by ``args``."""
    import dataclasses

    from sara.dit import DiTConfig
    from sara.dit.training import T2ATrainConfig, TextToAudioTask
    from sara.errors import ConfigError
    from sara.text import TextEncoderSpec

    try:
        spec = TextEncoderSpec(kind=args.text_encoder, path=args.t5_path)
        model = _model_config(args, getattr(DiTConfig, args.preset)())
        if args.text_encoder == "t5":
            model = dataclasses.replace(model, text_dim=None)  # set below from the encoder's width
        extra = {} if args.sample_prompts is None else {"sample_prompts": tuple(args.sample_prompts)}
        cfg = T2ATrainConfig(
            manifest=args.data, latent_dir=args.latent_cache, shards=args.shards, shuffle_buffer=args.shuffle_buffer,
            model=model, text_encoder=spec, stage=args.stage,
            init_from=args.init_from, segment_seconds=args.segment_seconds, lr=args.lr,
            warmup_steps=args.warmup_steps, cfg_drop_ratio=args.cfg_drop, timestep_sampling=args.timestep_sampling,
            timestep_shift=args.timestep_shift,
            vocoder=args.vocoder, sample_steps=args.sample_steps, class_balance=args.class_balance, **extra,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    task = TextToAudioTask(cfg)
    if cfg.text_encoder.kind == "t5" and cfg.init_from is None:
        encoder = task.text_encoder  # the DiT's text_dim follows the T5 width (1024 for flan-t5-large)
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, text_dim=encoder.dim))
        task = TextToAudioTask(cfg, text_encoder=encoder)
    return task
