"""ODE samplers for the flow-matching DiT and vocoder: distance to a many-step reference vs network calls.

Every run starts from the same initial noise as its reference, so the distance measures integration error
only.  The quality bar is the official default (DiT: 100 sway steps of Euler; paper vocoder: 200 uniform Euler
steps); for each solver (and schedule / grid) the table ends with the fewest tested calls that reach the bar.

Studies (``--studies``):

* ``demo-dit``: the bundled ``sara-demo`` DiT (real weights, MiniLM text, guidance 7, 4 s) on ``--prompts``
  captions; latent relative L2 ``|x - ref| / |ref|`` and, through the bundled demo vocoder (its 2 default steps,
  fixed noise), the DAC multi-scale mel distance of the decoded audio to the reference's audio.
* ``paper-dit``: ``DiTConfig.paper()`` with random weights (a proxy: its velocity field is not a trained
  one), random text, guidance 3.5, ``--paper-dit-seconds`` of latents (1 s by default: one guided call takes
  ~2 s on one core at 1 s and ~3 s at 2 s; ``--paper-dit-seconds 10`` for the full length).
* ``paper-vocoder``: ``VocoderConfig.paper()`` with random weights on random latents; waveform relative L2
  and the DAC mel distance (at 44.1 kHz, as ``sara eval reconstruction`` measures) to the reference.
* ``demo-vocoder``: the bundled demo vocoder (real weights; it was fine-tuned through its 2-step sampler, so
  only its convergence is of interest, not the bar) on latents of the demo DiT.

``--cache-dir`` keeps the references (hundreds of calls) so that later runs with other solvers reuse them.

    OMP_NUM_THREADS=1 python benchmarks/bench_samplers.py --studies demo-dit
    OMP_NUM_THREADS=1 python benchmarks/bench_samplers.py --studies paper-vocoder --vocoder-seconds 2
    OMP_NUM_THREADS=1 python benchmarks/bench_samplers.py --studies paper-dit --paper-dit-seconds 1
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sara.audio.dsp import resample
from sara.eval.metrics import mel_distance
from sara.flow.sampling import cfg_velocity
from sara.flow.solvers import SOLVERS, sample, steps_for_calls
from sara.flow.timesteps import make_schedule
from sara.vocoder import solvers as vsolvers

PROMPTS = ("a dog barks twice", "rain falling on a tin roof", "a car engine starts and idles",
           "birds chirping in the morning", "a crowd applauding", "a church bell rings")


@dataclass
class Run:
    """One sampler configuration and its measured distances (``metrics``) to the reference."""

    solver: str
    schedule: str
    steps: int
    calls: int = 0
    seconds: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.solver}/{self.schedule}/{self.steps}"


def rel_l2(x: Tensor, ref: Tensor) -> float:
    return float((x.double() - ref.double()).norm() / ref.double().norm())


def counted(fn: Callable[..., Tensor], counter: list[int]) -> Callable[..., Tensor]:
    """``fn`` that adds one to ``counter[0]`` per call."""

    def wrapped(*args: Any) -> Tensor:
        counter[0] += 1
        return fn(*args)

    return wrapped


# ------------------------------------------------------------------------------------------------ DiT

def dit_sampler(velocity: Callable[[Tensor, Tensor], Tensor], x: Tensor,
                euler_velocity: Callable[[Tensor, Tensor], Tensor] | None = None) -> Callable[[Run], Tensor]:
    """A function that runs one :class:`Run` of the DiT sampler from noise ``x`` (fills calls / seconds);
    ``euler_velocity`` (if given) replaces ``velocity`` for Euler runs."""

    def run(r: Run) -> Tensor:
        counter = [0]
        start = time.perf_counter()
        field = euler_velocity if euler_velocity is not None and r.solver == "euler" else velocity
        with torch.no_grad():
            out = sample(counted(field, counter), x, make_schedule(r.schedule, r.steps), r.solver)
        r.calls, r.seconds = counter[0], time.perf_counter() - start
        return out

    return run


@dataclass
class DiTPlan:
    """What a DiT study runs: solvers on sway at ``calls``, on ``variants`` schedules at ``variant_calls``,
    the reference and the reference checks (``solver:steps`` on sway)."""

    solvers: list[str]
    calls: list[int]
    variants: list[str]
    variant_calls: list[int]
    reference: str
    checks: list[str]
    key: str = ""
    cache_args: Any = None

    def runs(self) -> list[Run]:
        """The bar (Euler sway 100) first, then every planned run once."""
        runs = [Run("euler", "sway", 100)]
        for solver in self.solvers:
            runs += [Run(solver, "sway", steps_for_calls(solver, c)) for c in self.calls]
            for sched in self.variants:
                runs += [Run(solver, sched, steps_for_calls(solver, c)) for c in self.variant_calls]
        runs += [_spec(c) for c in self.checks]
        return [r for i, r in enumerate(runs) if r.label not in {q.label for q in runs[:i]}]


def _spec(text: str, schedule: str = "sway") -> Run:
    """``"solver:steps"`` or ``"solver:steps:grid"`` (e.g. ``ab2:256:shifted:0.33``) -> :class:`Run`."""
    solver, steps, *grid = text.split(":", 2)
    return Run(solver, grid[0] if grid else schedule, int(steps))


def demo_dit_study(args: argparse.Namespace) -> tuple[list[Run], Run]:
    """The bundled demo DiT with its text encoder and guidance; audio through the demo vocoder."""
    from sara.pipelines.text_to_audio import TextToAudio

    pipe = TextToAudio.from_pretrained("sara/pretrained/sara-demo")
    prompts = list(PROMPTS[: args.prompts])
    text = pipe.encode_text(prompts)
    both = pipe.dit.prepare_context(torch.cat([text.uncond, text.cond]), torch.cat([text.uncond_mask, text.cond_mask]))
    velocity = cfg_velocity(_dit_net(pipe.dit, both, args.continuous_t or args.pipeline_t), pipe.default_guidance)
    official = cfg_velocity(_dit_net(pipe.dit, both, False), pipe.default_guidance) if args.pipeline_t else None
    gen = torch.Generator().manual_seed(args.seed)
    x = pipe.dit.drop_unseen(torch.randn(len(prompts), pipe.dit.config.latent_dim, pipe.num_frames(4.0), generator=gen))
    noise = torch.randn(len(prompts), x.shape[-1] * pipe.vocoder.hop_length, generator=gen)

    def audio(latents: Tensor) -> Tensor:
        return pipe.vocoder.decode(latents, noise=noise)

    plan = DiTPlan(args.solvers, args.demo_calls, args.dit_variants, args.demo_variant_calls, args.dit_reference,
                   args.dit_reference_checks, f"demo-dit-{args.seed}-{args.prompts}-{args.continuous_t or args.pipeline_t}",
                   args)
    return _dit_study(plan, dit_sampler(velocity, x, official), audio, pipe.vocoder.sample_rate)


def _dit_net(dit: Any, text: Any, continuous_t: bool) -> Callable[[Tensor, Tensor], Tensor]:
    """The batched DiT call; ``continuous_t`` passes float ``[2B]`` times (the 0-dim path truncates to ints)."""
    if continuous_t:
        return lambda x, t: dit(x, t.expand(x.shape[0]).float(), text=text)
    return lambda x, t: dit(x, t, text=text)


def _dit_study(plan: DiTPlan, run: Callable[[Run], Tensor], audio: Callable[[Tensor], Tensor] | None,
               rate: int) -> tuple[list[Run], Run]:
    """Run the reference, then every planned run; latent (and audio) distances to the reference."""
    ref_run = _spec(plan.reference)
    ref = _cached(plan.cache_args, f"{plan.key}-{ref_run.label.replace('/', '_')}", lambda: run(ref_run))
    print(f"  reference {ref_run.label}: {ref_run.calls} calls, {ref_run.seconds:.1f} s", flush=True)
    ref_audio = audio(ref) if audio is not None else None
    runs = plan.runs()
    for r in runs:
        out = run(r)
        r.metrics["latent_rel_l2"] = rel_l2(out, ref)
        if ref_audio is not None:
            r.metrics["audio_mel"] = _mel(audio(out), ref_audio, rate)
        _progress(r)
    return runs, ref_run


def paper_dit_study(args: argparse.Namespace) -> tuple[list[Run], Run]:
    """``DiTConfig.paper()`` with random weights (as benchmarks/bench_dit.py builds it), guidance 3.5."""
    from sara.dit import DiTConfig, LatentDiT

    torch.manual_seed(args.seed)
    model = LatentDiT(DiTConfig.paper()).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))  # zero-initialised gates would silence whole branches
    cfg = model.config
    frames = max(1, round(args.paper_dit_seconds * 25 / cfg.patch_size)) * cfg.patch_size
    g = torch.Generator().manual_seed(args.seed + 1)
    x = torch.randn(1, cfg.latent_dim, frames, generator=g)
    cond = torch.randn(1, 24, cfg.context_dim, generator=g)
    mask = torch.ones(2, 24, dtype=torch.bool)
    with torch.no_grad():
        both = model.prepare_context(torch.cat([torch.zeros_like(cond), cond]), mask)
    velocity = cfg_velocity(_dit_net(model, both, args.continuous_t or args.pipeline_t), 3.5)
    official = cfg_velocity(_dit_net(model, both, False), 3.5) if args.pipeline_t else None
    plan = DiTPlan(args.paper_dit_solvers, args.paper_dit_calls, args.dit_variants if args.paper_dit_variant_calls
                   else [], args.paper_dit_variant_calls, args.paper_dit_reference, args.paper_dit_reference_checks,
                   f"paper-dit-{args.seed}-{frames}-{args.continuous_t or args.pipeline_t}", args)
    return _dit_study(plan, dit_sampler(velocity, x, official), None, 0)


# -------------------------------------------------------------------------------------------- vocoder

def paper_vocoder_study(args: argparse.Namespace) -> tuple[list[Run], Run]:
    """``VocoderConfig.paper()`` (random weights), random latents; reference = ``--vocoder-reference``."""
    from sara.vocoder import SemanticVocoder, VocoderConfig

    torch.manual_seed(args.seed)
    voc = SemanticVocoder(VocoderConfig.paper()).eval()
    g = torch.Generator().manual_seed(args.seed + 1)
    frames = max(1, round(args.vocoder_seconds * voc.frame_rate))
    z = torch.randn(1, voc.latent_dim, frames, generator=g)
    return _vocoder_study(args, voc, z, g, f"paper-vocoder-{args.seed}-{frames}")


def demo_vocoder_study(args: argparse.Namespace) -> tuple[list[Run], Run]:
    """The bundled demo vocoder (real weights, but fine-tuned for its 2-step default) on latents the demo DiT
    generates for ``--prompts`` captions (4 s)."""
    from sara.pipelines.text_to_audio import TextToAudio

    pipe = TextToAudio.from_pretrained("sara/pretrained/sara-demo")
    g = torch.Generator().manual_seed(args.seed)
    z = pipe.generate_latents(list(PROMPTS[: args.prompts]), 4.0, steps=32, generator=g)
    return _vocoder_study(args, pipe.vocoder, z, g, f"demo-vocoder-{args.seed}-{args.prompts}")


def _vocoder_study(args: argparse.Namespace, voc: Any, z: Tensor, g: torch.Generator,
                   key: str) -> tuple[list[Run], Run]:
    """Reference (cached under ``--cache-dir``), then every planned run; waveform and mel distances."""
    x0 = voc.config.init_noise_scale * torch.randn(z.shape[0], z.shape[-1] * voc.hop_length, generator=g)
    with torch.inference_mode():
        cond = voc.generator.prepare_condition(z, x0.shape[-1], True)
    run = _vocoder_sampler(lambda x, t: voc.generator(x, t, condition=cond), x0)
    ref_run = _spec(args.vocoder_reference, "uniform")
    ref = _cached(args, f"{key}-{ref_run.label.replace('/', '_')}", lambda: run(ref_run))
    print(f"  reference {ref_run.label}: {ref_run.calls} calls, {ref_run.seconds:.1f} s", flush=True)
    runs = _vocoder_runs(args)
    for r in runs:
        out = run(r)
        r.metrics["wave_rel_l2"] = rel_l2(out, ref)
        r.metrics["mel"] = _mel(out, ref, voc.sample_rate)
        _progress(r)
    return runs, ref_run


def _cached(args: argparse.Namespace, key: str, compute: Callable[[], Tensor]) -> Tensor:
    """``compute()``, stored as ``<cache-dir>/<key>.pt`` and read back on later runs (no cache dir: no cache)."""
    if args.cache_dir is None:
        return compute()
    path = Path(args.cache_dir) / f"{key}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    out = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)
    return out


def _vocoder_sampler(predict: Callable[[Tensor, Tensor], Tensor], x0: Tensor) -> Callable[[Run], Tensor]:
    def run(r: Run) -> Tensor:
        counter = [0]
        grid, _, shift = r.schedule.partition(":")
        start = time.perf_counter()
        with torch.inference_mode():
            out = vsolvers.sample(counted(predict, counter), x0, r.steps, solver=r.solver, grid=grid,
                                  shift=float(shift or 3.0))
        r.calls, r.seconds = counter[0], time.perf_counter() - start
        return out

    return run


def _vocoder_runs(args: argparse.Namespace) -> list[Run]:
    """Bar (Euler uniform 200), every solver on the uniform grid, grid variants for ``--vocoder-grid-solvers``."""
    runs = [Run("euler", "uniform", 200)]
    for solver in args.solvers:
        runs += [Run(solver, "uniform", steps_for_calls(solver, c)) for c in args.vocoder_calls]
    for solver in args.vocoder_grid_solvers:
        for grid in args.vocoder_grids:
            runs += [Run(solver, grid, steps_for_calls(solver, c)) for c in args.vocoder_grid_calls]
    runs += [_spec(c, "uniform") for c in args.vocoder_reference_checks]
    return [r for i, r in enumerate(runs) if r.label not in {q.label for q in runs[:i]}]


def _mel(x: Tensor, ref: Tensor, rate: int) -> float:
    """DAC mel distance at 44.1 kHz (``sara eval reconstruction``'s first rate), mean over the batch."""
    x44, ref44 = resample(x.float(), rate, 44100), resample(ref.float(), rate, 44100)
    return sum(mel_distance(r, y, 44100) for r, y in zip(ref44, x44)) / x.shape[0]


# ---------------------------------------------------------------------------------------------- report

def _progress(r: Run) -> None:
    print(f"  {r.label}: {r.calls} calls, {r.seconds:.1f} s, "
          + ", ".join(f"{k} {v:.3g}" for k, v in r.metrics.items()), flush=True)


def print_table(title: str, runs: list[Run], ref: Run, bar_label: str) -> dict[str, Any]:
    """A markdown table with ratios to the bar, then the fewest calls per (solver, schedule) reaching it."""
    bar = next(r for r in runs if r.label == bar_label)
    keys = list(bar.metrics)
    print(f"\n### {title}\nreference: {ref.label} ({ref.calls} calls); bar: {bar.label} ({bar.calls} calls)\n")
    print("| solver | schedule | steps | calls | calls / bar | " + " | ".join(f"{k} | / bar" for k in keys)
          + " | s |")
    print("|---" * (5 + 2 * len(keys) + 1) + "|")
    for r in sorted(runs, key=lambda r: (r.solver, r.schedule, r.calls)):
        cells = " | ".join(f"{r.metrics[k]:.3g} | {r.metrics[k] / bar.metrics[k]:.2f}" for k in keys)
        print(f"| {r.solver} | {r.schedule} | {r.steps} | {r.calls} | {r.calls / bar.calls:.2f} | {cells} | "
              f"{r.seconds:.1f} |")
    fewest = fewest_calls(runs, bar, keys[0])
    print(f"\nfewest tested calls with {keys[0]} <= the bar's {bar.metrics[keys[0]]:.3g} ({bar.calls} calls):\n")
    for key, calls in fewest.items():
        print(f"- {key}: " + (f"{calls} calls ({bar.calls / calls:.2f}x the bar's speed)" if calls else
                              "not reached in the tested range"))
    return {"reference": asdict(ref), "bar": bar_label, "runs": [asdict(r) for r in runs], "fewest": fewest}


def fewest_calls(runs: list[Run], bar: Run, key: str) -> dict[str, int | None]:
    """Per ``solver/schedule``: the fewest calls of a tested run whose ``key`` is <= the bar's (None: none)."""
    out: dict[str, int | None] = {}
    for r in sorted(runs, key=lambda r: r.calls):
        name = f"{r.solver}/{r.schedule}"
        out.setdefault(name, None)
        if out[name] is None and r.metrics[key] <= bar.metrics[key] and r is not bar:
            out[name] = r.calls
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--studies", nargs="+", choices=tuple(STUDIES),
                   default=["demo-dit", "paper-vocoder", "paper-dit"])
    p.add_argument("--solvers", nargs="+", choices=SOLVERS, default=list(SOLVERS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write every measurement to this file")
    p.add_argument("--cache-dir", default=None, help="keep the (expensive) references here between runs")
    p.add_argument("--pipeline-t", action="store_true",
                   help="as TextToAudio samples: Euler with the official integer timesteps, the other solvers (and "
                        "the reference) with continuous ones")
    p.add_argument("--continuous-t", action="store_true",
                   help="DiT: pass float times (the default 0-dim path truncates sigma * 1000 to integers)")
    p.add_argument("--dit-reference", default="heun:500", help="solver:steps of the DiT reference (sway)")
    p.add_argument("--dit-reference-checks", nargs="*", default=["euler:1000"],
                   help="extra sway runs that show how close the reference is (solver:steps)")
    p.add_argument("--dit-variants", nargs="*", default=["linear", "shifted"], choices=("linear", "shifted"))
    p.add_argument("--prompts", type=int, default=4, help="demo captions (batch)")
    p.add_argument("--demo-calls", type=int, nargs="+", default=[6, 8, 12, 16, 24, 32, 48])
    p.add_argument("--demo-variant-calls", type=int, nargs="*", default=[8, 12, 16, 24])
    p.add_argument("--paper-dit-seconds", type=float, default=1.0)
    p.add_argument("--paper-dit-solvers", nargs="+", choices=SOLVERS, default=["heun", "dpm2m", "ab2"])
    p.add_argument("--paper-dit-calls", type=int, nargs="+", default=[12, 24])
    p.add_argument("--paper-dit-reference", default="heun:32")
    p.add_argument("--paper-dit-reference-checks", nargs="*", default=[])
    p.add_argument("--paper-dit-variant-calls", type=int, nargs="*", default=[])
    p.add_argument("--vocoder-seconds", type=float, default=2.0)
    p.add_argument("--vocoder-reference", default="heun:256", help="solver:steps of the reference (uniform)")
    p.add_argument("--vocoder-reference-checks", nargs="*", default=[])
    p.add_argument("--vocoder-calls", type=int, nargs="*", default=[4, 8, 16, 32, 64])
    p.add_argument("--vocoder-grid-solvers", nargs="*", default=["heun", "ab2"], choices=SOLVERS)
    p.add_argument("--vocoder-grids", nargs="*", default=["sway", "shifted:3", "shifted:0.33"])
    p.add_argument("--vocoder-grid-calls", type=int, nargs="*", default=[8, 16, 32])
    return p.parse_args(argv)


STUDIES = {"demo-dit": (demo_dit_study, "demo DiT (real weights), 4 s", "euler/sway/100"),
           "paper-dit": (paper_dit_study, "paper DiT (random weights)", "euler/sway/100"),
           "paper-vocoder": (paper_vocoder_study, "paper vocoder (random weights)", "euler/uniform/200"),
           "demo-vocoder": (demo_vocoder_study, "demo vocoder (real weights, 2-step fine-tuned)", "euler/uniform/200")}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {}
    for name in args.studies:
        study, title, bar = STUDIES[name]
        print(f"== {name}", flush=True)
        runs, ref = study(args)
        results[name] = print_table(title, runs, ref, bar)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), **results}, f, indent=1)
    return results


if __name__ == "__main__":
    main()
