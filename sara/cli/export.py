"""``sara export RUN_DIR OUT_DIR``: training checkpoint -> release directory (EMA weights by default)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a release directory from a training run")
    p.add_argument("run_dir", help="a --run-dir of `sara train`")
    p.add_argument("out_dir", help="release directory to write (config.json + model.safetensors)")
    p.add_argument("--no-ema", action="store_true", help="export the raw weights instead of the EMA")
    p.add_argument("--half", action="store_true",
                   help="store the weights in float16 (half the size; loaded back as float32; tensors float16 "
                        "cannot hold are kept in float32)")
    p.add_argument("--default-cfg", type=float, default=None,
                   help="text-to-audio runs: the guidance scale `sara generate` uses by default (e.g. the best on "
                        "the validation split; default 3.5, the official value)")
    p.add_argument("--vocoder", default=None,
                   help="text-to-audio runs: bundle this vocoder release instead of the run's --vocoder (the DiT "
                        "only depends on the encoder's latent space)")
    from sara.cli._ldm_generate import add_ldm_export_arguments

    add_ldm_export_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export, then (``--half``) store the written release's weights in float16."""
    code = _export(args)
    if code == 0 and args.half:
        from sara.half import store_half

        rep = store_half(args.out_dir)
        kept = f"; kept in float32: {', '.join(rep.kept_float32)}" if rep.kept_float32 else ""
        print(f"float16 weights: {rep.files} files, {rep.bytes_before / 2**20:.1f} -> "
              f"{rep.bytes_after / 2**20:.1f} MiB{kept}")
    return code


def _export(args: argparse.Namespace) -> int:
    import math

    from sara.errors import ConfigError
    from sara.train import export_run

    if args.default_cfg is not None and not (math.isfinite(args.default_cfg) and args.default_cfg >= 0):
        raise ConfigError(f"--default-cfg must be a finite number >= 0, got {args.default_cfg}")
    from sara.cli._output import check_output_dir

    check_output_dir(args.out_dir, "OUT_DIR")
    if args.vae is not None:  # assemble a LatentDiffusion release from a UNet and separate VAE / HiFi-GAN
        from sara.cli._ldm_generate import run_ldm_export

        return run_ldm_export(args)
    if _run_task(Path(args.run_dir)) in ("ldm", "dcldm"):
        return _export_ldm_run(args)
    overrides = {}
    if args.vocoder is not None:
        if not (Path(args.vocoder) / "config.json").is_file():
            raise ConfigError(f"--vocoder {args.vocoder}: not a release directory (no config.json)")
        overrides["vocoder"] = str(args.vocoder)
    if args.default_cfg is not None or overrides:
        _check_t2a_run(Path(args.run_dir), "--default-cfg" if args.default_cfg is not None else "--vocoder")
    sampling = {"steps": args.default_steps, "solver": args.default_sampler}
    if any(v is not None for v in sampling.values()):
        from sara.pipelines.sampling import SamplerSettings

        _check_t2a_run(Path(args.run_dir), "--default-steps / --default-sampler")
        SamplerSettings().updated(**sampling)  # ConfigError (one line) before anything is written
    out = export_run(args.run_dir, args.out_dir, use_ema=not args.no_ema, overrides=overrides)
    from sara.pipelines.text_to_audio import TextToAudio

    if args.default_cfg is not None:
        TextToAudio.set_default_guidance(out, args.default_cfg)
    if any(v is not None for v in sampling.values()):
        TextToAudio.set_default_sampling(out, **sampling)
    print(f"exported {out}")
    return 0


def _run_task(run_dir: Path) -> str | None:
    """The ``task`` recorded in ``run_dir/run.json`` (None when unreadable: export_run then reports it)."""
    import json

    try:
        task = json.loads((run_dir / "run.json").read_text()).get("task")
    except (OSError, ValueError, AttributeError):
        return None
    return task if isinstance(task, str) else None


def _export_ldm_run(args: argparse.Namespace) -> int:
    """An ``ldm`` or ``dcldm`` run: its LatentDiffusion / DCLDM release (with the VAE / vocoder the run names), then the ``--default-*``
    flags (``--default-cfg``, ``--default-steps``, ``--default-duration``, ``--default-sampler``) stored in it."""
    from sara.cli._ldm_generate import apply_ldm_defaults
    from sara.train import export_run

    overrides = {} if args.vocoder is None else {"vocoder": str(args.vocoder)}
    out = export_run(args.run_dir, args.out_dir, use_ema=not args.no_ema, overrides=overrides)
    apply_ldm_defaults(args, out)
    print(f"exported {out}")
    return 0


def _check_t2a_run(run_dir: Path, flag: str) -> None:
    """Raise ConfigError unless ``run_dir`` is a text-to-audio training run (checked before writing anything)."""
    import json

    from sara.errors import ConfigError

    try:
        task = json.loads((run_dir / "run.json").read_text()).get("task")
    except (OSError, ValueError):
        return  # export_run reports a missing or broken run itself
    if task != "t2a":
        raise ConfigError(f"{flag} applies to text-to-audio runs; {run_dir} is a {task!r} run")

