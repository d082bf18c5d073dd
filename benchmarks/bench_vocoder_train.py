"""Cost of one vocoder training step: stage 1 (flow matching) vs stage 2 (through a k-step sampler, with or
without discriminators), as ratios to the stage-1 step measured in the same run.

    python benchmarks/bench_vocoder_train.py                 # small generator, batch 8 x 1.6 s, 1 thread
    python benchmarks/bench_vocoder_train.py --preset tiny --repeats 2

Synthetic audio and latents (the data pipeline is not timed); forward + backward + optimizer step.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from sara.vocoder import VocoderConfig
from sara.vocoder.discriminators import DiscriminatorConfig
from sara.vocoder.gan import VocoderGANTask, VocoderGANTrainConfig
from sara.vocoder.training import VocoderTask, VocoderTrainConfig


def _timer(task, batch: dict[str, torch.Tensor]) -> Callable[[], float]:  # noqa: ANN001 - any vocoder task
    model = task.build_model().train()
    opt, _ = task.build_optimizer(model, 100)

    def step() -> float:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        task.compute_loss(model, batch).total.backward()
        opt.step()
        return time.perf_counter() - t0

    step()  # warm-up
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=("small", "tiny"), default="small")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = getattr(VocoderConfig, args.preset)()
    common = {"model": model, "train_data": ("-",), "latent_cache": "-"}
    n = 40  # 1.6 s segments
    batch = {"audio": torch.randn(args.batch_size, n * model.hop_length) * 0.1,
             "latents": torch.randn(args.batch_size, model.latent_dim, n),
             "length": torch.full((args.batch_size,), n * model.hop_length)}
    cases: dict[str, object] = {"stage 1 (flow matching)": VocoderTask(VocoderTrainConfig(**common))}
    for k in (1, 2):
        cases[f"stage 2, k={k}, mel only"] = VocoderGANTask(VocoderGANTrainConfig(**common, gen_steps=k,
                                                                                  adversarial=False))
    for disc in ("small", "paper"):
        cases[f"stage 2, k=1, GAN ({disc} discriminators)"] = VocoderGANTask(VocoderGANTrainConfig(
            **common, gen_steps=1, gen_start_step=0, discriminator=getattr(DiscriminatorConfig, disc)()))
    timers = {name: _timer(task, batch) for name, task in cases.items()}
    times = {name: [] for name in cases}
    for _ in range(args.repeats):  # interleaved, so machine noise hits every case alike
        for name, timer in timers.items():
            times[name].append(timer())
    base = min(times["stage 1 (flow matching)"])
    print(f"{args.preset} generator, batch {args.batch_size} x 1.6 s, {args.threads} thread(s); "
          f"min over {args.repeats} steps, relative to a stage-1 step")
    for name, ts in times.items():
        print(f"  {name:45s} {min(ts) / base:6.2f}x")


if __name__ == "__main__":
    main()
