"""``sara decode LATENTS... -o OUT_DIR [--model PATH | --codec DIR]``: latent or token files -> audio.

Inputs are ``.safetensors`` files written by ``sara encode`` (tensor ``latents [D, N]``) or directories of
them; ``OUT_DIR/<stem>.wav`` holds ``N * 960`` samples at 24 kHz (``<stem>-2.wav``, ... for repeated stems).
The vocoder defaults to the bundled ``sara-demo`` one.  Failures are reported one line each (exit status
1); outputs are written atomically.

With ``--codec`` the inputs are EnCodec token files (tensor ``codes [K, F]``, from ``sara encode --codec`` or
the token cache) and ``OUT_DIR/<stem>.wav`` holds the original number of samples at the codec's 16 kHz (see
:mod:`sara.cli._codec_io`).  A token file without ``--codec``, or a latent file with it, is refused before
anything is loaded or written (exit status 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sara.cli._args import int_range

MAX_FRAMES = 25 * 3600  # one hour of latents at 25 Hz


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``decode`` command."""
    p = sub.add_parser("decode", help="decode semantic latents (.safetensors from `sara encode`) to audio")
    p.add_argument("inputs", nargs="+", metavar="LATENTS", help=".safetensors files and/or directories "
                                                               "(token files with --codec)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="output directory")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--model", default=None, help="vocoder release dir, official checkpoint dir, or .pt file "
                                                     "(default: the bundled sara-demo vocoder)")
    model.add_argument("--codec", default=None, metavar="DIR",
                       help="decode EnCodec token files with this codec (sara release or audiocraft "
                            "compression_state_dict.bin / its dir)")
    p.add_argument("--steps", type=int_range(1, 10_000), default=None, help="vocoder steps (default: the model's, 200 for the paper)")
    p.add_argument("--seed", type=int, default=0, help="initial-noise seed")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    from sara.cli._runtime import add_runtime_arguments
    from sara.cli._sampler import add_sampler_arguments

    add_sampler_arguments(p, dit=False)
    add_runtime_arguments(p)
    p.set_defaults(func=run)


def _latent_files(inputs: list[str]) -> list[Path]:
    """Expand directories into their ``.safetensors`` files (sorted)."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        files += sorted(p.rglob("*.safetensors")) if p.is_dir() else [p]
    return files


def read_latents(path: Path):  # noqa: ANN201 - returns a Tensor
    """``latents [D, N]`` from a latent cache file; AudioError for anything else."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from sara.errors import AudioError

    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise AudioError(f"{path}: not a readable .safetensors file ({str(exc).splitlines()[0]})") from None
    if "latents" not in tensors or tensors["latents"].dim() != 2 or tensors["latents"].shape[-1] == 0:
        raise AudioError(f"{path}: no 'latents' tensor of shape [D, N] (write it with `sara encode`)")
    if tensors["latents"].shape[-1] > MAX_FRAMES:
        raise AudioError(f"{path}: {tensors['latents'].shape[-1]} latent frames is more than an hour of audio")
    return tensors["latents"].float()


def run(args: argparse.Namespace) -> int:
    """Decode every input; 0 if all succeeded, 1 if any failed."""
    from sara.audio.io import save_audio
    from sara.cli._codec_io import check_kinds, run_decode
    from sara.cli._output import UniqueNames, check_output_dir
    from sara.cli.reconstruct import model_path
    from sara.errors import ConfigError, SaraError
    from sara.vocoder import SemanticVocoder

    out_dir = check_output_dir(args.output)
    files = _latent_files(args.inputs)
    if not files:
        raise ConfigError("no .safetensors files found in the inputs")
    check_kinds(files, codec=args.codec is not None)
    if args.codec is not None:
        from sara.cli._sampler import refuse_sampler

        refuse_sampler(args, "codec")
        return run_decode(args, files, out_dir)
    from sara.cli._runtime import apply_runtime
    from sara.cli._sampler import vocoder_sampler

    voc = apply_runtime(SemanticVocoder.from_pretrained(model_path(args.model), map_location=args.device), args)
    failed, names = 0, UniqueNames("decode")
    for f in files:
        target = out_dir / names.claim(f"{f.stem}.wav", str(f))
        try:
            wav = voc.decode(read_latents(f).unsqueeze(0), steps=args.steps, seed=args.seed, **vocoder_sampler(args))
            save_audio(target, wav[0].cpu(), voc.sample_rate)
        except SaraError as exc:
            msg = str(exc) if str(f) in str(exc) else f"{f}: {exc}"  # every report names its input
            print(f"sara decode: {msg}", file=sys.stderr)
            failed += 1
    print(f"decoded {len(files) - failed} file(s) into {out_dir}; {failed} failed")
    return 1 if failed else 0
