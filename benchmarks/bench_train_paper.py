"""One training step of the paper-size DiT and vocoder at batch 1 on the CPU: time, peak memory and FLOPs,
with and without gradient checkpointing, in fp32 and under bf16 autocast.

    OMP_NUM_THREADS=1 python benchmarks/bench_train_paper.py                  # all 8 configurations, 1 step
    python benchmarks/bench_train_paper.py --models vocoder --steps 3 --threads 4

Each configuration runs in a fresh subprocess (peak RSS from ``resource.getrusage`` is per process and
never goes down, and torch's allocations are invisible to tracemalloc), with glibc told to map every block
over 64 kB on its own (``MALLOC_MMAP_THRESHOLD_``), so that freed tensors leave the RSS at once and the peak
is the peak of live memory rather than of the allocator's cache.  At batch 1 that peak is mostly weights and
gradients, so the activations are also measured exactly: the bytes autograd keeps for the backward pass
(``saved_tensors_hooks``, parameters excluded) plus, with checkpointing, the inputs each checkpointed block
keeps for its recomputation.  They grow linearly with the batch (``recipes/PAPER_SETUP.md``).  Random weights; synthetic inputs of
the paper's training segment: the DiT on 10 s of latents (``[1, 768, 250]``, 25 Hz) with 32 text states of
the T5-large width (1024; the frozen text encoder is not part of the step), the vocoder on a 1.6 s crop
(38400 samples at 24 kHz, ``[1, 768, 40]`` latents).  The step is the task's loss (per-item noise draws
included), forward + backward; the optimizer step is not timed -- its state is counted instead (AdamW: 8
bytes per parameter; ScaledAdam about the same).

FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over the first (untimed) step: matmuls, convolutions and
attention, forward and backward (checkpointing adds the recomputed forward).  STFTs, norms and pointwise
ops are not counted (a few % of the vocoder's work).  ``recipes/PAPER_SETUP.md`` turns them into GPU
estimates.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

import torch

MODELS = ("dit", "vocoder")
PRECISIONS = ("fp32", "bf16")


# ------------------------------------------------------------------------------------- one configuration


def _rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dit_step() -> tuple[torch.nn.Module, Any]:
    """The paper DiT and a closure computing its flow-matching loss on one 10 s item."""
    from sara.dit import DiTConfig
    from sara.dit.model import LatentDiT
    from sara.dit.training import FlowMatchingDiT, T2ATrainConfig, TextToAudioTask
    from sara.flow.paths import interpolate, masked_mse, velocity_target

    cfg = DiTConfig.paper()
    task = TextToAudioTask(T2ATrainConfig(manifest="-", latent_dir="-", model=cfg))
    model = FlowMatchingDiT(LatentDiT(cfg)).train()
    x1, mask = torch.randn(1, cfg.latent_dim, 250), torch.ones(1, 250, dtype=torch.bool)
    states, text_mask = torch.randn(1, 32, cfg.text_dim or cfg.context_dim), torch.ones(1, 32, dtype=torch.bool)

    def loss() -> torch.Tensor:
        t, noise, drop = task.draw_noise([0], (cfg.latent_dim, 250))
        v = model(interpolate(x1, noise, t / 1000.0), t, states, text_mask, drop, x_mask=mask)
        return masked_mse(v, velocity_target(x1, noise), mask)

    return model, loss


def _vocoder_step() -> tuple[torch.nn.Module, Any]:
    """The paper vocoder generator and a closure computing its stage-1 loss on one 1.6 s crop."""
    from sara.vocoder import VocoderConfig
    from sara.vocoder.training import VocoderTask, VocoderTrainConfig

    cfg = VocoderConfig.paper()
    task = VocoderTask(VocoderTrainConfig(model=cfg, train_data=("-",), latent_cache="-", segment_seconds=1.6))
    model = task.build_model().train()
    n = task.config.segment_frames
    batch = {"audio": 0.1 * torch.randn(1, n * cfg.hop_length), "latents": torch.randn(1, cfg.latent_dim, n),
             "length": torch.tensor([n * cfg.hop_length]), "noise_seed": torch.tensor([0])}
    return model, lambda: task.compute_loss(model, batch).total


def _one_step(model: torch.nn.Module, loss_fn: Any, precision: str) -> float:
    """Forward (under autocast for bf16) + backward; returns the wall time in s."""
    t0 = time.perf_counter()
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = loss_fn()
    loss.float().backward()
    return time.perf_counter() - t0


def _saved_activation_mb(model: torch.nn.Module, loss_fn: Any, precision: str) -> float:
    """MiB kept between forward and backward: autograd's saved tensors (not parameters) and the inputs of
    checkpointed blocks (counted once per storage)."""
    import sara.dit.model as dit_model
    import sara.vocoder.model as voc_model

    kept: dict[int, int] = {}

    def keep(t: Any) -> Any:
        if isinstance(t, torch.Tensor):
            kept.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        return t

    def recording(fn: Any, *args: Any, **kwargs: Any) -> Any:
        for a in [*args, *kwargs.values()]:
            for t in a if isinstance(a, tuple) else (a,):
                keep(t)
        return torch.utils.checkpoint.checkpoint(fn, *args, **kwargs)

    originals = dit_model.checkpoint, voc_model.checkpoint
    dit_model.checkpoint = voc_model.checkpoint = recording  # type: ignore[assignment]
    try:
        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss_fn()
    finally:
        dit_model.checkpoint, voc_model.checkpoint = originals
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(n for ptr, n in kept.items() if ptr not in params) / 2**20


def run_config(name: str, precision: str, checkpointing: bool, steps: int) -> dict[str, Any]:
    """Measure one configuration in this process (call in a fresh process)."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    rss_start = _rss_mb()
    model, loss_fn = _dit_step() if name == "dit" else _vocoder_step()
    model.set_gradient_checkpointing(checkpointing)  # type: ignore[operator]
    params = sum(p.numel() for p in model.parameters())
    rss_built = _rss_mb()
    counter = FlopCounterMode(display=False)
    with counter:
        first = _one_step(model, loss_fn, precision)
    times = [_one_step(model, loss_fn, precision) for _ in range(steps)]
    rss_peak = _rss_mb()
    model.zero_grad(set_to_none=True)
    saved = _saved_activation_mb(model, loss_fn, precision)
    return {"model": name, "precision": precision, "checkpointing": checkpointing, "params_m": params / 1e6,
            "flops_per_step": counter.get_total_flops(), "first_step_s": first,
            "step_s": sorted(times)[len(times) // 2] if times else first, "rss_start_mb": rss_start,
            "rss_model_mb": rss_built, "rss_peak_mb": rss_peak, "saved_activations_mb": saved}


# ------------------------------------------------------------------------------------------------ driver


def _child(args: argparse.Namespace, name: str, precision: str, checkpointing: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", name, precision, str(int(checkpointing)), "--steps", str(args.steps),
           "--threads", str(args.threads)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{name} {precision} ckpt={checkpointing} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _report(rows: list[dict[str, Any]]) -> None:
    """Print the table, the ratios to each model's fp32 step without checkpointing, and GPU-estimate inputs."""
    print(f"{'model':8} {'prec':5} {'ckpt':5} {'params':>8} {'step s':>8} {'GFLOP':>8} {'GFLOP/s':>8} "
          f"{'peak MB':>8} {'saved MB':>8} {'time x':>7} {'act x':>6}")
    base = {r["model"]: r for r in rows if r["precision"] == "fp32" and not r["checkpointing"]}
    for r in rows:
        b = base.get(r["model"], r)
        act, act_b = r["saved_activations_mb"], b["saved_activations_mb"]
        print(f"{r['model']:8} {r['precision']:5} {str(r['checkpointing']):5} {r['params_m']:7.1f}M "
              f"{r['step_s']:8.2f} {r['flops_per_step'] / 1e9:8.1f} {r['flops_per_step'] / 1e9 / r['step_s']:8.1f} "
              f"{r['rss_peak_mb']:8.0f} {act:8.0f} {r['step_s'] / b['step_s']:7.2f} {act / max(act_b, 1):6.2f}")
    print("peak MB = peak RSS (weights, gradients, activations, temporaries); saved MB = activations kept for "
          "the backward pass of one item; x = ratio to the same model's fp32 step without checkpointing.")
    for name, b in base.items():
        opt_mb = 8 * b["params_m"] * 1e6 / 2**20
        print(f"{name}: fp32 weights {4 * b['params_m']:.0f} MB, AdamW state {opt_mb:.0f} MB (not in the step); "
              f"model FLOPs per training item {b['flops_per_step']:.3g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    ap.add_argument("--steps", type=int, default=1, help="timed steps per configuration (after one counted step)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the rows here")
    ap.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child is not None:
        name, precision, ckpt = args.child
        print(json.dumps(run_config(name, precision, ckpt == "1", args.steps)))
        return
    rows = []
    for name in args.models:
        for precision in args.precisions:
            for ckpt in (False, True):
                rows.append(_child(args, name, precision, ckpt))
                print(f"  done {name} {precision} checkpointing={ckpt}: {rows[-1]['step_s']:.2f} s", flush=True)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch 1")
    _report(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
