"""``sara extend``: continue a clip by N seconds after its end, or before its start (SARA models).

    sara extend in.wav -o out.wav --seconds 8 [--prompt "rain"] [--before]

The output is the clip's reconstruction (``--keep-original``: the input itself) followed (``--before``:
preceded) by the new audio, cross-faded over ``--fade`` seconds at the join; exactly ``input + N`` seconds.
Without ``--prompt`` the continuation is unconditional.
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
from sara.edit.checks import MAX_LONG_SECONDS


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``extend`` command."""
    p = sub.add_parser("extend", help="continue an audio clip forwards or backwards")
    add_sampling_arguments(p)
    p.add_argument("--seconds", type=float_range(0.0, MAX_LONG_SECONDS, low_open=True), required=True,
                   help=f"seconds to add (at most {MAX_LONG_SECONDS:g})")
    p.add_argument("--prompt", default=None, help="text prompt (default: unconditional)")
    p.add_argument("--before", action="store_true", help="add the audio before the clip instead of after it")
    p.add_argument("--fade", type=float_range(0.0, 10.0), default=0.1, help="cross-fade at the join (s, default 0.1)")
    p.add_argument("--keep-original", action="store_true", help="keep the input itself instead of its reconstruction")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the extended clip; the exit status."""
    check_input(args, "extend")
    pipe = load_edit_pipeline(args, "extend")
    wav, sr = read_audio(args)
    out = pipe.extend(wav, sr, args.seconds, args.prompt, before=args.before, fade=args.fade,
                      keep="original" if args.keep_original else "reconstruction", **sampling_kwargs(args))
    return write_result(args, out, pipe.sample_rate)
