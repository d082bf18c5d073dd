"""Peak extra memory of vocoder decoding and encoder encoding vs input length (paper sizes, random weights).

Each measurement runs in a fresh subprocess: the model is built, the input and initial noise are allocated,
then a sampler thread reads the resident set size (``/proc/self/statm``) every 2 ms while the call runs.
*Extra* is the highest RSS seen minus the RSS just before the call; it includes the output buffer
(4 bytes per output sample: 5.5 MB for 60 s at 24 kHz) and, for the encoder, its latents.

    python benchmarks/bench_memory.py [--seconds 10 60 600] [--chunk-seconds 10 60]

``--chunk-seconds`` sets ``SemanticVocoder.chunk_frames`` (latent frames per decoded chunk, 25 per second);
60 s was the old default, 10 s the new one.  Memory does not depend on the number of Euler steps, so one
step is used (``--steps``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

_CHILD = r"""
import json, os, sys, threading, time
import torch
torch.set_num_threads(1)
what, seconds, chunk, steps = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
torch.manual_seed(0)
if what == "vocoder":
    from sara.vocoder import SemanticVocoder, VocoderConfig
    model = SemanticVocoder(VocoderConfig.paper()).eval()
    model.chunk_frames = round(chunk * 25)
    frames = round(seconds * 25)
    x = torch.randn(1, 768, frames)
    noise = torch.randn(1, frames * 960)
    call = lambda: model.decode(x, steps=steps, noise=noise)
else:
    from sara.encoder import EncoderConfig, SemanticEncoder
    model = SemanticEncoder(EncoderConfig.paper()).eval()
    x = torch.randn(int(seconds * 16000)) * 0.1
    call = lambda: model.encode_long(x, 16000, block_seconds=chunk)
peak, done = [rss()], threading.Event()
def watch():
    while not done.is_set():
        peak[0] = max(peak[0], rss()); time.sleep(0.002)
before = rss()
thread = threading.Thread(target=watch); thread.start()
start = time.perf_counter()
with torch.inference_mode():
    out = call()
wall = time.perf_counter() - start
done.set(); thread.join()
peak[0] = max(peak[0], rss())
print(json.dumps({"extra_mb": (peak[0] - before) / 2**20, "out_mb": out.numel() * 4 / 2**20, "wall_s": wall}))
"""


def measure(what: str, seconds: float, chunk: float, steps: int) -> dict:
    """One fresh-process measurement."""
    args = [sys.executable, "-c", _CHILD, what, str(seconds), str(chunk), str(steps)]
    out = subprocess.run(args, capture_output=True, text=True, check=True, env={"OMP_NUM_THREADS": "1",
                                                                               "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0, 600.0])
    ap.add_argument("--chunk-seconds", type=float, nargs="+", default=[10.0, 60.0])
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--what", choices=("vocoder", "encoder"), nargs="+", default=["vocoder", "encoder"])
    args = ap.parse_args()
    print(f"{'model':<8} {'chunk s':>7} {'audio s':>8} {'extra MB':>9} {'output MB':>9} {'vs 10 s':>8} {'wall s':>7}")
    for what in args.what:
        for chunk in args.chunk_seconds:
            base = None
            for seconds in args.seconds:
                r = measure(what, seconds, chunk, args.steps)
                base = r["extra_mb"] if base is None else base
                print(f"{what:<8} {chunk:7g} {seconds:8g} {r['extra_mb']:9.0f} {r['out_mb']:9.1f} "
                      f"{r['extra_mb'] - base:+8.0f} {r['wall_s']:7.1f}", flush=True)


if __name__ == "__main__":
    main()
