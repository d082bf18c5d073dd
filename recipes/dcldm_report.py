"""Helpers of ``recipes/dcldm_table1.sh`` (the paper's Table 1 and Figure 2 in miniature).

Sub-commands (each resumable: finished files are kept)::

    python recipes/dcldm_report.py caches    <sara train dcldm flags> --data M --frames N
    python recipes/dcldm_report.py reference --manifest M --classifier C --out DIR [--per-class 3]
    python recipes/dcldm_report.py generate  --model REL --reference DIR --out DIR [--guidance 4 --steps 50]
    python recipes/dcldm_report.py best      --results DIR --systems a b c
    python recipes/dcldm_report.py report    --results DIR --out DIR [--sweep SYSTEM ...]

``caches`` builds the latent cache and the training tokens exactly as ``sara train dcldm --build-cache
--build-tokens`` would, without training; ``reference`` picks the test captions (``per-class`` per classifier class, :func:`sara.eval.relevance.select_prompts`)
and writes their real clips as ``DIR/audio/<i>.wav`` plus ``DIR/prompts.json``; ``generate`` writes one clip per
caption with the same file names (so ``sara eval generation`` pairs them for KL) and ``relevance.json`` (the
corpus classifier's accuracy on the generated clips vs the real ones); ``best`` prints the placement system
with the lowest FAD; ``report`` collects every ``<results>/<system>[/w<g>]/{generation,relevance}.json`` into
``table1.md`` + ``table1.png`` + ``guidance.png`` and states which of the paper's directions held.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

# The paper's Table 1 directions (Wang et al., DC-LDM): what the miniature checks.
PAPER_DIRECTIONS = (
    ("dual beats text-only", "dcldm_down1_up1", "ldm_text"),
    ("dual beats acoustic-only", "dcldm_down1_up1", "ldm_acoustic"),
    ("down1+up1 beats down1 alone", "dcldm_down1_up1", "dcldm_down1"),
    ("down1+up1 beats up1 alone", "dcldm_down1_up1", "dcldm_up1"),
)
METRICS = ("fd", "fad", "kl_softmax")


def _load_pipeline(path: Path) -> Any:
    """A DCLDM or LatentDiffusion pipeline, by the release's class."""
    cls = json.loads((path / "config.json").read_text()).get("class")
    if cls == "DCLDM":
        from sara.dcldm.pipeline import DCLDM

        return DCLDM.from_pretrained(path)
    from sara.pipelines.latent_diffusion import LatentDiffusion

    return LatentDiffusion.from_pretrained(path)


# ------------------------------------------------------------------------------------------ caches


def cmd_caches(argv: list[str]) -> int:
    """Build the latent cache (no caption mixtures) and the token cache from ``sara train dcldm`` flags."""
    from sara.cli import train_dcldm
    from sara.cli.train import add_common_arguments

    p = argparse.ArgumentParser(prog="dcldm_report.py caches")
    add_common_arguments(p)
    train_dcldm.add_arguments(p)
    args = p.parse_args(argv)
    args.build_cache, args.build_tokens, args.mix_fraction = True, True, 0.0
    task = train_dcldm.build_task(args)
    train, valid = task.build_datasets()  # checks the caches against the models
    print(f"caches ready: {len(train)} training items, {0 if valid is None else len(valid)} validation items")
    return 0


# ------------------------------------------------------------------------------------------ reference


