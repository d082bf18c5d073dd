"""Compilation warm-up and steady state: one pipeline, ``compile=True``, timed call by call (a new duration too).

    OMP_NUM_THREADS=1 python benchmarks/bench_compile.py [--model sara/pretrained/sara-demo] [--dtype bfloat16]

Prints each call's time and real-time factor: the first pays the compilation; a second duration checks that
the dynamic-shape graphs are reused rather than recompiled.
"""

from __future__ import annotations

import argparse
import time

import torch


def main(argv: list[str] | None = None) -> list[float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sara/pretrained/sara-demo")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--durations", type=float, nargs="+", default=[4.0, 4.0, 6.0, 6.0, 4.0])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    from sara.pipelines.detect import load_pipeline

    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model, dtype=args.dtype, compile=True)
    times = []
    for i, seconds in enumerate(args.durations):
        start = time.perf_counter()
        wav = pipe("a dog barks", duration=seconds, seed=0)
        times.append(time.perf_counter() - start)
        print(f"call {i}: {seconds:g} s of audio in {times[-1]:.2f} s ({seconds / times[-1]:.2f}x real time), "
              f"finite {bool(torch.isfinite(wav).all())}", flush=True)
    return times


if __name__ == "__main__":
    main()
