"""``sara train <task>``: the common optimisation flags; each task module adds its own.

Task modules are ``sara/cli/train_<task>.py`` exposing ``add_arguments(parser)`` and
``build_task(args) -> TrainTask``.  Multi-GPU: ``accelerate launch -m sara.cli.__main__ train ...``.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

TASKS: tuple[str, ...] = ("encoder", "vocoder", "t2a", "vae", "hifigan", "ldm", "codec", "audiogen", "dcldm")

_HELP = {
    "encoder": "MAE pretraining / supervised fine-tuning of the semantic encoder",
    "vocoder": "the flow-matching SemanticVocoder (latents -> 24 kHz waveform)",
    "t2a": "the text-to-latent DiT",
    "vae": "the mel VAE of the latent-diffusion system (AudioLDM / Tango)",
    "hifigan": "the 16 kHz HiFi-GAN vocoder (mel -> waveform) of the latent-diffusion system",
    "ldm": "the latent-diffusion UNet on mel-VAE latents (Tango)",
    "codec": "the 16 kHz EnCodec codec of AudioGen",
    "audiogen": "the AudioGen autoregressive token LM",
    "dcldm": "DC-LDM: the latent-diffusion UNet with extra cross-attention to AudioGen acoustic encodings",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` with one sub-command per available task."""
    parser = sub.add_parser("train", help="train a model (resumes from --run-dir)")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    for name in TASKS:
        module = _task_module(name)
        if module is None:
            continue
        p = tasks.add_parser(name, help=_HELP[name], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        add_common_arguments(p)
        module.add_arguments(p)
        p.set_defaults(func=run, task_module=module)


def _task_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"sara.cli.train_{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"sara.cli.train_{name}":
            return None
        raise


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    """Flags that map onto :class:`sara.train.TrainConfig`."""
    g = p.add_argument_group("training loop")
    g.add_argument("--run-dir", required=True, help="checkpoints, metrics and samples; reused to resume")
    g.add_argument("--max-steps", type=int, default=1000)
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--grad-accum", type=int, default=1)
    g.add_argument("--grad-clip", type=float, default=None,
                   help="max grad norm (default: the task's choice; 0 disables)")
    g.add_argument("--ema-decay", type=float, default=0.999, help="0 disables EMA")
    g.add_argument("--num-workers", type=int, default=0)
    g.add_argument("--log-every", type=int, default=10)
    g.add_argument("--ckpt-every", type=int, default=500)
    g.add_argument("--valid-every", type=int, default=500)
    g.add_argument("--sample-every", type=int, default=0, help="0 disables samples")
    g.add_argument("--mixed-precision", choices=("no", "bf16", "fp16"), default="no")
    g.add_argument("--gradient-checkpointing", action="store_true",
                   help="recompute each block in the backward pass (less activation memory, ~1/3 more compute; "
                        "DiT and vocoder)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--max-minutes", type=float, default=None, help="stop and checkpoint after this wall time")
    g.add_argument("--export", default=None, metavar="DIR", help="write a release directory when done")



def run(args: argparse.Namespace) -> int:
    """Build the task, train, optionally export."""
    from sara.errors import ConfigError
    from sara.train import TrainConfig, export_run, fit

    try:
        task = args.task_module.build_task(args)
    except ValueError as exc:  # a task config's __post_init__ rejected a flag combination
        raise ConfigError(str(exc)) from None
    default_clip = getattr(task, "default_grad_clip", 1.0)
    grad_clip = default_clip if args.grad_clip is None else (args.grad_clip or None)
    cfg = TrainConfig(
        run_dir=args.run_dir, max_steps=args.max_steps, batch_size=args.batch_size, grad_accum=args.grad_accum,
        grad_clip=grad_clip, ema_decay=args.ema_decay or None, num_workers=args.num_workers,
        log_every=args.log_every, ckpt_every=args.ckpt_every, valid_every=args.valid_every,
        sample_every=args.sample_every, mixed_precision=args.mixed_precision, seed=args.seed,
        max_minutes=args.max_minutes, gradient_checkpointing=args.gradient_checkpointing,
    )
    metrics = fit(task, cfg)
    if metrics:
        print("final: " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))
    if args.export:
        out = export_run(args.run_dir, args.export)
        print(f"exported {out}")
    return 0
