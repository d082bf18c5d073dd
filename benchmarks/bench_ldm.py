"""LDM sampling cost and sampler agreement: DDPM-200 (Tango's setting) vs DPM-Solver++-25, random weights.

Per UNet step means one guided forward (the CFG batch ``[uncond; cond]`` of two rows, Tango's inference), timed
as the fastest of several forwards (the machine is shared: wall times of whole runs swing with the load); per
clip is ``steps x`` that (the schedulers' own arithmetic is negligible next to the UNet); whole-run wall times
are printed beside it.  Sizes:

* ``tango``: the 866M Tango UNet on one 10.24 s clip (latent 8 x 256 x 16, FLAN-T5-large-wide text).  One
  forward takes tens of seconds on a small CPU, so only ``--tango-forwards`` forwards are timed and the per-clip
  figures are **extrapolated** from them (printed as such).
* ``small``: the demo UNet (``UNetConfig.small``, MiniLM-wide text) on ``--small-frames`` mel frames; both
  samplers run in full from the same initial noise, so their outputs are compared: relative L2
  ``|a - b| / |b|`` of DPM-Solver++-25 (linspace and Karras sigmas) against DDPM-200 and against DDIM-200 (the
  deterministic sampler DPM-Solver approximates).  With random weights these numbers measure the solvers, not
  audio quality; DDPM is stochastic, so its distance to any ODE sampler stays large by construction.

    python benchmarks/bench_ldm.py [--sizes small tango] [--small-frames 512] [--tango-forwards 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch

from sara.ldm.config import UNetConfig
from sara.ldm.sampling import guided_prediction, sample_latents
from sara.ldm.schedulers import make_scheduler
from sara.ldm.unet import build_unet, count_unet_parameters

TEXT_TOKENS = 16


def _inputs(cfg: UNetConfig, frames: int, seed: int = 0) -> tuple[Any, Any, torch.Tensor]:
    """Random text states ``(cond, uncond)`` and initial noise ``[1, C, frames / 4, 16]``."""
    g = torch.Generator().manual_seed(seed)
    cond = (torch.randn(1, TEXT_TOKENS, cfg.cross_attention_dim, generator=g), torch.ones(1, TEXT_TOKENS, dtype=torch.bool))
    uncond = (torch.zeros(1, TEXT_TOKENS, cfg.cross_attention_dim), torch.ones(1, TEXT_TOKENS, dtype=torch.bool))
    return cond, uncond, torch.randn(1, cfg.in_channels, frames // 4, 16, generator=g)


@torch.no_grad()
def time_forwards(unet: Any, cfg: UNetConfig, frames: int, count: int, warmup: int) -> float:
    """Seconds of the fastest of ``count`` guided UNet forwards (CFG batch of 2)."""
    cond, uncond, x = _inputs(cfg, frames)
    sched = make_scheduler("ddpm")
    sched.set_timesteps(200)
    states, mask = torch.cat([uncond[0], cond[0]]), torch.cat([uncond[1], cond[1]])
    for _ in range(warmup):
        guided_prediction(unet, sched, x, sched.timesteps[0], states, mask, 3.0)
    times = []
    for i in range(count):
        start = time.perf_counter()
        guided_prediction(unet, sched, x, sched.timesteps[i], states, mask, 3.0)
        times.append(time.perf_counter() - start)
    return min(times)


def run_sampler(unet: Any, cfg: UNetConfig, frames: int, name: str, steps: int, **kw: Any) -> tuple[torch.Tensor, float]:
    """``(latents, seconds)`` of one full guided sampling run from the benchmark's fixed initial noise."""
    cond, uncond, x = _inputs(cfg, frames)
    start = time.perf_counter()
    out = sample_latents(unet, make_scheduler(name, **kw), cond, uncond, x, steps, 3.0,
                         generator=torch.Generator().manual_seed(1))
    return out, time.perf_counter() - start


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def bench_small(frames: int) -> dict[str, float]:
    """Full DDPM-200, DDIM-200 and DPM-Solver++-25 (two step placements) runs on the small UNet."""
    cfg = UNetConfig.small()
    torch.manual_seed(0)
    unet = build_unet(cfg).eval()
    step_s = time_forwards(unet, cfg, frames, count=5, warmup=1)
    ddpm, t_ddpm = run_sampler(unet, cfg, frames, "ddpm", 200)
    ddim, t_ddim = run_sampler(unet, cfg, frames, "ddim", 200)
    dpm, t_dpm = run_sampler(unet, cfg, frames, "dpmsolver++", 25)
    dpm_k, _ = run_sampler(unet, cfg, frames, "dpmsolver++", 25, karras_sigmas=True)
    return {"params_M": count_unet_parameters(cfg) / 1e6, "frames": frames, "step_s": step_s,
            "clip_ddpm200_s": 200 * step_s, "clip_dpm25_s": 25 * step_s, "speedup": 8.0,
            "wall_ddpm200_s": t_ddpm, "wall_ddim200_s": t_ddim, "wall_dpm25_s": t_dpm,
            "rel_l2_dpm25_vs_ddpm200": _rel(dpm, ddpm), "rel_l2_dpm25_vs_ddim200": _rel(dpm, ddim),
            "rel_l2_dpm25karras_vs_ddim200": _rel(dpm_k, ddim), "rel_l2_ddim200_vs_ddpm200": _rel(ddim, ddpm)}


