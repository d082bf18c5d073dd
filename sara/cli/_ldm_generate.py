"""The latent-diffusion branch of ``sara generate`` and the LDM part of ``sara export``.

``sara generate --model <Tango directory or LatentDiffusion release> "a dog barks" -o dog.wav`` calls
:func:`run_latent_diffusion` with the parsed arguments; options left unset take the model's defaults (Tango:
10.24 s, 200 DDPM steps, guidance 3).  Batch mode (``--captions caption.jsonl --output-dir DIR``) writes
``DIR/guidance_scale-{g}_steps-{n}_sampler-{s}_duration-{d}/<official file name>.wav``, skips existing files and
seeds file ``i`` of the captions file with ``seed + i``, so an interrupted run resumes with identical audio.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sara.errors import ConfigError

__all__ = ["add_ldm_export_arguments", "add_ldm_generate_arguments", "apply_ldm_defaults", "export_ldm_release",
           "ldm_settings", "run_latent_diffusion", "run_ldm_export"]


def add_ldm_generate_arguments(p: argparse.ArgumentParser) -> None:
    """The ``sara generate`` options only latent-diffusion models read (``--sampler``)."""
    from sara.ldm.schedulers import SAMPLERS

    p.add_argument("--sampler", choices=SAMPLERS, default=None,
                   help="latent-diffusion models: the sampler (default: the model's, ddpm for Tango)")


def ldm_settings(args: argparse.Namespace, pipe: Any) -> dict[str, Any]:
    """Generation keyword arguments from ``args`` with the model's defaults for unset options.

    Reads ``duration``, ``steps``, ``cfg``, ``seed`` and the optional ``sampler``; rejects options that only
    apply to SARA models (``--vocoder-steps``, ``--negative-prompt``) with a one-line ConfigError.
    """
    from sara.pipelines.latent_diffusion import check_duration, check_guidance, check_sampler, check_steps

    for flag, attr in (("--vocoder-steps", "vocoder_steps"), ("--negative-prompt", "negative_prompt")):
        if getattr(args, attr, None) is not None:
            raise ConfigError(f"{flag} does not apply to latent-diffusion models")
    d = pipe.defaults
    return {"duration": check_duration(_pick(args, "duration", d.duration)),
            "steps": check_steps(_pick(args, "steps", d.steps)),
            "guidance_scale": check_guidance(_pick(args, "cfg", d.guidance_scale)),
            "sampler": check_sampler(_pick(args, "sampler", d.sampler)), "seed": getattr(args, "seed", None)}


def _pick(args: argparse.Namespace, name: str, default: Any) -> Any:
    """``args.<name>`` unless unset (missing or None: ``--cfg 0`` stays 0)."""
    value = getattr(args, name, None)
    return default if value is None else value


def run_latent_diffusion(args: argparse.Namespace, pipe: Any) -> int:
    """Generate ``args.prompt`` into ``args.output`` (or every caption of ``args.captions``) as 16 kHz wav.

    Args:
        args: ``sara generate``'s namespace (``prompt``, ``output``, ``captions``, ``output_dir``, ``duration``,
            ``steps``, ``cfg``, ``seed``, optional ``sampler``).
        pipe: a :class:`~sara.pipelines.latent_diffusion.LatentDiffusion`.

    Returns:
        The exit status (0).
    """
    from sara.audio.io import save_audio

    if getattr(args, "acoustic_from", None) is not None:
        raise ConfigError("--acoustic-from applies to DC-LDM models only")
    settings = ldm_settings(args, pipe)
    source = getattr(pipe, "unet_config_source", None)
    if source is not None and not source.endswith(".json"):
        print(f"note: UNet config from {source}", file=sys.stderr)
    if getattr(args, "captions", None) is not None:
        return _run_batch(args, pipe, settings)
    if not args.output:
        raise ConfigError("give an output file with -o OUT.wav")
    wav = pipe([args.prompt], progress=sys.stderr.isatty(), **settings)
    out = save_audio(args.output, wav[0].cpu(), pipe.sample_rate)
    print(f"wrote {out} ({wav.shape[-1] / pipe.sample_rate:.2f} s at {pipe.sample_rate} Hz)")
    return 0


def batch_subdir(settings: dict[str, Any]) -> str:
    """Output sub-directory name for one setting of the batch mode."""
    return (f"guidance_scale-{settings['guidance_scale']:g}_steps-{settings['steps']}_sampler-{settings['sampler']}"
            f"_duration-{settings['duration']:g}")


def _run_batch(args: argparse.Namespace, pipe: Any, settings: dict[str, Any]) -> int:
    """Batch generation over an official ``caption.jsonl``; file ``i`` uses seed ``seed + i``; existing files
    are skipped."""
    from tqdm.auto import tqdm

    from sara.audio.io import save_audio
    from sara.cli._output import UniqueNames
    from sara.cli.generate import official_file_name, read_captions

    items = read_captions(args.captions)
    out_dir = Path(args.output_dir) / batch_subdir(settings)
    base_seed = settings.pop("seed")
    written = skipped = 0
    names = UniqueNames("generate")  # identical captions get distinct files (-2, -3, ...), stable across reruns
    for i, (audio_id, caption) in enumerate(tqdm(items, desc="generate", unit="file")):
        path = out_dir / names.claim(official_file_name(audio_id, caption), f"line {i + 1}")
        if path.exists():
            skipped += 1
            continue
        seed = None if base_seed is None else int(base_seed) + i
        save_audio(path, pipe([caption], seed=seed, **settings)[0].cpu(), pipe.sample_rate)
        written += 1
    print(f"{out_dir}: wrote {written} files, skipped {skipped} existing")
    return 0


# ------------------------------------------------------------------------------------------ export


def export_ldm_release(unet_run_or_release: str | Path, vae_release: str | Path, vocoder_release: str | Path,
                       text_spec: Any, out_dir: str | Path, defaults: dict[str, Any] | None = None) -> Path:
    """Assemble a sara LatentDiffusion release from its parts and check that it loads.

    Args:
        unet_run_or_release: anything :func:`sara.ldm.unet.load_any_unet` reads: a UNet release
            (``class == "LDMUNet"``), a LatentDiffusion release, an ``ldm`` training run (its newest checkpoint,
            EMA weights when kept) or a Tango directory.
        vae_release / vocoder_release: anything ``MelVAE`` / ``HiFiGAN.from_pretrained`` read.
        text_spec: :class:`~sara.text.factory.TextEncoderSpec` (or its dict) the UNet was trained with.
        out_dir: release directory to write.
        defaults: :class:`~sara.pipelines.latent_diffusion.LDMDefaults` fields (steps, guidance_scale, duration,
            sampler); unset ones keep Tango's.

    Returns:
        ``out_dir``.

    Raises:
        ConfigError / CheckpointError: bad defaults or parts that do not fit together (one line).
    """
    from sara.ldm.unet import load_any_unet
    from sara.mel.hifigan import HiFiGAN
    from sara.mel.vae import MelVAE
    from sara.pipelines.latent_diffusion import LatentDiffusion, LDMDefaults, ldm_text_encoder
    from sara.serialization import config_from_dict
    from sara.text.factory import TextEncoderSpec

    out = Path(out_dir)
    spec = text_spec if isinstance(text_spec, TextEncoderSpec) else config_from_dict(TextEncoderSpec, dict(text_spec))
    settings = config_from_dict(LDMDefaults, defaults or {})  # checked before anything is loaded
    unet = load_any_unet(unet_run_or_release)
    vae, vocoder = MelVAE.from_pretrained(vae_release), HiFiGAN.from_pretrained(vocoder_release)
    pipe = LatentDiffusion(unet, vae, vocoder, ldm_text_encoder(spec, Path.cwd()), defaults=settings,
                           text_encoder_spec=spec)
    pipe.save_pretrained(out)
    LatentDiffusion.from_pretrained(out)  # the written release must load
    return out



def add_ldm_export_arguments(p: argparse.ArgumentParser) -> None:
    """The ``sara export`` options that assemble a LatentDiffusion release (``--vocoder`` and ``--default-cfg``
    are the command's existing flags, shared with text-to-audio runs)."""
    p.add_argument("--vae", default=None,
                   help="latent diffusion: a mel-VAE release (with --vocoder: RUN_DIR is an ldm run, a UNet release "
                        "or a Tango directory, and OUT_DIR becomes a LatentDiffusion release)")
    p.add_argument("--text-encoder", default="minilm",
                   help="latent diffusion: 'minilm' or a FLAN-T5 directory the UNet was trained with (default minilm)")
    p.add_argument("--default-steps", type=int, default=None,
                   help="default sampler steps (latent diffusion: 200; SARA: DiT steps, 100)")
    p.add_argument("--default-duration", type=float, default=None, help="latent diffusion: default seconds (10.24)")
    p.add_argument("--default-sampler", default=None,
                   help="default sampler (latent diffusion: ddpm; SARA: the DiT solver, euler, e.g. dpm2m)")


def run_ldm_export(args: argparse.Namespace) -> int:
    """``sara export RUN_DIR OUT_DIR --vae V --vocoder H [--text-encoder T] [--default-*]``: assemble a release."""
    if args.vocoder is None:
        raise ConfigError("--vae needs --vocoder (a HiFi-GAN release or a Tango directory)")
    spec = {"kind": "minilm", "path": None} if args.text_encoder == "minilm" else {"kind": "t5",
                                                                                   "path": args.text_encoder}
    out = export_ldm_release(args.run_dir, args.vae, args.vocoder, spec, args.out_dir, _default_flags(args))
    print(f"exported {out}")
    return 0


def _default_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--default-*`` flags that were given, as :class:`LDMDefaults` fields."""
    fields = {"steps": getattr(args, "default_steps", None), "guidance_scale": getattr(args, "default_cfg", None),
              "duration": getattr(args, "default_duration", None), "sampler": getattr(args, "default_sampler", None)}
    return {k: v for k, v in fields.items() if v is not None}


def apply_ldm_defaults(args: argparse.Namespace, out_dir: str | Path) -> bool:
    """After ``export_run`` of an ``ldm`` run: store the given ``--default-*`` flags in the LatentDiffusion release
    it wrote (:func:`~sara.pipelines.latent_diffusion.set_release_defaults`).  Returns whether anything changed."""
    from sara.pipelines.latent_diffusion import set_release_defaults

    changes = _default_flags(args)
    if changes:
        set_release_defaults(out_dir, **changes)
    return bool(changes)
