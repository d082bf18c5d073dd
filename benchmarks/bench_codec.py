"""EnCodec (16 kHz) speed benchmark: encode / decode real-time factors, and a training step.

Reports, for the ``audiogen`` (audiocraft's encodec_large_nq4_s320) and ``small`` codecs with random weights
(codebooks filled with random vectors, so the nearest-neighbour search costs what a trained one does):

* encode (waveform -> codes) and decode (codes -> waveform) speed in audio seconds per wall-clock second
  (x real time, higher is faster), for ``--seconds`` of audio at batch 1 and batch 8;
* one training step (forward + backward, batch 8 x 1 s) without the MS-STFT discriminator, with the
  paper's (32 filters, 5 scales) and with the ``small`` one (8 filters, 3 scales).

Measured on one CPU core (shared machine, random weights, 10 s audio): audiogen encodes at 3.5x and decodes
at 1.8x real time (batch 1); small at 20x / 18x.  A training step of small takes 2.5 s without a
discriminator, 6.7 s with the small one and 38 s with the paper's (which dominates); audiogen 37 s / 67 s.

Usage::

    python benchmarks/bench_codec.py                # ~1-2 minutes on one core
    python benchmarks/bench_codec.py --quick        # shorter audio, no batch-8 / training-step rows
    python benchmarks/bench_codec.py --device cuda
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from sara.codec import CodecConfig, EncodecCodec
from sara.codec.discriminator import MSSTFTDConfig
from sara.codec.training import CodecTask, CodecTrainConfig


def _codec(preset: str, device: str) -> EncodecCodec:
    codec = EncodecCodec(getattr(CodecConfig, preset)()).to(device).eval()
    g = torch.Generator().manual_seed(0)
    for level in codec.quantizer.levels:
        book = level._codebook
        book.embed.copy_(torch.randn(book.embed.shape, generator=g).to(device) * 0.1)
        book.inited.fill_(1.0)
    return codec


def _best_of(fn: Callable[[], object], repeats: int, device: str) -> float:
    """Fastest wall time of ``repeats`` calls (after one warm-up call), in seconds."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def bench_rtf(preset: str, seconds: float, batch: int, device: str, repeats: int) -> tuple[float, float]:
    """``(encode x real time, decode x real time)`` for ``batch`` clips of ``seconds``."""
    codec = _codec(preset, device)
    wav = torch.randn(batch, 1, int(seconds * codec.sample_rate), device=device) * 0.1
    codes = codec.encode(wav)
    audio = batch * seconds
    enc = _best_of(lambda: codec.encode(wav), repeats, device)
    dec = _best_of(lambda: codec.decode(codes), repeats, device)
    return audio / enc, audio / dec


def bench_train_step(preset: str, disc: str | None, device: str, repeats: int) -> float:
    """Seconds per training step (batch 8 x 1 s crops, forward + backward, optimizer excluded); ``disc`` is
    the discriminator preset (None: no discriminator)."""
    task = CodecTask(CodecTrainConfig(model=getattr(CodecConfig, preset)(), adversarial=disc is not None,
                                      discriminator=getattr(MSSTFTDConfig, disc or "paper")()))
    model = task.build_model().to(device).train()
    batch = {"audio": torch.randn(8, 16000, device=device) * 0.1, "length": torch.full((8,), 16000)}

    def step() -> None:
        model.zero_grad(set_to_none=True)
        task.compute_loss(model, batch).total.backward()

    return _best_of(step, repeats, device)


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio length for the x-real-time rows")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seconds, repeats = (2.0, 1) if args.quick else (args.seconds, 3)
    print(f"device {args.device}, {args.threads} thread(s); x real time = audio seconds / wall seconds")
    print(f"{'codec':10s} {'params':>8s} {'batch':>5s} {'encode xRT':>11s} {'decode xRT':>11s}")
    for preset in ("audiogen", "small"):
        params = sum(p.numel() for p in EncodecCodec(getattr(CodecConfig, preset)()).parameters()) / 1e6
        for batch in (1,) if args.quick else (1, 8):
            enc, dec = bench_rtf(preset, seconds, batch, args.device, repeats)
            print(f"{preset:10s} {params:7.1f}M {batch:5d} {enc:11.1f} {dec:11.1f}")
    if args.quick:
        return
    print(f"\n{'codec':10s} {'discriminator':>13s} {'s / train step (8 x 1 s)':>25s}")
    for preset, discs in (("audiogen", (None, "paper")), ("small", (None, "small", "paper"))):
        for disc in discs:
            t = bench_train_step(preset, disc, args.device, 1)
            print(f"{preset:10s} {disc or 'none':>13s} {t:25.2f}")


if __name__ == "__main__":
    main()
