"""SemanticVocoder speed benchmark (CPU by default).

Reports, for the paper and small generators:
* decode speed in audio seconds per wall-clock second (x real time) for 1, 4 and 200 Euler steps;
* where decode time goes: network forward passes (split into STFT/ISTFT and the rest), the one-off
  condition preparation, and everything outside the network (noise, Euler arithmetic, clamp);
* the effect of caching the per-block condition projections across steps;
* training input cost: latents computed on the fly by a dasheng-base-sized encoder vs read from the
  latent cache, next to a small-generator training step.

Usage::

    python benchmarks/bench_vocoder.py            # ~3 minutes on one core
    python benchmarks/bench_vocoder.py --quick    # ~30 s: shorter audio, paper 200-step case skipped
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

import sara.vocoder.model as vmodel
from sara.vocoder import SemanticVocoder, VocoderConfig


class Timers:
    """Accumulated wall time per label."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {}

    @contextlib.contextmanager
    def time(self, label: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.total[label] = self.total.get(label, 0.0) + time.perf_counter() - start


@contextlib.contextmanager
def instrumented(voc: SemanticVocoder, timers: Timers) -> Iterator[None]:
    """Time generator forwards, condition preparation and the STFT/ISTFT calls inside the branches."""
    gen = voc.generator
    fwd, prep = gen.forward, gen.prepare_condition
    stft, istft = vmodel.stft, vmodel.istft

    def timed(label, fn):  # noqa: ANN001, ANN202
        def wrapper(*a, **k):  # noqa: ANN002, ANN003, ANN202
            with timers.time(label):
                return fn(*a, **k)
        return wrapper

    gen.forward = timed("forward", fwd)
    gen.prepare_condition = timed("condition", prep)
    vmodel.stft, vmodel.istft = timed("stft", stft), timed("stft", istft)
    try:
        yield
    finally:
        del gen.forward, gen.prepare_condition
        vmodel.stft, vmodel.istft = stft, istft


def bench_decode(voc: SemanticVocoder, seconds: float, steps: int, batch: int = 1, repeats: int = 1) -> dict[str, float]:
    """Decode ``batch`` x ``seconds`` of audio; timings of the fastest of ``repeats`` runs and x-real-time.

    The machine may be shared, so the minimum over repeats is the least noisy estimate.
    """
    frames = max(1, round(seconds * voc.frame_rate))
    z = torch.randn(batch, voc.latent_dim, frames)
    voc.decode(z[:, :, :1], steps=1, seed=0)  # warm-up
    runs = []
    for _ in range(repeats):
        timers = Timers()
        with instrumented(voc, timers), timers.time("total"):
            voc.decode(z, steps=steps, seed=0)
        runs.append(timers.total)
    t = min(runs, key=lambda r: r["total"])
    audio = batch * frames * voc.hop_length / voc.sample_rate
    return {"xrt": audio / t["total"], "total": t["total"], "forward": t.get("forward", 0.0),
            "stft": t.get("stft", 0.0), "condition": t.get("condition", 0.0),
            "outside": t["total"] - t.get("forward", 0.0) - t.get("condition", 0.0)}


def report_decode(name: str, cfg: VocoderConfig, cases: list[tuple[int, float]]) -> None:
    voc = SemanticVocoder(cfg).eval()
    params = sum(p.numel() for p in voc.parameters()) / 1e6
    print(f"\n== {name}: {params:.1f} M parameters, branches n_fft {cfg.n_ffts}")
    print(f"{'steps':>5} {'audio s':>7} {'x RT':>8} {'s/step':>8} {'fwd %':>6} {'stft %':>7} {'cond %':>7} {'outside %':>9}")
    for steps, seconds in cases:
        r = bench_decode(voc, seconds, steps, repeats=1 if steps >= 100 else 3)
        pct = {k: 100 * r[k] / r["total"] for k in ("forward", "stft", "condition", "outside")}
        print(f"{steps:>5} {seconds:>7.1f} {r['xrt']:>8.2f} {r['forward'] / steps:>8.4f} {pct['forward']:>6.1f} "
              f"{pct['stft']:>7.1f} {pct['condition']:>7.1f} {pct['outside']:>9.2f}")


def report_condition_cache(name: str, cfg: VocoderConfig, seconds: float, steps: int, pairs: int = 4) -> None:
    """A/B of the per-block condition cache, interleaved so that load changes hit both sides alike."""
    voc = SemanticVocoder(cfg).eval()
    best = {True: float("inf"), False: float("inf")}
    for _ in range(pairs):
        for cached in (True, False):
            voc.max_cache_bytes = 1 << 30 if cached else 0
            best[cached] = min(best[cached], bench_decode(voc, seconds, steps)["total"])
    print(f"\nper-block condition cache ({name}, {steps} steps, {seconds:.0f} s, best of {pairs}): "
          f"{best[False]:.2f} s -> {best[True]:.2f} s (x{best[False] / best[True]:.2f})")


def report_training_inputs(batch: int, quick: bool) -> None:
    """On-the-fly dasheng-base latents vs cached latents, per training batch of 1.6 s segments."""
    from safetensors.torch import save_file

    from sara.encoder import EncoderConfig, SemanticEncoder
    from sara.vocoder.data import ClipRef, SegmentDataset
    from sara.vocoder.training import VocoderTask, VocoderTrainConfig

    audio = torch.randn(batch, 38400) * 0.1
    enc = SemanticEncoder(EncoderConfig.base()).eval()
    enc.encode(audio[:1], 24000)
    start = time.perf_counter()
    enc.encode(audio, 24000)
    t_encode = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        import numpy as np
        import soundfile as sf

        clips = []
        for i in range(batch):
            sf.write(f"{tmp}/c{i}.wav", np.random.default_rng(i).normal(0, 0.1, 24000 * 10).astype("float32"), 24000)
            save_file({"latents": torch.randn(768, 250)}, f"{tmp}/c{i}.safetensors")
            clips.append(ClipRef(Path(f"{tmp}/c{i}.wav"), Path(f"c{i}.safetensors")))
        with_cache = SegmentDataset(clips, 38400, latent_cache=tmp)
        no_cache = SegmentDataset(clips, 38400)
        start = time.perf_counter()
        [with_cache[i] for i in range(batch)]
        t_cache_items = time.perf_counter() - start
        start = time.perf_counter()
        [no_cache[i] for i in range(batch)]
        t_audio_items = time.perf_counter() - start

    cfg = VocoderTrainConfig(model=VocoderConfig.small(), train_data=("x",), latent_cache="x")
    task = VocoderTask(cfg)
    model = task.build_model().train()
    batch_d = {"audio": audio, "length": torch.full((batch,), 38400), "latents": torch.randn(batch, 768, 40)}
    start = time.perf_counter()
    task.compute_loss(model, batch_d).total.backward()
    t_step = time.perf_counter() - start
    print(f"\ntraining inputs, batch {batch} x 1.6 s (one core):")
    print(f"  read audio crops only      {t_audio_items:7.3f} s")
    print(f"  read audio + cached latents {t_cache_items:7.3f} s  (cache adds {t_cache_items - t_audio_items:+.3f} s)")
    print(f"  dasheng-base encode (fly)  {t_encode:7.3f} s")
    print(f"  small generator fwd+bwd    {t_step:7.3f} s")
    print(f"  => on-the-fly latents add x{(t_encode + t_step) / t_step:.2f} to a small-generator step; "
          f"the cache costs {max(0.0, t_cache_items - t_audio_items) / t_step * 100:.1f}% of one")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short audio; skip the paper 200-step case")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--batch", type=int, default=8, help="training-input benchmark batch size")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), device cpu")
    sec = 2.0 if args.quick else 5.0
    paper_cases = [(1, sec), (4, sec)] + ([] if args.quick else [(200, 1.0)])
    report_decode("paper", VocoderConfig.paper(), paper_cases)
    report_decode("small", VocoderConfig.small(), [(1, sec), (4, sec), (200, 1.0 if args.quick else 2.0)])
    report_condition_cache("paper", VocoderConfig.paper(), sec, 4)
    report_training_inputs(4 if args.quick else args.batch, args.quick)


if __name__ == "__main__":
    main()
