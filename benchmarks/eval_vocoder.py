"""Reconstruction quality of vocoder releases on held-out clips (multi-resolution log-mel L1, lower is better).

Latents come from a latent cache (``sara encode`` output) or from the release's bundled encoder.  The
reference is each clip at 24 kHz, cut to whole latent frames (at most ``--max-seconds``) and peak-normalised
to -3 dBFS (the validation convention of the training task).  ``--init`` also scores a freshly initialised
generator of the same configuration (what training started from).

    python benchmarks/eval_vocoder.py --model releases/voc --data corpus/manifest.jsonl --latent-cache cache --init
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from sara.vocoder import SemanticVocoder
from sara.vocoder.data import SegmentDataset, list_clips
from sara.vocoder.losses import multi_resolution_mel_distance
from sara.vocoder.training import VocoderTask, VocoderTrainConfig


def score(decode: Callable[[Tensor, int], Tensor], ds: SegmentDataset, hop: int, sample_rate: int,
          encoder: Any = None) -> float:
    """Mean mel distance over the dataset's clips (valid-length part only).

    ``decode(latents [1, D, N], seed) -> [1, N * hop]``; latents come from the cache or from ``encoder``.
    """
    dists = []
    for i in range(len(ds)):
        item = ds[i]
        n = int(item["length"]) // hop * hop
        if n == 0:
            continue
        ref = item["audio"][:n].unsqueeze(0)
        if "latents" in item:
            z = item["latents"][:, : n // hop].unsqueeze(0)
        else:
            z = encoder.encode(ref, sample_rate)[..., : n // hop]
        dists.append(float(multi_resolution_mel_distance(decode(z, i), ref)[0]))
    return sum(dists) / len(dists)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", required=True, help="vocoder release dirs / checkpoints")
    parser.add_argument("--data", nargs="+", required=True, help="manifests (valid split) or audio dirs")
    parser.add_argument("--latent-cache", default=None)
    parser.add_argument("--steps", type=int, nargs="+", default=None,
                        help="Euler steps to score (default: each model's own default_steps)")
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--init", action="store_true", help="also score a fresh initialisation")
    parser.add_argument("--max-clips", type=int, default=48, help="score every k-th valid clip, at most this many")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clips = list_clips(tuple(args.data), "valid")
    clips = clips[:: max(1, len(clips) // args.max_clips)][: args.max_clips]
    for path in args.model:
        voc = SemanticVocoder.from_pretrained(path)
        frames = round(args.max_seconds * voc.frame_rate)
        ds = SegmentDataset(clips, frames * voc.hop_length, sample_rate=voc.sample_rate, hop_length=voc.hop_length,
                            latent_cache=args.latent_cache, train=False, min_rms=0.0,
                            peak_db=(-3.0, -3.0))
        hop = voc.hop_length
        encoder = None if args.latent_cache else voc.get_encoder()
        silent = score(lambda z, i, h=hop: torch.zeros(1, z.shape[-1] * h), ds, hop, voc.sample_rate, encoder)
        print(f"{path}: {len(ds)} clips, silent output: mel distance {silent:.4f}", flush=True)
        fresh = None
        if args.init:
            task = VocoderTask(VocoderTrainConfig(model=voc.config, train_data=("-",), latent_cache="-"))
            torch.manual_seed(0)
            fresh = SemanticVocoder(voc.config, generator=task.build_model()).eval()
            fresh.encoder, fresh.encoder_path = voc.encoder, voc.encoder_path
        for steps in args.steps or [voc.config.default_steps]:
            d = score(lambda z, i, v=voc, s=steps: v.decode(z, steps=s, seed=i), ds, hop, voc.sample_rate, encoder)
            print(f"{path}: {len(ds)} clips, {steps} steps, mel distance {d:.4f}", flush=True)
            if fresh is not None:
                d = score(lambda z, i, v=fresh, s=steps: v.decode(z, steps=s, seed=i), ds, hop, voc.sample_rate, encoder)
                print(f"{path} (fresh init): {steps} steps, mel distance {d:.4f}", flush=True)


if __name__ == "__main__":
    main()
