"""Does a tiny DiT learn the text conditioning?  CPU toy experiment through the real training loop.

Toy corpus: K sound classes, each with its own latent signature (a class mean vector modulated in time at a
class-specific rate, plus noise) in the 768-d latent space, and several caption phrasings per class.  A tiny
DiT is trained with ``sara.train.fit`` on (latent, caption) pairs with the MiniLM text encoder; then latents
are generated from *unseen* phrasings and a nearest-centroid classifier fit on the training latents
(time-averaged) labels them.  Chance is 1/K.

    python benchmarks/t2a_toy_conditioning.py [--steps 600] [--out /tmp/t2a_toy] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from sara.dit import DiTConfig
from sara.dit.training import T2ATrainConfig, TextToAudioTask

CLASSES = {
    "dog": (["a dog barks", "dog barking loudly", "a barking dog"], ["the sound of a dog barking"]),
    "rain": (["rain falls", "heavy rain pouring", "rainfall on a roof"], ["the sound of steady rain"]),
    "bell": (["a church bell rings", "bells ringing", "a ringing bell"], ["the sound of a bell ringing"]),
    "engine": (["a car engine idles", "an engine revving", "a motor running"], ["the sound of a car engine"]),
}
FRAMES = 25


def make_corpus(root: Path, clips_per_class: int = 24, dim: int = 768) -> tuple[Path, Path, dict]:
    """Write latents + manifest; returns (manifest, cache dir, class signatures)."""
    cache = root / "latents"
    cache.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    records = []
    for k, (name, (captions, _)) in enumerate(CLASSES.items()):
        mean = torch.randn(dim, generator=g)
        rate = 1.0 + k
        for i in range(clips_per_class):
            t = torch.arange(FRAMES) / 25.0
            phase = float(torch.rand(1, generator=g)) * 2 * math.pi
            lat = mean[:, None] * (1 + 0.5 * torch.sin(2 * math.pi * rate * t + phase))[None]
            lat = lat + 0.3 * torch.randn(dim, FRAMES, generator=g)
            save_file({"latents": lat.contiguous()}, str(cache / f"{name}{i}.safetensors"))
            records.append({"path": f"{name}{i}.wav", "captions": captions, "caption": captions[0],
                            "class": name, "split": "train"})
    manifest = root / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return manifest, cache, records


def centroids(cache: Path, records: list[dict]) -> tuple[torch.Tensor, list[str]]:
    from safetensors.torch import load_file

    names = list(CLASSES)
    feats: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for r in records:
        feats[r["class"]].append(load_file(str(cache / Path(r["path"]).with_suffix(".safetensors")))["latents"].mean(-1))
    return torch.stack([torch.stack(feats[n]).mean(0) for n in names]), names


def run_experiment(root: Path, steps: int, samples_per_prompt: int = 4) -> dict:
    """Train on the toy corpus under ``root`` and score generated latents; returns accuracies."""
    from sara.pipelines.text_to_audio import TextToAudio
    from sara.train import TrainConfig, fit, load_run_model

    shutil.rmtree(root, ignore_errors=True)
    manifest, cache, records = make_corpus(root)
    model_cfg = dataclasses.replace(DiTConfig.tiny(), dim=64, num_heads=4, ada_rank=4, ada_alpha=4.0, context_dim=64)
    cfg = T2ATrainConfig(manifest=str(manifest), latent_dir=str(cache), model=model_cfg, segment_seconds=1.0,
                         lr=1e-3, warmup_steps=50, valid_split=None)
    fit(TextToAudioTask(cfg), TrainConfig(run_dir=str(root / "run"), max_steps=steps, batch_size=16,
                                          ema_decay=0.99, ckpt_every=steps, log_every=50, valid_every=0))
    task, model, _ = load_run_model(root / "run")
    pipe = TextToAudio(model.dit, task.text_encoder, None)
    cents, names = centroids(cache, records)
    results: dict = {}
    for scale in (1.0, 3.5):
        correct = total = 0
        for k, name in enumerate(names):
            prompts = CLASSES[name][1] * samples_per_prompt
            lat = pipe.generate_latents(prompts, 1.0, 25, scale, generator=torch.Generator().manual_seed(k))
            pred = torch.cdist(lat.mean(-1), cents).argmin(-1)
            correct += int((pred == k).sum())
            total += len(prompts)
        results[f"accuracy_cfg{scale}"] = correct / total
    results.update({"chance": 1 / len(names), "num_classes": len(names), "train_steps": steps})
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--out", default="/tmp/t2a_toy")
    ap.add_argument("--samples-per-prompt", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps(run_experiment(Path(args.out), args.steps, args.samples_per_prompt), indent=1))


if __name__ == "__main__":
    main()
