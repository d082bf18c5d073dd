"""Long-form generation and inpainting: are the joins audible?  And does memory stay flat with duration?

Seam statistic (:mod:`sara.edit.seams`): spectral flux of the waveform (10 ms frames) and the distance
between consecutive latent frames, max-pooled over +-50 ms, averaged at the joins (``seam``) and at every
position at least 0.5 s from a join (``inside``); ``ratio = seam / inside`` (1 = joins look like any other
moment).  Compared:

* ``longform``: ``pipe.generate`` -- windows of the model's trained length, each a continuation of the
  previous one (its first ``--overlap`` seconds held to the previous window's latents);
* ``naive``: independent windows of the same length, concatenated (``overlap=0``), the baseline;
* ``inpaint``: a generated clip with ``--regions`` regions regenerated (joins at the region edges), next to
  the naive splice of an independently generated clip into the same regions.

Memory: peak RSS of a fresh process generating 10 s vs 60 s (``ru_maxrss``; the model alone is reported
too, so the growth is visible).  Time: seconds of CPU wall time per second of audio.

    python benchmarks/longform_seams.py [--model DIR] [--duration 300] [--naive-duration 60] [--steps 50]
        [--parts longform,naive,inpaint,memory,short] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from sara.edit.seams import SeamStats, latent_steps, log_spectrogram, novelty, seam_stats, spectral_flux

PROMPTS = ["rain on a roof", "a dog barks", "birds singing", "a car engine", "water running from a tap",
           "footsteps on gravel", "church bells", "wind blowing"]


def load(model: str | None):  # noqa: ANN201 - TextToAudio
    from sara.cli.generate import default_model_dir
    from sara.pipelines.text_to_audio import TextToAudio

    return TextToAudio.from_pretrained(model or default_model_dir())


def stats_row(name: str, wav: torch.Tensor, latents: torch.Tensor | None, joins_s: list[float],
              extra: dict[str, object]) -> dict[str, object]:
    """Seam statistics at ``joins_s`` seconds as one JSON-able row: ``flux`` (10 ms spectral flux),
    ``nov`` (spectral novelty: mean log spectrum 0.25 s after vs before), and for latents ``lat`` (step
    between consecutive frames) and ``latnov`` (latent novelty over 6 frames)."""
    wav = wav.reshape(-1)
    series = {"flux": (spectral_flux(wav, 24000), 100.0), "nov": (novelty(log_spectrogram(wav, 24000), 25), 100.0)}
    if latents is not None:
        z = latents.reshape(latents.shape[-2], -1)
        series.update(lat=(latent_steps(z), 25.0), latnov=(novelty(z, 6), 25.0))
    row: dict[str, object] = {"part": name}
    for key, (values, rate) in series.items():
        st: SeamStats = seam_stats(values, rate, joins_s)
        row.update({f"{key}_seam": round(st.seam, 4), f"{key}_inside": round(st.inside, 4),
                    f"{key}_ratio": round(st.ratio, 3)})
        row["joins"] = st.num_joins
    row.update(extra)
    return row


def save_part(args: argparse.Namespace, name: str, **tensors: object) -> None:
    """Keep a part's audio / latents / joins under ``--out-dir`` (for re-analysis without re-generating)."""
    if args.out_dir:
        Path(args.out_dir).mkdir(parents=True, exist_ok=True)
        torch.save(tensors, Path(args.out_dir) / f"{name}.pt")


def run_generation(pipe, name: str, duration: float, args: argparse.Namespace, overlap: float,  # noqa: ANN001
                   blend: float = 0.0) -> tuple[dict[str, object], torch.Tensor]:
    """Generate ``duration`` s window by window and measure its seams."""
    schedule = [(0.0, "rain on a roof"), (duration / 2, "thunder storm")] if args.schedule else "rain on a roof"
    start = time.perf_counter()
    res = pipe.generate_windows(schedule, duration, steps=args.steps, seed=args.seed, overlap=overlap, blend=blend)
    dit_s = time.perf_counter() - start
    wav = pipe.decode_latents(res.latents, generator=res.generator)[..., : round(duration * 24000)]
    total = time.perf_counter() - start
    w = res.spans[0][1] - res.spans[0][0]
    joins = res.joins if overlap > 0 else [e for _, e in res.spans[:-1]]
    extra = {"seconds": duration, "samples": wav.shape[-1], "exact": wav.shape[-1] == round(duration * 24000),
             "windows": len(res.spans), "window_s": w / 25, "overlap_s": overlap, "blend_s": blend,
             "dit_s": round(dit_s, 1), "total_s": round(total, 1), "s_per_audio_s": round(total / duration, 3)}
    save_part(args, f"{name}_{duration:g}s", wav=wav, latents=res.latents, joins=joins, spans=res.spans)
    return stats_row(name, wav, res.latents, [j / 25 for j in joins], extra), wav