def cmd_reference(args: argparse.Namespace) -> int:
    """Write the test prompts and their real clips (16 kHz mono wav, named ``<i>.wav``)."""
    from sara.audio.io import load_audio, save_audio
    from sara.data.manifest import load_manifest
    from sara.eval.embedders.classifier import ClassifierEmbedder
    from sara.eval.relevance import select_prompts

    classifier = ClassifierEmbedder.from_pretrained(args.classifier)
    prompts = select_prompts(load_manifest(args.manifest), classifier.model.config.class_names,
                             root=Path(args.manifest).parent, split=args.split, per_class=args.per_class)
    out = Path(args.out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, p in enumerate(prompts):
        target = out / "audio" / f"{i:04d}.wav"
        if not target.is_file():
            wav, _ = load_audio(p.audio_path, sample_rate=16000, mono=True)
            save_audio(target, wav, 16000)
        rows.append({"name": target.name, "caption": p.caption, "label": p.label, "audio_path": str(p.audio_path)})
    (out / "prompts.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"{out}: {len(rows)} test prompts over {len({r['label'] for r in rows})} classes")
    return 0


# ------------------------------------------------------------------------------------------ generation


def _generate_missing(pipe: Any, rows: list[dict[str, Any]], out: Path, args: argparse.Namespace) -> int:
    """Generate ``out/audio/<name>`` for every prompt row that has no file yet, ``--batch-size`` captions per
    call (seed ``args.seed + i`` of the chunk's first row ``i``)."""
    from sara.audio.io import save_audio

    todo = [(i, row) for i, row in enumerate(rows) if not (out / "audio" / row["name"]).is_file()]
    for k in range(0, len(todo), args.batch_size):
        chunk = todo[k:k + args.batch_size]
        wav = pipe([row["caption"] for _, row in chunk], duration=args.duration, steps=args.steps,
                   guidance_scale=args.guidance, seed=args.seed + chunk[0][0], sampler=args.sampler)
        for (_, row), clip in zip(chunk, wav):
            save_audio(out / "audio" / row["name"], clip.cpu(), pipe.sample_rate)
    return len(todo)


def _relevance(rows: list[dict[str, Any]], out: Path, reference: Path, classifier_dir: str) -> dict[str, Any]:
    """The corpus classifier's accuracy on the generated clips (and on the real ones) of ``rows``."""
    from sara.audio.io import load_audio
    from sara.eval.embedders.classifier import ClassifierEmbedder
    from sara.eval.relevance import RelevancePrompt, classifier_fn, relevance_score

    prompts = [RelevancePrompt(r["caption"], r["label"], reference / "audio" / r["name"]) for r in rows]
    names = iter(r["name"] for r in rows)

    def saved(captions: list[str]) -> Any:
        import torch

        return torch.stack([load_audio(out / "audio" / next(names), sample_rate=16000, mono=True)[0][0]
                            for _ in captions])

    classify = classifier_fn(ClassifierEmbedder.from_pretrained(classifier_dir))
    return relevance_score(prompts, saved, classify, sample_rate=16000, load=load_audio, batch_size=1)


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate the reference prompts with one model and score their relevance."""
    reference, out = Path(args.reference), Path(args.out)
    rows = json.loads((reference / "prompts.json").read_text())
    (out / "audio").mkdir(parents=True, exist_ok=True)
    pipe = _load_pipeline(Path(args.model))
    written = _generate_missing(pipe, rows, out, args)
    result = _relevance(rows, out, reference, args.classifier)
    settings = {k: getattr(args, k) for k in ("model", "guidance", "steps", "duration", "seed", "sampler",
                                              "batch_size")}
    (out / "relevance.json").write_text(json.dumps({**settings, **result}, indent=1, default=str) + "\n")
    print(f"{out}: wrote {written} clips; relevance {result['generated_accuracy']:.3f} "
          f"(real {result['real_accuracy']:.3f})")
    return 0


# ------------------------------------------------------------------------------------------ results


def _metrics(run: Path) -> dict[str, float]:
    """Flat ``{<embedder>/<metric>: value, "relevance": acc}`` of one evaluated generation directory."""
    row: dict[str, float] = {}
    gen = run / "eval" / "generation.json"
    if gen.is_file():
        for embedder, values in json.loads(gen.read_text())["metrics"].items():
            for key in METRICS:
                if isinstance(values.get(key), (int, float)):
                    row[f"{embedder.split(':')[0]}/{key}"] = float(values[key])
    rel = run / "relevance.json"
    if rel.is_file():
        row["relevance"] = float(json.loads(rel.read_text())["generated_accuracy"])
    return row


def _fad_key(row: dict[str, float]) -> str | None:
    """The FAD used to rank systems: the corpus classifier's when present, else the mel embedder's."""
    for key in ("classifier/fad", "mel/fad"):
        if key in row:
            return key
    return None


def cmd_best(args: argparse.Namespace) -> int:
    """Print the system (of ``--systems``) with the lowest FAD at the main guidance."""
    scored = []
    for name in args.systems:
        row = _metrics(Path(args.results) / name)
        key = _fad_key(row)
        if key is not None:
            scored.append((row[key], name))
    if not scored:
        print("no evaluated systems", file=sys.stderr)
        return 1
    print(min(scored)[1])
    return 0


def _systems(results: Path) -> dict[str, dict[str, float]]:
    return {d.name: _metrics(d) for d in sorted(results.iterdir()) if d.is_dir() and (d / "relevance.json").is_file()}


def _sweeps(results: Path, systems: list[str]) -> dict[str, dict[float, dict[str, float]]]:
    """``{system: {w: metrics}}`` from ``<results>/<system>/w<g>/``."""
    out: dict[str, dict[float, dict[str, float]]] = {}
    for name in systems:
        runs = sorted((results / name).glob("w*"))
        out[name] = {float(r.name[1:]): _metrics(r) for r in runs if (r / "relevance.json").is_file()}
    return out


def _table(rows: dict[str, dict[str, float]]) -> str:
    keys = sorted({k for r in rows.values() for k in r})
    lines = ["| system | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, r in rows.items():
        cells = [f"{r[k]:.4g}" if k in r and math.isfinite(r[k]) else "-" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _directions(rows: dict[str, dict[str, float]]) -> list[str]:
    """One line per paper direction: held / did not hold on the ranking FAD, and on how many of all the
    distance metrics (FD / FAD / KL, lower is better) the paper's better system is ahead."""
    lines = []
    for text, better, worse in PAPER_DIRECTIONS:
        a, b = rows.get(better, {}), rows.get(worse, {})
        key = _fad_key(a)
        if key is None or key not in b:
            lines.append(f"- {text}: not measured")
            continue
        held = a[key] < b[key]
        shared = [k for k in sorted(a) if k in b and k != "relevance"]
        ahead = [k for k in shared if a[k] < b[k]]
        lines.append(f"- {text}: {'held' if held else 'did not hold'} on {key} ({a[key]:.5g} vs {b[key]:.5g}); "
                     f"ahead on {len(ahead)} of {len(shared)} metrics ({', '.join(ahead) or 'none'})")
    return lines


def _plot(rows: dict[str, dict[str, float]], sweeps: dict[str, dict[float, dict[str, float]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # in this script only: headless plotting
    import matplotlib.pyplot as plt

    keys = [k for k in ("classifier/fad", "mel/fad", "relevance") if any(k in r for r in rows.values())]
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(4 * max(1, len(keys)), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=False):
        names = [n for n in rows if key in rows[n]]
        ax.barh(names, [rows[n][key] for n in names])
        ax.set_title(key)
    fig.tight_layout()
    fig.savefig(out / "table1.png", dpi=120)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, by_w in sweeps.items():
        ws = sorted(w for w in by_w if _fad_key(by_w[w]))
        if ws:
            ax.plot(ws, [by_w[w][_fad_key(by_w[w])] for w in ws], marker="o", label=name)
    ax.set_xlabel("guidance scale w")
    ax.set_ylabel("FAD")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "guidance.png", dpi=120)


def cmd_report(args: argparse.Namespace) -> int:
    """Write ``table1.md`` (+ PNGs) from every evaluated system and guidance sweep under ``--results``."""
    results, out = Path(args.results), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = _systems(results)
    sweeps = _sweeps(results, args.sweep or [])
    _plot(rows, sweeps, out)
    sweep_md = [f"\n### Guidance sweep: {name}\n\n" + _table({f"w={w:g}": m for w, m in sorted(by_w.items())})
                for name, by_w in sweeps.items() if by_w]
    text = ["# DC-LDM Table 1 in miniature", "", f"Regenerate: `{args.command}`", "",
            "Lower FD / FAD / KL is better; relevance = corpus-classifier accuracy on the generated clips.", "",
            _table(rows), "", *_training_section(Path(args.runs) if args.runs else None, list(rows)),
            "## The paper's directions at this scale", "", *_directions(rows), *sweep_md, "",
            "![systems](table1.png)", "", "![guidance](guidance.png)", ""]
    (out / "table1.md").write_text("\n".join(text))
    print(f"wrote {out / 'table1.md'}")
    return 0


def _training_section(runs: Path | None, systems: list[str]) -> list[str]:
    """``## Training``: each system's steps, initialisation, acoustic input and last logged loss (its run.json and
    metrics.jsonl under ``runs/<system>/run``)."""
    if runs is None:
        return []
    lines = ["## Training", "", "| system | steps x batch | initialised from | acoustic input | last loss |",
             "|---|---|---|---|---|"]
    for name in systems:
        run = runs / name / "run"
        if not (run / "run.json").is_file() or not (run / "metrics.jsonl").is_file():
            continue
        info = json.loads((run / "run.json").read_text())
        task, train = info.get("task_config", {}), info.get("train_config", {})
        last = json.loads((run / "metrics.jsonl").read_text().strip().splitlines()[-1])
        steps = max(int(p.name.split("-")[-1]) for p in (run / "checkpoints").glob("step-*"))
        acoustic = task.get("acoustic", {}).get("kind", "-") if "placements" in task else "-"
        where = ", ".join(task.get("placements") or []) or task.get("conditioning", "text")
        lines.append(f"| {name} | {steps} x {train.get('batch_size')} | {task.get('init_from') or 'scratch'} | "
                     f"{acoustic} ({where}) | {last.get('loss/diffusion', float('nan')):.4f} |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    """Parse the sub-command and run it."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("caches", help="latent cache + training tokens (takes sara train dcldm flags)")
    r = sub.add_parser("reference")
    r.add_argument("--manifest", required=True)
    r.add_argument("--classifier", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--split", default="test")
    r.add_argument("--per-class", type=int, default=3)
    g = sub.add_parser("generate")
    for name in ("--model", "--reference", "--out", "--classifier"):
        g.add_argument(name, required=True)
    g.add_argument("--guidance", type=float, default=4.0)
    g.add_argument("--steps", type=int, default=50)
    g.add_argument("--duration", type=float, default=4.0)
    g.add_argument("--sampler", default="dpmsolver++")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--batch-size", type=int, default=4, help="captions per generation call")
    b = sub.add_parser("best")
    b.add_argument("--results", required=True)
    b.add_argument("--systems", nargs="+", required=True)
    o = sub.add_parser("report")
    o.add_argument("--results", required=True)
    o.add_argument("--out", required=True)
    o.add_argument("--sweep", nargs="*", default=None)
    o.add_argument("--command", default="bash recipes/dcldm_table1.sh")
    o.add_argument("--runs", default=None, help="the systems' run folders (for the training table)")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["caches"]:
        return cmd_caches(argv[1:])
    args = p.parse_args(argv)
    return {"reference": cmd_reference, "generate": cmd_generate, "best": cmd_best, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    from sara.cli.guard import run_guarded

    sys.exit(run_guarded("dcldm_report.py", main))
