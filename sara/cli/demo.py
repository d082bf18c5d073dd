"""``sara demo``: generate a few clips with the bundled models and say where they are."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from sara.cli._args import float_range

DEMO_PROMPTS: tuple[str, ...] = (
    "a dog barking",
    "a piano playing a melody",
    "a man speaking",
    "a bell ringing",
)


DEMO_SECONDS = 4.0  # clip length for models without a default duration (AudioGen)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    p = sub.add_parser("demo", help="generate example clips with every bundled demo model (one folder each)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--output", "-o", default="demo_out", help="directory for the wav files")
    p.add_argument("--model", default=None,
                   help="one model directory of any system (default: every bundled demo model, each into "
                        "OUTPUT/<its name>/)")
    p.add_argument("--prompt", action="append", default=None, help="prompt(s) to use instead of the defaults")
    p.add_argument("--duration", type=float_range(0.0, 600.0, low_open=True), default=None,
                   help=f"seconds per clip (default: the model's, else {DEMO_SECONDS:g} s)")
    p.add_argument("--seed", type=int, default=0)
    from sara.cli._runtime import add_runtime_arguments

    add_runtime_arguments(p)
    p.set_defaults(func=run)


def slug(text: str, limit: int = 60) -> str:
    """File-name-safe version of a prompt."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit] or "clip"


def run(args: argparse.Namespace) -> int:
    """Generate the demo clips: ``--model`` into ``--output``, else each bundled model into its own folder."""
    from sara.cli._output import check_output_dir
    from sara.errors import ConfigError
    from sara.pretrained import bundled_models

    if args.model is not None and not Path(args.model).is_dir():
        raise ConfigError(f"--model {args.model}: model directory does not exist")
    prompts = args.prompt or list(DEMO_PROMPTS)
    if any(not p.strip() for p in prompts):
        raise ConfigError("--prompt is empty")
    models = [Path(args.model)] if args.model is not None else bundled_models()
    if not models:
        raise ConfigError("no bundled demo models in this installation; pass --model DIR")
    out_dir = check_output_dir(args.output)
    for model in models:
        _demo_one(model, out_dir if args.model is not None else out_dir / model.name, prompts, args)
    return 0


def _demo_one(model: Path, out_dir: Path, prompts: list[str], args: argparse.Namespace) -> None:
    """Generate ``prompts`` with the model at ``model`` (any system) into ``out_dir``; one file per prompt
    (repeated slugs get ``-2``, ...)."""
    import time

    import torch

    from sara.audio.io import save_audio
    from sara.cli._output import UniqueNames
    from sara.cli._runtime import apply_runtime
    from sara.pipelines.detect import detect_model_kind, load_pipeline

    kind = detect_model_kind(model)
    pipe = apply_runtime(load_pipeline(model), args)
    duration = args.duration
    if duration is None and kind in ("audiogen", "sara-audiogen"):
        duration = DEMO_SECONDS
    print(f"model: {model} ({kind})")
    start = time.perf_counter()
    with torch.inference_mode():
        audio = pipe(prompts, duration=duration, seed=args.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = UniqueNames("demo")
    for prompt, wav in zip(prompts, audio):
        wav = wav.reshape(-1).cpu()
        rms = float(wav.pow(2).mean().sqrt())
        path = save_audio(out_dir / names.claim(f"{slug(prompt)}.wav", repr(prompt)), wav, pipe.sample_rate)
        print(f"wrote {path}  ({wav.shape[-1] / pipe.sample_rate:.1f} s, rms {rms:.3f})  <- {prompt!r}")
    print(f"  {len(prompts)} clips in {time.perf_counter() - start:.1f} s")
