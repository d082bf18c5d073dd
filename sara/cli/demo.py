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


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    p = sub.add_parser("demo", help="generate example clips with the bundled demo model",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--output", "-o", default="demo_out", help="directory for the wav files")
    p.add_argument("--model", default=None, help="release directory (default: the bundled demo model)")
    p.add_argument("--prompt", action="append", default=None, help="prompt(s) to use instead of the defaults")
    p.add_argument("--duration", type=float_range(0.0, 600.0, low_open=True), default=None,
                   help="seconds per clip (default: the model's, 4 s for the bundled one)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def slug(text: str, limit: int = 60) -> str:
    """File-name-safe version of a prompt."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit] or "clip"


def run(args: argparse.Namespace) -> int:
    """Generate the demo clips; one file per prompt (repeated slugs get ``-2``, ...)."""
    import torch

    from sara.audio.io import save_audio
    from sara.cli._output import UniqueNames, check_output_dir
    from sara.errors import ConfigError
    from sara.pretrained import DEFAULT_MODEL

    model = Path(args.model) if args.model else DEFAULT_MODEL
    if not model.is_dir():
        raise ConfigError(f"--model {model}: model directory does not exist")
    from sara.pipelines.text_to_audio import TextToAudio
    prompts = args.prompt or list(DEMO_PROMPTS)
    if any(not p.strip() for p in prompts):
        raise ConfigError("--prompt is empty")
    out_dir = check_output_dir(args.output)
    pipe = TextToAudio.from_pretrained(model)
    print(f"model: {model}")
    names = UniqueNames("demo")
    with torch.inference_mode():
        audio = pipe(prompts, duration=args.duration, seed=args.seed)
    for prompt, wav in zip(prompts, audio):
        rms = float(wav.pow(2).mean().sqrt())
        path = save_audio(out_dir / names.claim(f"{slug(prompt)}.wav", repr(prompt)), wav, pipe.sample_rate)
        print(f"wrote {path}  ({wav.shape[-1] / pipe.sample_rate:.1f} s, rms {rms:.3f})  <- {prompt!r}")
    return 0
