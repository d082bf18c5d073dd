"""The AudioGen branch of ``sara generate`` (``--model`` an audiocraft AudioGen directory or a sara AudioGen
release): the generate command detects the directory with :func:`is_audiogen_dir` and hands its parsed
arguments to :func:`run_generate`.  ``--cfg`` is the guidance coefficient (default the model's, 3), ``--duration``
the length (default 10 s), ``--seed`` seeds the sampler (top-k 250); diffusion-only flags are ignored.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sara.audiogen.model import AudioGen

__all__ = ["is_audiogen_dir", "run_generate"]

DEFAULT_DURATION_S = 10.0


def is_audiogen_dir(path: str | os.PathLike[str]) -> bool:
    """True for an audiocraft AudioGen directory (``state_dict.bin``) or a sara release of class AudioGen."""
    p = Path(path)
    if (p / "state_dict.bin").is_file():
        return True
    try:
        return json.loads((p / "config.json").read_text()).get("class") == "AudioGen"
    except (OSError, ValueError, AttributeError):
        return False


def run_generate(args: argparse.Namespace) -> int:
    """``sara generate`` with an AudioGen model: one prompt to ``-o``, or ``--captions`` to ``--output-dir``."""
    from sara.audio.io import save_audio
    from sara.audiogen.model import AudioGen
    from sara.cli._runtime import apply_runtime

    ag = apply_runtime(AudioGen.from_pretrained(args.model, map_location=args.device), args)
    duration = DEFAULT_DURATION_S if args.duration is None else float(args.duration)
    cfg = ag.config.cfg_coef if args.cfg is None else float(args.cfg)
    if args.captions is None:
        wav = ag([args.prompt], duration=duration, cfg_coef=cfg, seed=args.seed)
        out = save_audio(args.output, wav[0].cpu(), ag.sample_rate)
        print(f"wrote {out} ({wav.shape[-1] / ag.sample_rate:.2f} s at {ag.sample_rate} Hz)")
        return 0
    return _run_batch(args, ag, duration, cfg)


def _run_batch(args: argparse.Namespace, ag: AudioGen, duration: float, cfg: float) -> int:
    """Official-style file names under ``--output-dir``; existing files are skipped (resumable)."""
    from tqdm.auto import tqdm

    from sara.audio.io import save_audio
    from sara.cli.generate import official_file_name, read_captions

    out_dir = Path(args.output_dir) / f"audiogen_cfg-{cfg:g}_duration-{duration:g}"
    written = skipped = 0
    for i, (audio_id, caption) in enumerate(tqdm(read_captions(args.captions), desc="generate", unit="file")):
        path = out_dir / official_file_name(audio_id, caption)
        if path.exists():
            skipped += 1
            continue
        wav = ag([caption], duration=duration, cfg_coef=cfg, seed=args.seed + i)  # per-file seed: resumable
        save_audio(path, wav[0].cpu(), ag.sample_rate)
        written += 1
    print(f"{out_dir}: wrote {written} files, skipped {skipped} existing")
    return 0
