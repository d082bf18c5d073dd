"""Latent-level relevance of a TextToAudio model (issue-4 style check on the real corpus).

A logistic-regression probe on mean+std-pooled *real training-split* latents (the `sara encode` cache)
labels latents the DiT generates from test captions (2 per class of the corpus classifier); the same probe's
accuracy on the real test latents is the ceiling.  Unlike `sara eval relevance`, the vocoder is not involved.

    python recipes/latent_relevance.py --model sara/pretrained/sara-demo --manifest work/corpus/manifest.jsonl \\
        --latents work/runs/latents --classes work/eval/classifier/config.json
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from sklearn.linear_model import LogisticRegression

from sara.pipelines.text_to_audio import TextToAudio


def _feat(z: torch.Tensor) -> np.ndarray:
    """``[D, N]`` latents -> ``[2D]`` mean and std over time."""
    return torch.cat([z.mean(-1), z.std(-1)]).numpy()


def _latent(root: Path, record: dict) -> torch.Tensor:
    return load_file(str(root / Path(record["path"]).with_suffix(".safetensors")))["latents"]


def _generated_hits(pipe: TextToAudio, probe: LogisticRegression, prompts: list[tuple[str, dict]], cfg: float,
                    steps: int, seed: int) -> list[bool]:
    """Whether the probe labels the DiT's latent for each ``(class, record)`` prompt with its class (4 s each,
    8 prompts a batch, one noise stream from ``seed``): the per-clip hits, for paired comparisons."""
    hits, g = [], torch.Generator().manual_seed(seed)
    for i in range(0, len(prompts), 8):
        chunk = prompts[i : i + 8]
        with torch.inference_mode():
            z = pipe.generate_latents([r["caption"] for _, r in chunk], duration=4.0, steps=steps,
                                      guidance_scale=cfg, generator=g)
        hits += [bool(probe.predict(_feat(zz)[None])[0] == c) for zz, (c, _) in zip(z, chunk)]
    return hits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--latents", type=Path, required=True, help="`sara encode` cache of the corpus")
    ap.add_argument("--classes", type=Path, required=True, help="corpus classifier config.json (class list)")
    ap.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    ap.add_argument("--per-class", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="test", help="split of the prompts (valid: to choose settings)")
    ap.add_argument("--cfg", type=float, nargs="+", default=None,
                    help="guidance scale(s) (default: the model's); several: one result line each, one probe fit")
    ap.add_argument("--steps", type=int, default=50, help="DiT sampling steps")
    ap.add_argument("--repeats", type=int, default=1, help="latents per prompt (each from its own noise)")
    args = ap.parse_args()
    if args.repeats < 1 or args.per_class < 1:
        ap.error("--repeats and --per-class must be >= 1")
    names = json.loads(args.classes.read_text())["config"]["class_names"]
    rows = [json.loads(line) for line in args.manifest.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["class"] in names and r.get("kind") != "mixture"]
    train = [r for r in rows if r["split"] == "train"
             and (args.latents / Path(r["path"]).with_suffix(".safetensors")).is_file()]
    probe = LogisticRegression(max_iter=2000).fit(np.stack([_feat(_latent(args.latents, r)) for r in train]),
                                                  [r["class"] for r in train])
    by_class = collections.defaultdict(list)
    for r in sorted((r for r in rows if r["split"] == args.split), key=lambda r: r["id"]):
        by_class[r["class"]].append(r)
    prompts = [(c, r) for c in sorted(by_class) for r in by_class[c][: args.per_class]]
    real = [probe.predict(_feat(_latent(args.latents, r))[None])[0] == c for c, r in prompts]
    pipe = TextToAudio.from_pretrained(args.model)
    results, drawn = [], prompts * args.repeats
    for cfg in args.cfg or [pipe.default_guidance]:
        gen = _generated_hits(pipe, probe, drawn, cfg, args.steps, args.seed)
        results.append({"split": args.split, "cfg": cfg, "steps": args.steps, "prompts": len(prompts),
                        "repeats": args.repeats, "classes": len(by_class), "generated_latent_acc": float(np.mean(gen)),
                        "real_test_latent_acc": float(np.mean(real)), "chance": 1 / len(names),
                        "train_clips": len(train), "latents": str(args.latents),
                        "captions": [r["caption"] for _, r in drawn], "hits": gen})
        print(json.dumps({k: v for k, v in results[-1].items() if k not in ("captions", "hits")}), flush=True)
    if args.out is not None:
        out = results[0] if len(results) == 1 else results
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    from sara.cli.guard import run_guarded

    sys.exit(run_guarded("latent_relevance.py", main))