def run_inpaint(pipe, clip: torch.Tensor, args: argparse.Namespace) -> list[dict[str, object]]:  # noqa: ANN001
    """Regenerate ``--regions`` 1.5 s regions of ``clip``; seams at the region edges vs a naive splice.

    Every call uses the same seed, so each output equals the same reconstruction outside its region and the
    regions can be combined into one clip; the baseline pastes an independent 1.5 s generation into each
    region of that reconstruction (hard cut).
    """
    seconds = clip.shape[-1] / 24000
    starts = [2.0 + i * (seconds - 4.0) / args.regions for i in range(args.regions)]
    recon = pipe.reconstruct(clip, 24000, seed=args.seed)
    out, naive, edges = recon.clone(), recon.clone(), []
    begin = time.perf_counter()
    for i, a in enumerate(starts):
        prompt = "rain on a roof" if args.same_prompt else PROMPTS[i % len(PROMPTS)]
        lo, hi = round(a * 24000), round((a + 1.5) * 24000)
        edited = pipe.inpaint(clip, 24000, prompt, a, a + 1.5, steps=args.steps, seed=args.seed)
        out[..., lo:hi] = edited[..., lo:hi]
        naive[..., lo:hi] = pipe.generate(prompt, 1.5, steps=args.steps, seed=args.seed + i,
                                          end_silence=False)[..., : hi - lo]
        edges += [a, a + 1.5]
    save_part(args, "inpaint", wav=out, naive=naive, recon=recon, edges=edges)
    extra = {"regions": args.regions, "region_s": 1.5, "clip_s": round(seconds, 2), "same_prompt": args.same_prompt,
             "total_s": round(time.perf_counter() - begin, 1)}
    return [stats_row("inpaint", out, None, edges, extra),
            stats_row("inpaint_naive_splice", naive, None, edges, {"regions": args.regions})]


def child_memory(model: str | None, duration: float, steps: int) -> None:
    """(In a fresh process) print RSS after loading and peak RSS after a ``duration`` s generation."""
    pipe = load(model)
    pipe.generate("rain on a roof", 1.0, steps=2, seed=0)  # warm-up: allocator pools, lazy imports
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    wav = pipe.generate("rain on a roof", duration, steps=steps, seed=0)
    took = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"part": "memory", "seconds": duration, "samples": wav.shape[-1], "rss_after_warmup_mb":
                      round(loaded, 1), "peak_rss_mb": round(peak, 1), "growth_mb": round(peak - loaded, 1),
                      "total_s": round(took, 1)}))


def run_memory(args: argparse.Namespace) -> list[dict[str, object]]:
    rows = []
    for seconds in (10.0, 60.0):
        cmd = [sys.executable, __file__, "--child-memory", str(seconds), "--steps", str(args.memory_steps)]
        if args.model:
            cmd += ["--model", args.model]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    rows.append({"part": "memory_ratio", "peak_60_over_10": round(rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"], 3),
                 "growth_60_minus_10_mb": round(rows[1]["peak_rss_mb"] - rows[0]["peak_rss_mb"], 1)})
    return rows


def run_short(pipe, args: argparse.Namespace) -> list[dict[str, object]]:  # noqa: ANN001
    """1 s sounds: RMS of the last 100 ms over the clip's RMS, with and without the silence-held tail."""
    rows = []
    for end_silence in (True, False):
        ratios = []
        for i, prompt in enumerate(PROMPTS):
            wav = pipe.generate(prompt, 1.0, steps=args.steps, seed=args.seed + i, end_silence=end_silence)[0]
            ratios.append(float(wav[-2400:].pow(2).mean().sqrt() / wav.pow(2).mean().sqrt().clamp_min(1e-8)))
        rows.append({"part": "short_1s", "end_silence": end_silence, "clips": len(ratios),
                     "tail_rms_over_rms": round(sum(ratios) / len(ratios), 3)})
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None)
    p.add_argument("--duration", type=float, default=300.0)
    p.add_argument("--naive-duration", type=float, default=60.0)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--memory-steps", type=int, default=10)
    p.add_argument("--overlap", type=float, default=1.0)
    p.add_argument("--regions", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--schedule", action="store_true", help="long-form prompt changes half-way")
    p.add_argument("--same-prompt", action="store_true",
                   help="inpaint with the clip's own prompt (a content change at the edges is then a seam, "
                        "not the requested edit)")
    p.add_argument("--parts", default="longform,naive,inpaint,memory,short")
    p.add_argument("--out-dir", default=None, help="write the long-form wav here")
    p.add_argument("--child-memory", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.child_memory is not None:
        return child_memory(args.model, args.child_memory, args.steps)
    parts = set(args.parts.split(","))
    pipe = load(args.model)
    long_wav = None
    if "longform" in parts:
        row, long_wav = run_generation(pipe, "longform", args.duration, args, overlap=args.overlap)
        print(json.dumps(row), flush=True)
        if args.out_dir:
            from sara.audio.io import save_audio

            print("wrote", save_audio(Path(args.out_dir) / f"longform_{args.duration:g}s.wav", long_wav[0], 24000))
    if "naive" in parts:
        for name, overlap, blend in (("naive_concat", 0.0, 0.0), ("longform", args.overlap, 0.0),
                                     ("longform_blend", args.overlap, 0.2)):
            row, _ = run_generation(pipe, name, args.naive_duration, args, overlap=overlap, blend=blend)
            print(json.dumps(row), flush=True)
    if "inpaint" in parts:
        clip = long_wav[..., : 30 * 24000] if long_wav is not None else pipe.generate(
            "rain on a roof", 30.0, steps=args.steps, seed=args.seed)
        for row in run_inpaint(pipe, clip, args):
            print(json.dumps(row), flush=True)
    if "short" in parts:
        for row in run_short(pipe, args):
            print(json.dumps(row), flush=True)
    if "memory" in parts:
        for row in run_memory(args):
            print(json.dumps(row), flush=True)

if __name__ == "__main__":
    main()