def bench_tango(forwards: int) -> dict[str, float]:
    """Time ``forwards`` guided forwards of the 866M UNet on a 10.24 s latent; extrapolate per clip."""
    cfg = UNetConfig.tango()
    torch.manual_seed(0)
    start = time.perf_counter()
    unet = build_unet(cfg).eval()
    build_s = time.perf_counter() - start
    step_s = time_forwards(unet, cfg, 1024, count=forwards, warmup=0)
    return {"params_M": count_unet_parameters(cfg) / 1e6, "frames": 1024, "build_s": build_s, "step_s": step_s,
            "forwards_timed": forwards, "clip_ddpm200_s": 200 * step_s, "clip_dpm25_s": 25 * step_s, "speedup": 8.0}


def _print(name: str, r: dict[str, float]) -> None:
    extra = f" (from {r['forwards_timed']} timed forward(s), no warm-up)" if name == "tango" else ""
    print(f"{name}: {r['params_M']:.1f}M params, {r['frames']} frames: {r['step_s']:.3f} s per guided UNet step; "
          f"per clip DDPM-200 {r['clip_ddpm200_s']:.1f} s vs DPM-Solver++-25 {r['clip_dpm25_s']:.1f} s "
          f"= {r['speedup']:.1f}x{extra}")
    if "wall_ddpm200_s" in r:
        print(f"  whole-run wall times on the shared machine: DDPM-200 {r['wall_ddpm200_s']:.1f} s, DDIM-200 "
              f"{r['wall_ddim200_s']:.1f} s, DPM-Solver++-25 {r['wall_dpm25_s']:.1f} s")
    if "rel_l2_dpm25_vs_ddpm200" in r:
        print(f"  agreement (rel. L2, same initial noise): DPM-25 vs DDPM-200 {r['rel_l2_dpm25_vs_ddpm200']:.3f}, "
              f"DPM-25 vs DDIM-200 {r['rel_l2_dpm25_vs_ddim200']:.3f}, DPM-25 (Karras) vs DDIM-200 "
              f"{r['rel_l2_dpm25karras_vs_ddim200']:.3f}, DDIM-200 vs DDPM-200 {r['rel_l2_ddim200_vs_ddpm200']:.3f}")


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Run the benchmark; print one line per size and a JSON summary."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", choices=("small", "tango"), default=["small", "tango"])
    p.add_argument("--small-frames", type=int, default=512, help="mel frames of the small-model clip (5.12 s)")
    p.add_argument("--tango-forwards", type=int, default=1, help="timed forwards at the Tango size")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {}
    for size in args.sizes:
        results[size] = bench_small(args.small_frames) if size == "small" else bench_tango(args.tango_forwards)
        _print(size, results[size])
    if "small" in results and "tango" in results:
        print(f"tango / small per-step time: {results['tango']['step_s'] / results['small']['step_s']:.0f}x")
    print(json.dumps({"threads": args.threads, **results}))
    return results


if __name__ == "__main__":
    main()
