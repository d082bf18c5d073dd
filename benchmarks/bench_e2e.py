"""End-to-end text -> audio per precision, compile setting and sampler, as ratios to today's float32 Euler defaults.

Every configuration runs the real ``TextToAudio`` pipeline (``pipe.generate_latents`` then ``vocoder.decode``) on
the same prompt, seed and noise in one process, so the times are comparable ratios and the quality deltas are
differences of integration / rounding only:

* ``latent_rel_l2``: ``|z - z_default| / |z_default|`` of the DiT's latents;
* ``mel``: the DAC multi-scale mel distance of the audio to the default configuration's audio (44.1 kHz, as
  ``sara eval reconstruction`` measures);
* ``vocoder_mel``: the same for this configuration's vocoder sampler run on the *default* latents (the vocoder's
  own delta, apart from the DiT's).

Systems (``--system``):

* ``paper``: ``DiTConfig.paper()`` (24 x 1024, 768-d latents) and ``VocoderConfig.paper()`` with random weights
  (perturbed so that no branch is silent), random T5-sized text states (1024-d), guidance 3.5, 10 s.  The
  default is the official sampler: 100 sway Euler steps (the no-op step skipped) and 200 uniform Euler
  vocoder steps.
* ``demo``: the bundled ``sara-demo`` with its own text encoder and defaults (4 s, guidance 7, 2 vocoder steps);
  the reported real-time factor is audio seconds per wall-clock second.

A configuration is ``name=dtype,dit_solver:steps,vocoder_solver:grid:steps[,compile]``::

    OMP_NUM_THREADS=1 python benchmarks/bench_e2e.py --system paper --threads 1
    OMP_NUM_THREADS=1 python benchmarks/bench_e2e.py --system demo --threads 1 --repeats 3

The tolerance the README states is checked against the table: ``latent_rel_l2`` and ``mel`` of a fast setting
must stay below the official default's own distance to a many-step reference (``benchmarks/bench_samplers.py``).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from bench_samplers import _mel as mel  # the DAC mel distance at 44.1 kHz, batch mean
from bench_samplers import rel_l2
from torch import Tensor

PAPER_CONFIGS = (  # the vocoder keeps Euler 200: no solver reached its quality with fewer calls (README)
    "default=float32,euler:100,euler:uniform:200",
    "bf16=bfloat16,euler:100,euler:uniform:200",
    "fast=float32,dpm2m:32,euler:uniform:200",
    "bf16-fast=bfloat16,dpm2m:32,euler:uniform:200",
)
DEMO_CONFIGS = (
    "default=float32,euler:100,euler:uniform:2",
    "bf16=bfloat16,euler:100,euler:uniform:2",
    "fast=float32,dpm2m:32,euler:uniform:2",
    "faster=float32,dpm2m:16,euler:uniform:2",
)
PROMPT = "a dog barks while rain falls on a tin roof"


@dataclass
class Config:
    """One row: compute dtype, DiT solver / steps, vocoder solver / grid / steps, compile flag."""

    name: str
    dtype: str
    solver: str
    steps: int
    vocoder_solver: str
    vocoder_grid: str
    vocoder_steps: int
    compile: bool = False
    results: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Config:
        name, _, spec = text.partition("=")
        dtype, dit, voc, *rest = spec.split(",")
        solver, steps = dit.split(":")
        vsolver, vgrid, vsteps = voc.split(":")
        return cls(name, dtype, solver, int(steps), vsolver, vgrid, int(vsteps), compile=rest == ["compile"])


class _RandomText(torch.nn.Module):
    """A stand-in for FLAN-T5 (no weights here): fixed random ``[24, dim]`` states for any prompt."""

    def __init__(self, dim: int, seed: int = 0) -> None:
        super().__init__()
        self.dim = dim
        self.states = torch.randn(24, dim, generator=torch.Generator().manual_seed(seed))

    def encode(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        return self.states.expand(len(prompts), -1, -1).clone(), torch.ones(len(prompts), 24, dtype=torch.bool)


def paper_pipeline(seed: int) -> Any:
    """``TextToAudio`` at the paper size with random weights (as ``benchmarks/bench_samplers.py`` builds them)."""
    from sara.dit import DiTConfig, LatentDiT
    from sara.pipelines.text_to_audio import TextToAudio
    from sara.vocoder import SemanticVocoder, VocoderConfig

    torch.manual_seed(seed)
    dit = LatentDiT(DiTConfig.paper()).eval()
    with torch.no_grad():
        for p in dit.parameters():
            p.add_(0.02 * torch.randn_like(p))  # zero-initialised gates would silence whole branches
    vocoder = SemanticVocoder(VocoderConfig.paper()).eval()
    return TextToAudio(dit, _RandomText(dit.config.text_dim or dit.config.context_dim), vocoder)  # type: ignore[arg-type]


def run_config(pipe: Any, cfg: Config, seconds: float, guidance: float, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Generate once with ``cfg``: ``(latents, audio, noise)``; stage times in ``cfg.results``."""
    pipe.set_inference(dtype=cfg.dtype, compile=cfg.compile)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    z = pipe.generate_latents([PROMPT], seconds, steps=cfg.steps, guidance_scale=guidance, generator=gen,
                              solver=cfg.solver)
    middle = time.perf_counter()
    noise = torch.randn(1, z.shape[-1] * pipe.vocoder.hop_length, generator=gen)
    wav = vocode(pipe, cfg, z, noise)
    end = time.perf_counter()
    cfg.results.update(dit_s=middle - start, vocoder_s=end - middle, total_s=end - start)
    return z, wav, noise


