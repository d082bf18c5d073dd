"""The DC-LDM branch of ``sara generate``.

``sara generate --model <DCLDM release> "a dog barking" -o dog.wav`` generates text -> AudioGen tokens ->
acoustic encoding -> DC-LDM -> 16 kHz audio, with the model's defaults for unset options (10.24 s, 200 DDPM
steps, the paper's w = 4).  ``--acoustic-from FILE`` takes the acoustic condition from a reference clip's codec
tokens instead of AudioGen's LM (style transfer: the text still steers through the UNet's own cross-attention);
the default ``audiogen`` generates it from the prompt.  Batch mode (``--captions caption.jsonl --output-dir DIR``)
writes ``DIR/guidance_scale-{g}_steps-{n}_sampler-{s}_duration-{d}[_acoustic-{stem}]/<official name>.wav``, skips
existing files and seeds file ``i`` with ``seed + i`` (an interrupted run resumes with identical audio).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sara.errors import ConfigError

__all__ = ["add_dcldm_generate_arguments", "acoustic_condition", "is_dcldm_dir", "load_dcldm", "run_dcldm"]


def add_dcldm_generate_arguments(p: argparse.ArgumentParser) -> None:
    """The ``sara generate`` option only DC-LDM models read (``--acoustic-from``)."""
    p.add_argument("--acoustic-from", default=None, metavar="audiogen|FILE",
                   help="DC-LDM models: the acoustic condition from AudioGen's LM (default) or a reference audio file")


def is_dcldm_dir(path: str | Path) -> bool:
    """True when ``path/config.json`` names a DCLDM release."""
    try:
        return json.loads((Path(path) / "config.json").read_text()).get("class") == "DCLDM"
    except (OSError, ValueError, AttributeError):
        return False


def load_dcldm(path: str | Path, device: str = "cpu") -> Any:
    """:meth:`sara.dcldm.pipeline.DCLDM.from_pretrained` on ``path``."""
    from sara.dcldm.pipeline import DCLDM

    return DCLDM.from_pretrained(path, device=device)


def acoustic_condition(args: argparse.Namespace, pipe: Any) -> Any:
    """``None`` (AudioGen from the prompt) or the reference clip's acoustic ``(states, mask)``.

    Raises:
        ConfigError: ``--acoustic-from`` names no readable file.
    """
    source = getattr(args, "acoustic_from", None)
    if source is None or source == "audiogen":
        return None
    from sara.audio.io import load_audio

    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"--acoustic-from {source}: not 'audiogen' and no such audio file")
    wav, sr = load_audio(path, mono=True)
    return pipe.acoustic_from_audio(wav, sr)


def run_dcldm(args: argparse.Namespace, pipe: Any) -> int:
    """Generate ``args.prompt`` into ``args.output`` (or every caption of ``args.captions``) with a DC-LDM.

    Args:
        args: ``sara generate``'s namespace (``prompt``, ``output``, ``captions``, ``output_dir``, ``duration``,
            ``steps``, ``cfg``, ``seed``, optional ``sampler`` and ``acoustic_from``).
        pipe: a :class:`~sara.dcldm.pipeline.DCLDM`.

    Returns:
        The exit status (0).
    """
    from sara.audio.io import save_audio
    from sara.cli._ldm_generate import ldm_settings

    settings = ldm_settings(args, pipe)
    acoustic = acoustic_condition(args, pipe)
    if getattr(args, "captions", None) is not None:
        return _run_batch(args, pipe, settings, acoustic)
    if not args.output:
        raise ConfigError("give an output file with -o OUT.wav")
    wav = pipe([args.prompt], acoustic=acoustic, progress=sys.stderr.isatty(), **settings)
    out = save_audio(args.output, wav[0].cpu(), pipe.sample_rate)
    print(f"wrote {out} ({wav.shape[-1] / pipe.sample_rate:.2f} s at {pipe.sample_rate} Hz)")
    return 0


def _run_batch(args: argparse.Namespace, pipe: Any, settings: dict[str, Any], acoustic: Any) -> int:
    """Batch generation over an official ``caption.jsonl``; file ``i`` uses seed ``seed + i``."""
    from tqdm.auto import tqdm

    from sara.audio.io import save_audio
    from sara.cli._ldm_generate import batch_subdir
    from sara.cli.generate import official_file_name, read_captions

    items = read_captions(args.captions)
    sub = batch_subdir(settings)
    if acoustic is not None:
        sub += f"_acoustic-{Path(args.acoustic_from).stem}"
    out_dir = Path(args.output_dir) / sub
    base_seed = settings.pop("seed")
    written = skipped = 0
    for i, (audio_id, caption) in enumerate(tqdm(items, desc="generate", unit="file")):
        path = out_dir / official_file_name(audio_id, caption)
        if path.exists():
            skipped += 1
            continue
        seed = None if base_seed is None else int(base_seed) + i
        save_audio(path, pipe([caption], seed=seed, acoustic=acoustic, **settings)[0].cpu(), pipe.sample_rate)
        written += 1
    print(f"{out_dir}: wrote {written} files, skipped {skipped} existing")
    return 0
