"""How much a DiT training run uses the prompt: its flow-matching loss on validation clips with the right
captions, with the captions shuffled across the batch, and unconditionally (dropped text), per noise level.

A model that ignores the text has equal losses; the gap (shuffled - right) is what the prompt is worth.  It is
largest at high noise (sigma near 1), where the sample is decided; at low noise the noisy latent already gives
the class away.  All runs are scored on the same batch (the first run's validation split and crop length).

    python recipes/dit_text_gap.py work/runs/t2a_ft work/runs/t2a --out work/eval/dit_text_gap.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

from sara.flow.paths import interpolate, masked_mse, velocity_target
from sara.train import load_run_model
from sara.train.task import TrainTask

SIGMAS = (0.98, 0.95, 0.9, 0.8, 0.6, 0.3)


def _batch(task: TrainTask, run: Path, clips: int) -> dict:
    _, valid = task.build_datasets()
    if valid is None:
        raise SystemExit(f"{run}: the run has no validation split")
    items = [valid[i] for i in range(0, len(valid), max(1, len(valid) // clips))][:clips]
    batch = task.collate(items)
    batch["states"], batch["text_mask"] = task.encode_captions(list(batch["captions"]))
    return batch


@torch.no_grad()
def _losses(model: torch.nn.Module, batch: dict, seed: int) -> list[dict]:
    x1, mask, states, text_mask = batch["latents"], batch["mask"], batch["states"], batch["text_mask"]
    b = x1.shape[0]
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(b, generator=g)
    keep, drop = torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)
    rows = []
    for sigma in SIGMAS:
        noise = torch.randn(x1.shape, generator=g)
        t = torch.full((b,), sigma * 1000.0)
        x_t = interpolate(x1, noise, t / 1000.0)
        target = velocity_target(x1, noise)
        right = masked_mse(model(x_t, t, states, text_mask, keep, x_mask=mask), target, mask).item()
        shuffled = masked_mse(model(x_t, t, states[perm], text_mask[perm], keep, x_mask=mask), target, mask).item()
        uncond = masked_mse(model(x_t, t, states, text_mask, drop, x_mask=mask), target, mask).item()
        rows.append({"sigma": sigma, "right": right, "shuffled": shuffled, "unconditional": uncond,
                     "gap": shuffled - right})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="t2a run dirs (EMA weights of the newest checkpoint)")
    ap.add_argument("--clips", type=int, default=128, help="validation clips in the batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    args = ap.parse_args()
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    batch: dict | None = None
    result: dict = {"runs": []}
    for run in args.runs:
        task, model, step = load_run_model(run)
        if batch is None:  # every run is scored on the first run's batch
            batch = _batch(task, run, args.clips)
            result.update(clips=int(batch["latents"].shape[0]), frames=int(batch["latents"].shape[-1]))
        rows = _losses(model, batch, args.seed)
        result["runs"].append({"run": run.name, "step": step, "losses": rows})
        print(f"{run.name} (step {step}):")
        for r in rows:
            print(f"  sigma {r['sigma']:.2f}: right {r['right']:.4f}  shuffled {r['shuffled']:.4f}  "
                  f"unconditional {r['unconditional']:.4f}  gap {r['gap']:+.4f}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    from sara.cli.guard import run_guarded

    sys.exit(run_guarded("dit_text_gap.py", main))
