"""``sara generate``: text -> audio with any sara system (SARA at 24 kHz; Tango / sara LDM, DC-LDM, AudioGen at 16 kHz).

``--model`` may be a SARA release or official SemanticVocoder directory (the default is the bundled demo), a
Tango directory or sara LatentDiffusion release, a DC-LDM release, or an audiocraft / sara AudioGen directory:
the layout is detected by :func:`sara.pipelines.detect.detect_model_kind`.

Single prompt::

    sara generate "a dog barks in the rain" -o dog.wav [--duration 10 --steps 100 --cfg 3.5 --seed 0]

Batch mode over the official ``caption.jsonl`` format (``{"audio_id": "Y...wav", "caption": "..."}``)::

    sara generate --captions caption.jsonl --output-dir outputs

writes ``outputs/guidance_scale-{g}_dit_steps-{n}_vocoder_steps-{v}_latent_shape-{D}-{T}/<name>.wav`` with the
official file names (made safe: control characters and separators replaced, at most 200 bytes; captions
that map to the same name get ``-2``, ``-3``... and a note on stderr), shows a progress bar, and skips files
that already exist (resumable).  Outputs are written atomically; ``-o`` must be a new or regular file with
a supported audio extension (``.wav``, ``.flac``, ``.ogg``, ``.mp3``, ...), checked before the model loads.  As in the
official script the seed is set once before the loop, so an uninterrupted run reproduces its noise stream.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

from sara.cli._args import float_range, int_range

# Sanity bounds checked before any model is loaded; the model's own maximum is checked afterwards.
MAX_DURATION_S = 600.0  # other systems (one pass)
MAX_LONG_DURATION_S = 3600.0  # SARA long-form (windowed) generation, = sara.edit.MAX_LONG_SECONDS
MAX_STEPS = 10_000
DEFAULT_DIT_STEPS = 100  # SARA models: DiT sampling steps when --steps is not given


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``generate`` command."""
    p = sub.add_parser("generate", help="generate audio from text")
    p.add_argument("prompt", nargs="?", default=None, help="text prompt (omit with --captions)")
    p.add_argument("-o", "--output", default=None, help="output .wav (single prompt)")
    p.add_argument("--captions", default=None, help="official caption.jsonl for batch mode")
    p.add_argument("--output-dir", default="outputs", help="batch-mode output directory (default: outputs)")
    p.add_argument("--model", default=None,
                   help="SARA release or official SemanticVocoder directory, Tango directory or sara LDM release, "
                        "DC-LDM release, or audiocraft / sara AudioGen directory (default: the bundled sara-demo)")
    p.add_argument("--duration", type=float_range(0.0, MAX_LONG_DURATION_S, low_open=True), default=None,
                   help="seconds, written exactly (default: the model's, 10 s for the official models); SARA "
                        f"models generate longer than their window (up to {MAX_LONG_DURATION_S:g} s) window by window")
    p.add_argument("--prompts-at", default=None, metavar="SCHEDULE",
                   help='SARA long-form prompt schedule instead of a prompt, e.g. "0:rain;60:thunder storm"')
    p.add_argument("--steps", type=int_range(1, MAX_STEPS), default=None,
                   help="sampling steps (default: the model's; for SARA models the release's stored steps, else 100; 200 DDPM steps for "
                        "Tango)")
    p.add_argument("--cfg", type=float_range(0.0, 100.0), default=None,
                   help="classifier-free guidance scale, on iff > 1 (default: the model's, 3.5 for official models)")
    p.add_argument("--vocoder-steps", type=int_range(1, MAX_STEPS), default=None,
                   help="vocoder Euler steps (default: the vocoder's own, 200 for the paper's)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--negative-prompt", default=None, help="caption for the unconditional branch")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    from sara.cli._dcldm_generate import add_dcldm_generate_arguments
    from sara.cli._ldm_generate import add_ldm_generate_arguments
    from sara.cli._runtime import add_runtime_arguments
    from sara.cli._sampler import add_sampler_arguments

    add_ldm_generate_arguments(p)
    add_dcldm_generate_arguments(p)
    add_sampler_arguments(p)
    add_runtime_arguments(p)
    p.set_defaults(func=run)


def default_model_dir() -> Path:
    """The bundled demo model directory ``sara/pretrained/sara-demo``."""
    return Path(__file__).resolve().parent.parent / "pretrained" / "sara-demo"


