"""Thread count vs a CPU-busy neighbour: bundled-demo generation time per setting, idle and beside a busy process.

Each setting runs in a fresh subprocess (OpenMP reads its environment once, when torch loads): the demo
pipeline is loaded, one warm-up generation runs, then the best of ``--repeats`` timed generations is kept.
The neighbour, started and stopped by this script, is a single-threaded torch matrix-multiply loop (what a
background training job with ``OMP_NUM_THREADS=1`` looks like).  ``auto`` is what the ``sara`` commands do
by default (:mod:`sara.runtime.threads`: passive waiting, thread count from idle cores and model size).

    python benchmarks/bench_threads.py [--model sara/pretrained/sara-demo] [--seconds 4] [--repeats 2]

Prints, per setting, the time idle and with the neighbour, and their ratio (the issue's bar: the default
setting's ratio stays <= 2.5).  Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> (requested threads or None for the auto policy, OMP_WAIT_POLICY or None)
SETTINGS: dict[str, tuple[int | None, str | None]] = {
    "1 thread": (1, None),
    "2 threads": (2, None),
    "2 threads, passive wait": (2, "PASSIVE"),
    "auto (sara default)": (None, "PASSIVE"),
}

_CHILD = r"""
import json, os, sys, time
from sara.runtime.threads import configure_threads
import torch
from sara.pipelines.detect import load_pipeline
from sara.runtime.inference import largest_network_params
requested = None if sys.argv[2] == "auto" else int(sys.argv[2])
pipe = load_pipeline(sys.argv[1])
threads = configure_threads(requested, num_params=largest_network_params(pipe))
seconds, repeats = float(sys.argv[3]), int(sys.argv[4])
pipe("a dog barking", duration=seconds, seed=0)
best = float("inf")
for _ in range(repeats):
    t = time.perf_counter(); pipe("a dog barking", duration=seconds, seed=0); best = min(best, time.perf_counter() - t)
print(json.dumps({"seconds": best, "threads": threads}))
"""

_NEIGHBOUR = "import torch\ntorch.set_num_threads(1)\na = torch.randn(512, 512)\nwhile True:\n    a = (a @ a).tanh()\n"


def run_setting(model: str, threads: int | None, policy: str | None, seconds: float, repeats: int) -> dict:
    """Time generation in a fresh subprocess with the given thread request and wait policy."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "SARA_THREADS")}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    args = [sys.executable, "-c", _CHILD, model, "auto" if threads is None else str(threads), str(seconds),
            str(repeats)]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def with_neighbour(fn):  # noqa: ANN001, ANN201 - a thunk and its result
    """Run ``fn()`` while a busy single-threaded neighbour process occupies one core."""
    proc = subprocess.Popen([sys.executable, "-c", _NEIGHBOUR])
    try:
        time.sleep(2.0)  # let it start and spin up
        return fn()
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "sara/pretrained/sara-demo"))
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print(f"model {args.model}, {args.seconds:g} s of audio, cores {os.cpu_count()}")
    print(f"{'setting':<26} {'threads':>7} {'idle s':>8} {'busy s':>8} {'busy/idle':>9} {'x realtime idle':>15}")
    for name, (threads, policy) in SETTINGS.items():
        idle = run_setting(args.model, threads, policy, args.seconds, args.repeats)
        busy = with_neighbour(lambda t=threads, p=policy: run_setting(args.model, t, p, args.seconds, args.repeats))
        ratio = busy["seconds"] / idle["seconds"]
        print(f"{name:<26} {idle['threads']:>3}/{busy['threads']:<3} {idle['seconds']:8.2f} {busy['seconds']:8.2f} "
              f"{ratio:9.2f} {args.seconds / idle['seconds']:15.1f}")


if __name__ == "__main__":
    main()
