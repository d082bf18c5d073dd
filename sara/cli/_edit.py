"""Shared parts of ``sara edit`` / ``sara inpaint`` / ``sara extend``: options, checks, model and audio loading.

Everything a user can get wrong is checked before the model loads (one line, exit status 2): the output
path, the input file's existence and header, numeric ranges.  The output is written atomically only after
the whole clip is generated, so a failure never leaves a partial file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sara.cli._args import float_range, int_range

__all__ = ["add_sampling_arguments", "check_input", "load_edit_pipeline", "read_audio", "sampling_kwargs", "write_result"]

MAX_STEPS = 10_000
SARA_KINDS = ("sara-t2a", "sara-official")


def add_sampling_arguments(p: argparse.ArgumentParser) -> None:
    """``IN -o OUT`` and the DiT / vocoder / window options every editing command takes."""
    p.add_argument("input", help="input audio file (wav, flac, ogg, mp3, ...)")
    p.add_argument("-o", "--output", required=True, help="output audio file (.wav, .flac, ...)")
    p.add_argument("--model", default=None, help="SARA release or official directory (default: the bundled sara-demo)")
    p.add_argument("--steps", type=int_range(1, MAX_STEPS), default=None,
                   help="DiT steps at full strength (default: the model's, 100 for the official models)")
    p.add_argument("--cfg", type=float_range(0.0, 100.0), default=None, help="guidance scale (default: the model's)")
    p.add_argument("--vocoder-steps", type=int_range(1, MAX_STEPS), default=None,
                   help="vocoder steps (default: the model's)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--negative-prompt", default=None, help="caption for the unconditional branch")
    p.add_argument("--window", type=float_range(0.0, 600.0, low_open=True), default=None,
                   help="seconds per DiT window (default: the model's default duration)")
    p.add_argument("--overlap", type=float_range(0.0, 60.0), default=None,
                   help="seconds each window re-reads from the previous one (default 1, at most a quarter window)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    from sara.cli._runtime import add_runtime_arguments
    from sara.cli._sampler import add_sampler_arguments

    add_sampler_arguments(p)
    add_runtime_arguments(p)


def check_input(args: argparse.Namespace, command: str) -> float:
    """Check ``-o``, the prompts and the input file before any model loads; the input's duration in seconds."""
    import soundfile as sf

    from sara.audio.io import WRITE_FORMATS
    from sara.cli._output import check_output_file
    from sara.errors import ConfigError

    check_output_file(args.output, suffixes=tuple(WRITE_FORMATS))
    for flag in ("prompt", "negative_prompt"):
        value = getattr(args, flag, None)
        if value is not None and not value.strip():
            raise ConfigError(f"--{flag.replace('_', '-')} is empty")
    path = Path(args.input)
    if not path.is_file():
        raise ConfigError(f"{path}: no such input file")
    if path.resolve() == Path(args.output).resolve():
        raise ConfigError(f"-o {args.output}: the output must not overwrite the input")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError):
        raise ConfigError(f"{path}: not a readable audio file") from None
    if not info.frames or not info.samplerate:
        raise ConfigError(f"{path}: the audio is empty")
    return info.frames / info.samplerate


def load_edit_pipeline(args: argparse.Namespace, command: str):  # noqa: ANN201 - TextToAudio
    """The SARA pipeline of ``--model``; one-line ConfigError for other systems."""
    from sara.cli.generate import load_pipeline
    from sara.errors import ConfigError

    if args.model is not None and Path(args.model).is_dir():
        from sara.pipelines.detect import detect_model_kind

        kind = detect_model_kind(args.model)
        if kind not in SARA_KINDS:
            raise ConfigError(f"sara {command} needs a SARA (semantic-latent) model; {args.model} is a {kind} model")
    return load_pipeline(args)


def read_audio(args: argparse.Namespace):  # noqa: ANN201 - (Tensor [C, T], int)
    """The input clip (AudioError on unreadable / non-finite content)."""
    from sara.audio.io import load_audio

    return load_audio(args.input)


def sampling_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """The keyword arguments every editing method takes, from the parsed options."""
    return {"steps": args.steps, "guidance_scale": args.cfg, "seed": args.seed,
            "negative_prompt": args.negative_prompt, "vocoder_steps": args.vocoder_steps, "window": args.window,
            "overlap": args.overlap}


def write_result(args: argparse.Namespace, wav, sample_rate: int) -> int:  # noqa: ANN001 - Tensor [1, S]
    """Write ``wav`` atomically to ``-o`` and report it; exit status 0."""
    from sara.audio.io import save_audio

    out = save_audio(args.output, wav[0].cpu(), sample_rate)
    seconds = wav.shape[-1] / sample_rate
    print(f"wrote {out} ({wav.shape[-1]} samples = {seconds:.3f} s at {sample_rate} Hz)")
    return 0

