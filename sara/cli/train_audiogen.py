"""Flags of ``sara train audiogen``: the AudioGen token LM from cached codec tokens (the common loop flags come
from :mod:`sara.cli.train`).

CPU demo defaults (a ~8 M-parameter ``small`` LM, MiniLM text): 5 s crops, lr 1e-3 with 500 warm-up steps and
inverse-sqrt decay.  The paper's recipe (``config/solver/audiogen/audiogen_base_16khz.yaml``) is
``--preset paper --text-encoder t5 --t5-path t5-large --segment-seconds 10 --lr 5e-4 --warmup-steps 3000``
with batch 256 (128 after mixing).  Example::

    sara train audiogen --run-dir runs/ag --data corpus/manifest.jsonl --token-cache tokens/ \\
        --codec releases/codec --max-steps 20000 --export releases/audiogen
"""

from __future__ import annotations

import argparse
from typing import Any

PRESETS = ("paper", "small", "tiny")
FRAME_RATE = 50  # codec frames per second (EnCodec 16 kHz, hop 320)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the AudioGen LM task's flags."""
    g = p.add_argument_group("audiogen")
    g.add_argument("--data", required=True, help="corpus manifest (.jsonl with path/captions/split)")
    g.add_argument("--token-cache", required=True,
                   help="codec tokens: <dir>/<manifest path>.safetensors holding 'codes' [K, F]")
    g.add_argument("--preset", choices=PRESETS, default="small", help="LM size (paper = audiogen-medium)")
    g.add_argument("--dim", type=int, default=None, help="override the preset's width")
    g.add_argument("--num-layers", type=int, default=None, help="override the preset's depth")
    g.add_argument("--num-heads", type=int, default=None, help="override the preset's attention heads")
    g.add_argument("--card", type=int, default=None,
                   help="codebook size (default: the token cache's codec.json, else the preset's 2048)")
    g.add_argument("--text-encoder", choices=("minilm", "t5"), default="minilm")
    g.add_argument("--t5-path", default=None, help="local T5 directory or cached HF id (with t5), e.g. t5-large")
    g.add_argument("--codec", default=None, help="codec release bundled by --export (else a token-only release)")
    g.add_argument("--build-tokens", action="store_true",
                   help="encode --data through --codec into --token-cache first (skips clips already encoded)")
    g.add_argument("--segment-seconds", type=float, default=5.0, help="training crop length")
    g.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (paper 5e-4)")
    g.add_argument("--warmup-steps", type=int, default=500, help="linear warm-up, then inverse-sqrt decay")
    g.add_argument("--weight-decay", type=float, default=0.1)
    g.add_argument("--cfg-drop", type=float, default=0.1, help="condition dropout probability")
    g.add_argument("--sample-prompts", nargs="+", default=None, help="prompts for --sample-every")
    g.add_argument("--sample-seconds", type=float, default=5.0)


def _model_config(args: argparse.Namespace, text_dim: int) -> Any:
    """The preset with the size overrides, the text width and the condition dropout applied."""
    import dataclasses

    from sara.audiogen.config import LMConfig
    from sara.audiogen.training import read_codec_record

    base = getattr(LMConfig, args.preset)()
    record = read_codec_record(args.token_cache) or {}
    card = args.card if args.card is not None else record.get("cardinality")
    n_q = record.get("num_codebooks")
    overrides = {k: v for k, v in (("dim", args.dim), ("num_layers", args.num_layers),
                                   ("num_heads", args.num_heads), ("card", card)) if v is not None}
    if n_q is not None and n_q != base.n_q:
        overrides.update(n_q=int(n_q), delays=tuple(range(int(n_q))))
    return dataclasses.replace(base, text_dim=text_dim, cfg_dropout=args.cfg_drop, **overrides)


def build_task(args: argparse.Namespace) -> Any:
    """The :class:`~sara.audiogen.training.AudioGenTask` described by ``args``."""
    from sara.audiogen.conditioning import build_text_conditioner
    from sara.audiogen.training import AudioGenTask, AudioGenTrainConfig
    from sara.errors import ConfigError
    from sara.text import TextEncoderSpec

    if args.build_tokens:
        build_tokens(args)
    extra = {} if args.sample_prompts is None else {"sample_prompts": tuple(args.sample_prompts)}
    try:
        spec = TextEncoderSpec(kind=args.text_encoder, path=args.t5_path)
        text = build_text_conditioner(spec)
        cfg = AudioGenTrainConfig(
            manifest=args.data, token_dir=args.token_cache, model=_model_config(args, text.dim), text_encoder=spec,
            codec=args.codec, segment_frames=max(1, round(args.segment_seconds * FRAME_RATE)), lr=args.lr,
            warmup_steps=args.warmup_steps, weight_decay=args.weight_decay, seed=args.seed,
            sample_seconds=args.sample_seconds, **extra)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return AudioGenTask(cfg, text=text)


def build_tokens(args: argparse.Namespace) -> dict[str, Any]:
    """``--build-tokens``: the manifest's clips through the ``--codec`` release into ``--token-cache``."""
    from sara.codec.model import EncodecCodec
    from sara.codec.tokens import encode_manifest_to_tokens
    from sara.errors import ConfigError

    if args.codec is None:
        raise ConfigError("--build-tokens needs --codec (the codec release that writes the tokens)")
    codec = EncodecCodec.from_pretrained(args.codec).eval()
    summary = encode_manifest_to_tokens(codec, args.data, args.token_cache, progress=True)
    print(f"token cache {args.token_cache}: {summary['written']} written, {summary['skipped']} already there, "
          f"{len(summary['failed'])} unreadable")
    return summary