def vocode(pipe: Any, cfg: Config, z: Tensor, noise: Tensor) -> Tensor:
    return pipe.vocoder.decode(z, steps=cfg.vocoder_steps, noise=noise, solver=cfg.vocoder_solver,
                               grid=cfg.vocoder_grid).float()


def measure(pipe: Any, configs: list[Config], args: argparse.Namespace) -> None:
    """Run every configuration (best of ``--repeats`` for the times); quality deltas to the first one."""
    base_z = base_wav = base_noise = None
    for cfg in configs:
        best: dict[str, float] = {}
        for _ in range(args.repeats):
            z, wav, noise = run_config(pipe, cfg, args.seconds, args.guidance, args.seed)
            best = {k: min(v, best.get(k, float("inf"))) for k, v in cfg.results.items()}
        cfg.results = best
        if base_z is None:
            base_z, base_wav, base_noise = z, wav, noise
        rate = pipe.vocoder.sample_rate
        cfg.results.update(latent_rel_l2=rel_l2(z, base_z), mel=mel(wav, base_wav, rate),
                           vocoder_mel=mel(vocode(pipe, cfg, base_z, base_noise), base_wav, rate))
        print(f"  {cfg.name}: " + ", ".join(f"{k} {v:.4g}" for k, v in cfg.results.items()), flush=True)
    pipe.set_inference(dtype="float32", compile=False)


def print_table(configs: list[Config], seconds: float) -> None:
    base = configs[0].results
    print("\n| config | dtype | DiT solver:steps | vocoder solver:grid:steps | DiT s | vocoder s | total s | "
          "speed-up | x real time | latent rel L2 | mel | vocoder mel |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for c in configs:
        r = c.results
        print(f"| {c.name} | {c.dtype}{' +compile' if c.compile else ''} | {c.solver}:{c.steps} | "
              f"{c.vocoder_solver}:{c.vocoder_grid}:{c.vocoder_steps} | {r['dit_s']:.2f} | {r['vocoder_s']:.2f} | "
              f"{r['total_s']:.2f} | {base['total_s'] / r['total_s']:.2f}x | {seconds / r['total_s']:.2f} | "
              f"{r['latent_rel_l2']:.4f} | {r['mel']:.4f} | {r['vocoder_mel']:.4f} |")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--system", choices=("paper", "demo"), default="paper")
    p.add_argument("--configs", nargs="+", default=None, help="name=dtype,solver:steps,vsolver:grid:vsteps[,compile]")
    p.add_argument("--seconds", type=float, default=None, help="audio length (default: 10 s paper, 4 s demo)")
    p.add_argument("--guidance", type=float, default=None, help="CFG scale (default: 3.5 paper, the demo's own)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1, help="timed runs per configuration (best kept)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the results here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Config]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.system == "paper":
        pipe, specs = paper_pipeline(args.seed), args.configs or PAPER_CONFIGS
        args.seconds, args.guidance = args.seconds or 10.0, args.guidance or 3.5
    else:
        from sara.pipelines.text_to_audio import TextToAudio

        pipe, specs = TextToAudio.from_pretrained("sara/pretrained/sara-demo"), args.configs or DEMO_CONFIGS
        args.seconds, args.guidance = args.seconds or pipe.default_duration, args.guidance or pipe.default_guidance
    configs = [Config.parse(s) for s in specs]
    print(f"== {args.system}: {args.seconds:g} s, guidance {args.guidance:g}, {args.threads} thread(s)", flush=True)
    measure(pipe, configs, args)
    print_table(configs, args.seconds)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "configs": [c.__dict__ for c in configs]}, f, indent=1)
    return configs


if __name__ == "__main__":
    main()