def validate_args(args: argparse.Namespace) -> None:
    """Reject bad arguments with one line (:class:`~sara.errors.ConfigError`) before loading anything."""
    from sara.errors import ConfigError

    if args.captions is None:
        _check_prompt_or_schedule(args)
        if args.output is None:
            raise ConfigError("give an output file with -o OUT.wav")
        from sara.audio.io import WRITE_FORMATS
        from sara.cli._output import check_output_file

        check_output_file(args.output, suffixes=tuple(WRITE_FORMATS))
    elif args.prompt is not None or args.prompts_at is not None:
        raise ConfigError("give either a prompt (or --prompts-at) or --captions, not both")
    else:
        from sara.cli._output import check_output_dir

        check_output_dir(args.output_dir, "--output-dir")
    if args.duration is not None and (not math.isfinite(args.duration) or args.duration <= 0
                                      or args.duration > MAX_LONG_DURATION_S):
        raise ConfigError(f"--duration must be in (0, {MAX_LONG_DURATION_S:g}] seconds, got {args.duration:g}")
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {args.steps}")
    if args.vocoder_steps is not None and args.vocoder_steps < 1:
        raise ConfigError(f"--vocoder-steps must be >= 1, got {args.vocoder_steps}")
    if args.cfg is not None and not math.isfinite(args.cfg):
        raise ConfigError(f"--cfg must be a finite number, got {args.cfg}")
    if args.negative_prompt is not None and not args.negative_prompt.strip():
        raise ConfigError("--negative-prompt is empty")


def _check_prompt_or_schedule(args: argparse.Namespace) -> None:
    """A non-empty prompt, or a valid ``--prompts-at`` schedule instead of it (ConfigError otherwise)."""
    from sara.errors import ConfigError

    if args.prompts_at is None:
        if args.prompt is None or not args.prompt.strip():
            raise ConfigError("the prompt is empty (give a text prompt or --captions FILE)")
        return
    if args.prompt is not None:
        raise ConfigError("give either a prompt or --prompts-at, not both")
    from sara.edit.prompts import PromptSchedule

    PromptSchedule.parse(args.prompts_at)


def official_file_name(audio_id: str, caption: str) -> str:
    """Official output name: ``audio_id`` minus its last 4 chars + "_" + caption (spaces -> "_"),
    ``\\ / * ? : " < > |`` -> "_", truncated to 100 characters, then ".wav"; then made safe by
    :func:`sara.cli._output.safe_file_name` (control characters, leading dots, at most 200 bytes)."""
    from sara.cli._output import safe_file_name

    name = f"{audio_id[:-4]}_{caption.replace(' ', '_')}"
    return safe_file_name(re.sub(r'[\\/*?:"<>|]', "_", name)[:100])


def batch_subdir(guidance_scale: float, steps: int, vocoder_steps: int, latent_dim: int, frames: int,
                 solvers: str = "") -> str:
    """Official output sub-directory name for one setting (``solvers``: a suffix naming non-official
    solvers, e.g. ``"_solver-heun"``; empty for the official Euler sampler)."""
    return (f"guidance_scale-{guidance_scale}_dit_steps-{steps}_vocoder_steps-{vocoder_steps}"
            f"_latent_shape-{latent_dim}-{frames}{solvers}")


def solver_suffix(sampling) -> str:  # noqa: ANN001 - SamplerSettings
    """``_solver-{dit}`` / ``_vocoder-{solver}-{grid}`` for non-official settings ("" when all official)."""
    dit = "" if sampling.solver == "euler" else f"_solver-{sampling.solver}"
    official_vocoder = (sampling.vocoder_solver, sampling.vocoder_grid) == ("euler", "uniform")
    return dit + ("" if official_vocoder else f"_vocoder-{sampling.vocoder_solver}-{sampling.vocoder_grid}")


