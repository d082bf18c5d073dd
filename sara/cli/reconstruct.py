"""``sara reconstruct IN... -o OUT_DIR [--model PATH]``: audio -> semantic latents -> 24 kHz audio.

Each input (any format / sample rate soundfile reads; directories are searched) is encoded with the
semantic encoder and decoded with the vocoder (default: the bundled ``sara-demo`` vocoder and its encoder);
``OUT_DIR/<stem>.wav`` has the input's duration at 24 kHz.  Inputs with the same stem get ``<stem>-2.wav``,
... (noted on stderr).  A file that fails is reported in one line and skipped (exit status 1); outputs
are written atomically, so no half-written files remain.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sara.cli._args import int_range


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``reconstruct`` command."""
    p = sub.add_parser("reconstruct", help="re-synthesise audio files through the semantic latent space")
    p.add_argument("inputs", nargs="+", metavar="IN", help="audio files and/or directories")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output directory")
    p.add_argument("--model", default=None, help="vocoder release dir, official checkpoint dir, or .pt file "
                                                 "(default: the bundled sara-demo vocoder)")
    p.add_argument("--encoder", default=None, help="semantic encoder (default: bundled / next to the checkpoint)")
    p.add_argument("--steps", type=int_range(1, 10_000), default=None, help="vocoder steps (default: the model's, 200 for the paper)")
    p.add_argument("--seed", type=int, default=0, help="initial-noise seed")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    from sara.cli._runtime import add_runtime_arguments
    from sara.cli._sampler import add_sampler_arguments

    add_sampler_arguments(p, dit=False)
    add_runtime_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Reconstruct every input; 0 if all succeeded, 1 if any failed."""
    from sara.audio.io import iter_audio_files, load_audio, save_audio
    from sara.cli._output import UniqueNames, check_output_dir
    from sara.errors import ConfigError, SaraError
    from sara.vocoder import SemanticVocoder

    out_dir = check_output_dir(args.output)
    files = list(iter_audio_files(args.inputs))
    if not files:
        raise ConfigError("no audio files found in the inputs")
    from sara.cli._runtime import apply_runtime
    from sara.cli._sampler import vocoder_sampler

    voc = SemanticVocoder.from_pretrained(model_path(args.model), encoder=args.encoder, map_location=args.device)
    apply_runtime(voc, args)
    voc.get_encoder()  # fail early, in one line, when no encoder is available
    failed, names = 0, UniqueNames("reconstruct")
    for f in files:
        target = out_dir / names.claim(f"{f.stem}.wav", str(f))
        try:
            wav, sr = load_audio(f)
            out = voc.reconstruct(wav.unsqueeze(0), sr, steps=args.steps, seed=args.seed, **vocoder_sampler(args))
            save_audio(target, out[0].cpu(), voc.sample_rate)
        except SaraError as exc:
            msg = str(exc) if str(f) in str(exc) else f"{f}: {exc}"  # every report names its input
            print(f"sara reconstruct: {msg}", file=sys.stderr)
            failed += 1
    print(f"reconstructed {len(files) - failed} file(s) into {out_dir}; {failed} failed")
    return 1 if failed else 0


def model_path(model: str | None) -> Path:
    """``--model``, or the bundled demo vocoder; ConfigError when the given path does not exist."""
    from sara.errors import CheckpointError, ConfigError
    from sara.pretrained import DEFAULT_MODEL

    if model is not None:
        if not Path(model).exists():
            raise ConfigError(f"--model {model}: no such file or directory")
        return Path(model)
    path = DEFAULT_MODEL / "vocoder"
    if not path.is_dir():
        raise CheckpointError(f"{path}: the bundled vocoder is not installed; pass --model PATH")
    return path
