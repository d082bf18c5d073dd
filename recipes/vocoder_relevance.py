"""How much class identity survives the vocoder alone: the corpus classifier on vocoder reconstructions of the
real test clips that `sara eval relevance` uses (every other one), beside its accuracy on the clips themselves.

    python recipes/vocoder_relevance.py --vocoder sara/pretrained/sara-demo/vocoder \\
        --classifier work/eval/classifier --manifest work/corpus/manifest.jsonl [--steps N]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import torch

from sara.audio.io import load_audio
from sara.eval.embedders.classifier import ClassifierEmbedder
from sara.eval.relevance import classifier_fn, select_prompts
from sara.vocoder import SemanticVocoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocoder", type=Path, required=True)
    ap.add_argument("--classifier", type=Path, required=True)
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=None, help="vocoder steps (default: the vocoder's own)")
    ap.add_argument("--split", default="test", help="manifest split (choose between vocoders on 'valid')")
    ap.add_argument("--every", type=int, default=2, help="use every N-th of the relevance prompts (1: all)")
    ap.add_argument("--max-seconds", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    records = [json.loads(line) for line in args.manifest.read_text().splitlines() if line.strip()]
    clf = ClassifierEmbedder.from_pretrained(args.classifier)
    classify = classifier_fn(clf)
    prompts = select_prompts(records, clf.model.config.class_names, root=args.manifest.parent, per_class=2,
                             split=args.split)[:: args.every]
    voc = SemanticVocoder.from_pretrained(args.vocoder)
    real, recon, preds = [], [], []
    for p in prompts:
        wav, sr = load_audio(p.audio_path)
        wav = wav.mean(0, keepdim=True)[:, : int(sr * args.max_seconds)]
        with torch.inference_mode():
            out = voc.reconstruct(wav, sr, steps=args.steps, seed=0)
        preds.append(classify(out[0], voc.sample_rate))
        recon.append(preds[-1] == p.label)
        real.append(classify(wav[0], sr) == p.label)
    result = {"vocoder": str(args.vocoder), "classifier": str(args.classifier), "split": args.split, "clips": len(prompts), "reconstructed_accuracy": sum(recon) / len(recon),
              "real_accuracy": sum(real) / len(real), "chance": 1 / len(clf.model.config.class_names),
              "steps": args.steps or voc.config.default_steps, "top_predictions": Counter(preds).most_common(5)}
    print(json.dumps(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    from sara.cli.guard import run_guarded

    sys.exit(run_guarded("vocoder_relevance.py", main))