def read_captions(path: str) -> list[tuple[str, str]]:
    """``(audio_id, caption)`` pairs of a caption.jsonl; ConfigError on malformed lines."""
    import json

    from sara.errors import ConfigError

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such captions file")
    items = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            audio_id, caption = str(obj["audio_id"]), str(obj["caption"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ConfigError(f"{p}:{n}: expected {{\"audio_id\": ..., \"caption\": ...}}") from None
        if not caption.strip():
            raise ConfigError(f"{p}:{n}: empty caption")
        items.append((audio_id, caption))
    if not items:
        raise ConfigError(f"{p}: no captions")
    return items


def load_pipeline(args: argparse.Namespace):  # noqa: ANN201 - TextToAudio
    """The pipeline from ``--model`` (or the bundled demo model)."""
    from sara.errors import CheckpointError, ConfigError
    from sara.pipelines.text_to_audio import TextToAudio

    path = Path(args.model) if args.model is not None else default_model_dir()
    if not path.is_dir() and args.model is not None:
        raise ConfigError(f"--model {path}: no such model directory")
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such model directory (the bundled demo model is not installed; "
                              "pass --model DIR)")
    from sara.cli._runtime import apply_runtime
    from sara.cli._sampler import apply_sampler

    return apply_sampler(apply_runtime(TextToAudio.from_pretrained(path, device=args.device), args), args)


def run(args: argparse.Namespace) -> int:
    """Generate one file or a whole captions file with whichever system ``--model`` holds; the exit status."""
    validate_args(args)
    other = _run_other_system(args)
    if other is not None:
        return other
    from sara.errors import ConfigError

    for flag, attr in (("--sampler", "sampler"), ("--acoustic-from", "acoustic_from")):
        if getattr(args, attr, None) is not None:
            raise ConfigError(f"{flag} does not apply to SARA (semantic-latent) models")
    pipe = load_pipeline(args)
    if args.steps is None:
        args.steps = pipe.sampling.steps
    if args.vocoder_steps is None and pipe.vocoder is not None:
        args.vocoder_steps = pipe.vocoder_steps()
    if args.duration is None:
        args.duration = pipe.default_duration
    if args.cfg is None:
        args.cfg = pipe.default_guidance
    if args.captions is not None:
        return _run_batch(args, pipe, pipe.num_frames(args.duration))  # checks the model's maximum duration
    return _run_single(args, pipe)


def _run_single(args: argparse.Namespace, pipe) -> int:  # noqa: ANN001 - TextToAudio
    """One SARA file of exactly ``--duration`` seconds (window by window when longer than the model's window)."""
    from sara.audio.io import save_audio
    from sara.edit.prompts import PromptSchedule

    prompt = PromptSchedule.parse(args.prompts_at) if args.prompts_at is not None else args.prompt
    wav = pipe.generate(prompt, args.duration, steps=args.steps, guidance_scale=args.cfg,
                        vocoder_steps=args.vocoder_steps, seed=args.seed, negative_prompt=args.negative_prompt,
                        progress=sys.stderr.isatty())
    out = save_audio(args.output, wav[0].cpu(), pipe.sample_rate)
    print(f"wrote {out} ({wav.shape[-1] / pipe.sample_rate:.2f} s at {pipe.sample_rate} Hz)")
    return 0


def _run_other_system(args: argparse.Namespace) -> int | None:
    """Run a latent-diffusion (Tango / sara LDM), DC-LDM or AudioGen ``--model``; None for SARA models."""
    if args.model is None or not Path(args.model).is_dir():
        return None
    from sara.cli._runtime import apply_runtime
    from sara.pipelines.detect import detect_model_kind

    kind = detect_model_kind(args.model)
    if kind not in ("sara-t2a", "sara-official"):
        from sara.cli._sampler import refuse_sampler

        _refuse_long_form(args, kind)
        refuse_sampler(args, kind)
    if kind == "sara-dcldm":
        from sara.cli._dcldm_generate import load_dcldm, run_dcldm

        return run_dcldm(args, apply_runtime(load_dcldm(args.model, device=args.device), args))
    if kind in ("tango", "sara-ldm"):
        from sara.cli._ldm_generate import run_latent_diffusion
        from sara.pipelines.latent_diffusion import LatentDiffusion

        pipe = LatentDiffusion.from_pretrained(args.model, device=args.device)
        return run_latent_diffusion(args, apply_runtime(pipe, args))
    if kind in ("audiogen", "sara-audiogen"):
        return _run_audiogen(args)
    return None


def _refuse_long_form(args: argparse.Namespace, kind: str) -> None:
    """Long-form options are SARA-only: one-line ConfigError for the other systems."""
    from sara.errors import ConfigError

    if args.prompts_at is not None:
        raise ConfigError(f"--prompts-at needs a SARA model ({args.model} is a {kind} model)")
    if args.duration is not None and args.duration > MAX_DURATION_S:
        raise ConfigError(f"--duration over {MAX_DURATION_S:g} s (long-form) needs a SARA model "
                          f"({args.model} is a {kind} model)")


def _run_audiogen(args: argparse.Namespace) -> int:
    """AudioGen: rejects the options it does not read, then :func:`sara.audiogen.cli.run_generate`."""
    from sara.audiogen.cli import run_generate
    from sara.errors import ConfigError

    for flag, attr in (("--steps", "steps"), ("--vocoder-steps", "vocoder_steps"),
                       ("--negative-prompt", "negative_prompt"), ("--sampler", "sampler"),
                       ("--acoustic-from", "acoustic_from")):
        if getattr(args, attr, None) is not None:
            raise ConfigError(f"{flag} does not apply to AudioGen models")
    return run_generate(args)


def _run_batch(args: argparse.Namespace, pipe, frames: int) -> int:  # noqa: ANN001 - TextToAudio
    """Official-style batch generation; existing outputs are skipped."""
    import torch
    from tqdm.auto import tqdm

    from sara.audio.io import save_audio
    from sara.cli._output import UniqueNames

    items = read_captions(args.captions)
    sub = batch_subdir(args.cfg, args.steps, args.vocoder_steps, pipe.dit.config.latent_dim, frames,
                       solver_suffix(pipe.sampling))
    out_dir = Path(args.output_dir) / sub
    torch.manual_seed(args.seed)  # once, like the official script
    written = skipped = 0
    names = UniqueNames("generate")
    for n, (audio_id, caption) in enumerate(tqdm(items, desc="generate", unit="file"), 1):
        path = out_dir / names.claim(official_file_name(audio_id, caption), f"line {n}")
        if path.exists():
            skipped += 1
            continue
        wav = pipe([caption], duration=args.duration, steps=args.steps, guidance_scale=args.cfg,
                   vocoder_steps=args.vocoder_steps, negative_prompt=args.negative_prompt)
        save_audio(path, wav[0].cpu(), pipe.sample_rate)
        written += 1
    print(f"{out_dir}: wrote {written} files, skipped {skipped} existing")
    return 0
