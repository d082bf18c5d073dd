"""How robust the corpus classifiers are: accuracy on the real test clips of `sara eval relevance`, clean and
with white noise added at fixed levels (dBFS, RMS).  A classifier that a faint hiss throws off measures the
generator's noise floor, not whether it made the prompted sound.

    python recipes/classifier_robustness.py --classifier work/eval/classifier work/eval/classifier_plain \\
        --manifest work/corpus/manifest.jsonl --out work/eval/robustness.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from sara.audio.io import load_audio
from sara.eval.embedders.classifier import ClassifierEmbedder
from sara.eval.relevance import classifier_fn, select_prompts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classifier", type=Path, nargs="+", required=True)
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--noise-dbfs", type=float, nargs="+", default=[-60.0, -50.0, -40.0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    records = [json.loads(line) for line in args.manifest.read_text().splitlines() if line.strip()]
    models = {p.name: ClassifierEmbedder.from_pretrained(p) for p in args.classifier}
    names = next(iter(models.values())).model.config.class_names
    prompts = select_prompts(records, names, root=args.manifest.parent, per_class=2, split=args.split)
    gen = torch.Generator().manual_seed(0)
    conditions = ["clean"] + [f"noise {db:g} dBFS" for db in args.noise_dbfs]
    hits = {m: {c: 0 for c in conditions} for m in models}
    for p in prompts:
        wav, sr = load_audio(p.audio_path)
        wav = wav.mean(0)
        noise = torch.randn(wav.shape[-1], generator=gen)
        versions = [wav] + [wav + 10 ** (db / 20) * noise for db in args.noise_dbfs]
        for m, clf in models.items():
            classify = classifier_fn(clf)
            for c, v in zip(conditions, versions):
                hits[m][c] += classify(v, sr) == p.label
    result = {"split": args.split, "clips": len(prompts),
              "accuracy": {m: {c: h / len(prompts) for c, h in hs.items()} for m, hs in hits.items()}}
    print(json.dumps(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    from sara.cli.guard import run_guarded

    sys.exit(run_guarded("classifier_robustness.py", main))
