"""``sara edit``: a variation of a clip guided by a prompt (SARA models).

    sara edit in.wav -o out.wav --prompt "a dog barks" --strength 0.6

``--strength`` is the flow time the clip is moved to: 0 returns its reconstruction, 1 ignores it (plain
generation of the same length).  The output has the input's duration, exactly.
"""

from __future__ import annotations

import argparse

from sara.cli._args import float_range
from sara.cli._edit import (
    add_sampling_arguments,
    check_input,
    load_edit_pipeline,
    read_audio,
    sampling_kwargs,
    write_result,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``edit`` command."""
    p = sub.add_parser("edit", help="make a prompt-guided variation of an audio clip")
    add_sampling_arguments(p)
    p.add_argument("--prompt", required=True, help="text prompt for the variation")
    p.add_argument("--strength", type=float_range(0.0, 1.0), default=0.5,
                   help="0 = keep the clip (its reconstruction) ... 1 = new sound (default 0.5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the variation; the exit status."""
    check_input(args, "edit")
    pipe = load_edit_pipeline(args, "edit")
    wav, sr = read_audio(args)
    out = pipe.variation(wav, sr, args.prompt, args.strength, **sampling_kwargs(args))
    return write_result(args, out, pipe.sample_rate)
