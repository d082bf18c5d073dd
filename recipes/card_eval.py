"""The evaluation blocks of the sara-demo model card, each built from the files an evaluation recipe wrote in an
eval dir (an empty string when they are absent), in card order (:data:`EVAL_BLOCKS`).  ``recipes/model_cards.py``
assembles and updates the card from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sara.errors import SaraError
from sara.eval.coarse import load_coarse_groups


def scorer_name(classifier: str) -> str:
    """A report's ``classifier`` field as the card names it: ``dir`` or, for an ensemble, ``a + b + c``."""
    return " + ".join(Path(p).name for p in classifier.split(" + "))


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
        clf = scorer_name(r["classifier"]) if "classifier" in r else "the same classifier"
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
    o, clf = e["overall"], scorer_name(e["classifier"])
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
            f"{steps}), scored by `{scorer_name(first['classifier'])}`; real {first['split']} clips score "
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
VOCODER_SELECTION_TITLE = "### Vocoder candidates on the valid split"


def _vocoder_selection_block(eval_dir: Path) -> str:
    """Vocoder candidates (``EVAL/vocoder_selection/NAME/vocoder_coarse.json`` from ``recipes/everyday_relevance.py
    --vocoder-reconstruction --split valid``): fine and coarse accuracy of their reconstructions of the same real
    clips, the coarse ratio to the real clips, and a paired sign test of each against the first."""
    found = sorted((eval_dir / "vocoder_selection").glob("*/vocoder_coarse.json"))
    if not found:
        return ""
    rows = [(f.parent.name, json.loads(f.read_text())) for f in found]
    (base, first), groups = rows[0], load_coarse_groups()
    text = (f"{VOCODER_SELECTION_TITLE}\n\n`recipes/everyday_relevance.py --vocoder-reconstruction --split "
            f"{first['split']} --every 1`: reconstructions ({first['vocoder_steps']} steps) of {first['clips']} real "
            f"{first['split']} clips, scored by `{scorer_name(first['classifier'])}`; the clips themselves score "
            f"{first['fine']['real_accuracy']:.3f} fine / {first['coarse']['real_accuracy']:.3f} coarse. The paired "
            f"columns count the clips only `{base}` / only this candidate reconstructs recognisably (p: one-sided "
            "sign test that the candidate is better):\n\n"
            "| vocoder | fine | coarse | coarse ratio | fine paired (p) | coarse paired (p) |\n|---|---|---|---|---|---|\n")
    for name, r in rows:
        if [x["caption"] for x in r["items"]] != [x["caption"] for x in first["items"]]:
            raise SaraError(f"vocoder candidate {name} reconstructed other clips than {base}: no paired test")
        paired = [_sign_test(_recon_hits(first, lvl, groups), _recon_hits(r, lvl, groups)) if r is not first else "-"
                  for lvl in ("fine", "coarse")]
        text += (f"| {name} | {r['fine']['reconstructed_accuracy']:.3f} | {r['coarse']['reconstructed_accuracy']:.3f} "
                 f"| {r['ratio']['coarse']:.3f} | {paired[0]} | {paired[1]} |\n")
    note = eval_dir / "vocoder_selection" / "README.md"
    return text + "\n" + (note.read_text().strip() + "\n\n" if note.is_file() else "")


def _recon_hits(result: dict[str, Any], level: str, groups: dict[str, str]) -> list[bool]:
    """Per clip of a vocoder-reconstruction result: is the reconstruction labelled right at ``level``?"""
    if level == "fine":
        return [x["reconstructed"] == x["class"] for x in result["items"]]
    return [x["reconstructed_group"] == groups.get(x["class"]) for x in result["items"]]


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
    (VOCODER_SELECTION_TITLE, _vocoder_selection_block),
)
EVAL_END = "Reproduce the evaluation with"
