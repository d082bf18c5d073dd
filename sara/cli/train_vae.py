"""Flags of ``sara train vae`` (the common loop flags come from :mod:`sara.cli.train`).

Example (CPU, small VAE on 2.56 s crops, adversarial term from step 5000, release with its scale factor)::

    sara train vae --run-dir runs/vae --data corpus/manifest.jsonl --preset small --crop-frames 256 \\
        --lr 1e-4 --disc-start 5000 --max-steps 20000 --batch-size 8 --export releases/vae-small

The defaults are AudioLDM's (lr 8e-6, disc_start 50001, disc_weight 0.5) and LDM's KL (1e-6 on the summed KL);
``--kl-reduction mean --kl-weight 1000`` is AudioLDM-training's own setting.  See :mod:`sara.mel.vae_training`.
"""

from __future__ import annotations

import argparse
from typing import Any

PRESETS = ("paper", "small", "tiny")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the VAE task's flags."""
    g = p.add_argument_group("mel VAE")
    g.add_argument("--data", nargs="+", required=True, help="manifests (.jsonl), audio directories or files")
    g.add_argument("--valid-data", nargs="*", default=[], help="validation sources (default: manifests' valid split)")
    g.add_argument("--preset", choices=PRESETS, default="small", help="VAE size (paper = Tango's 55 M VAE)")
    g.add_argument("--disc-preset", choices=(*PRESETS, "none"), default="paper",
                   help="patch discriminator width; none = no adversarial term")
    g.add_argument("--crop-frames", type=int, default=1024,
                   help="mel frames per crop (10 ms each; a multiple of 4; Tango: 1024)")
    g.add_argument("--lr", type=float, default=8e-6, help="Adam lr (AudioLDM 8e-6; small CPU runs ~1e-4)")
    g.add_argument("--kl-weight", type=float, default=1e-6)
    g.add_argument("--kl-reduction", choices=("sum", "mean"), default="sum",
                   help="KL summed (LDM) or averaged (AudioLDM's distributions.py) over latent elements")
    g.add_argument("--disc-start", type=int, default=50001, help="batches before the adversarial terms start")
    g.add_argument("--disc-weight", type=float, default=0.5)
    g.add_argument("--disc-factor", type=float, default=1.0)
    g.add_argument("--no-adaptive-weight", dest="adaptive_weight", action="store_false",
                   help="weight the generator's adversarial term by --disc-weight alone (no gradient-norm ratio)")
    g.add_argument("--learn-logvar", action="store_true", help="train the NLL's scalar log-variance")
    g.add_argument("--data-seed", type=int, default=0, help="seed of the crops and the posterior noise")
    g.add_argument("--scale-items", type=int, default=64, help="training clips that set the exported scale factor")
    g.add_argument("--num-log-samples", type=int, default=2, help="clips reconstructed at each --sample-every")


def build_task(args: argparse.Namespace) -> Any:
    """The :class:`~sara.mel.vae_training.VAETask` described by ``args``.

    Raises:
        ConfigError: an invalid combination (e.g. ``--crop-frames`` not a multiple of the downsample factor).
    """
    from sara.errors import ConfigError
    from sara.mel.discriminator import PatchDiscriminatorConfig
    from sara.mel.frontend import MelConfig
    from sara.mel.vae import MelVAEConfig
    from sara.mel.vae_training import VAETask, VAETrainConfig

    model = getattr(MelVAEConfig, args.preset)()
    mel = MelConfig.tiny() if args.preset == "tiny" else MelConfig.paper()
    disc = PatchDiscriminatorConfig.paper() if args.disc_preset == "none" else getattr(PatchDiscriminatorConfig, args.disc_preset)()
    try:
        cfg = VAETrainConfig(
            train_data=tuple(args.data), valid_data=tuple(args.valid_data), model=model, mel=mel,
            adversarial=args.disc_preset != "none", discriminator=disc, crop_frames=args.crop_frames, lr=args.lr, kl_weight=args.kl_weight,
            kl_reduction=args.kl_reduction, disc_start=args.disc_start, disc_weight=args.disc_weight,
            disc_factor=args.disc_factor, adaptive_weight=args.adaptive_weight, learn_logvar=args.learn_logvar,
            seed=args.data_seed, scale_items=args.scale_items, num_log_samples=args.num_log_samples,
        )
    except ValueError as exc:
        raise ConfigError(f"vae: {exc}") from None
    return VAETask(cfg)
