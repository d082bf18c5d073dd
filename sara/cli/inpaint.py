"""``sara inpaint``: regenerate seconds ``[START, END)`` of a clip from a prompt (SARA models).

    sara inpaint in.wav -o out.wav --start 1.5 --end 2.5 --prompt "a door slams"

Outside the region the output is the clip's reconstruction (``--keep-original``: the input itself); the
edges cross-fade over ``--fade`` seconds inside the region.  The output has the input's duration, exactly.
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
    """Add the ``inpaint`` command."""
    p = sub.add_parser("inpaint", help="regenerate a time region of an audio clip")
    add_sampling_arguments(p)
    p.add_argument("--start", type=float_range(0.0, 3600.0), required=True, help="region start (seconds)")
    p.add_argument("--end", type=float_range(0.0, 3600.0), required=True, help="region end (seconds)")
    p.add_argument("--prompt", required=True, help="text prompt for the region")
    p.add_argument("--fade", type=float_range(0.0, 10.0), default=0.1, help="cross-fade at the edges (s, default 0.1)")
    p.add_argument("--keep-original", action="store_true", help="keep the input itself outside the region")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the inpainted clip; the exit status."""
    from sara.edit.checks import check_region

    seconds = check_input(args, "inpaint")
    check_region(args.start, args.end, seconds)
    pipe = load_edit_pipeline(args, "inpaint")
    wav, sr = read_audio(args)
    kwargs = sampling_kwargs(args)
    out = pipe.inpaint(wav, sr, args.prompt, args.start, args.end, fade=args.fade,
                       keep="original" if args.keep_original else "reconstruction", **kwargs)
    return write_result(args, out, pipe.sample_rate)
