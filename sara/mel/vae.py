"""The AudioLDM / Tango mel VAE: an LDM-style KL autoencoder on ``[B, 1, T, n_mels]`` log-mels.

Architecture (haoheliu/AudioLDM ``audioldm/variational_autoencoder/{autoencoder,modules}.py``; paper config in
``audioldm/utils.py`` and Tango's ``vae_config.json``): ch 128, ch_mult (1, 2, 4), 2 res blocks per level, no
attention resolutions, a self-attention block in the middle of encoder and decoder, z_channels = embed_dim = 8,
double_z.  It is built on diffusers' :class:`~diffusers.AutoencoderKL` with the same layout (block_out_channels
(128, 256, 512), 3 DownEncoderBlock2D / UpDecoderBlock2D, layers_per_block 2, latent_channels 8, 1 in/out
channel), which is what diffusers' ``convert_original_audioldm_to_diffusers.py`` produces.

Frame arithmetic: each of the ``L - 1`` downsampling stages halves both axes (padding (0, 1, 0, 1), stride 2), so
the time frames ``T`` and the mel bins ``F`` must be multiples of ``downsample_factor = 2 ** (L - 1)`` (4 for the
paper: 1024 x 64 mel -> 8 x 256 x 16 latent; Tango's 10.24 s = 1024 frames).  :meth:`MelVAE.encode` refuses
other sizes with a one-line :class:`~sara.errors.AudioError`.

Latent spaces: ``encode`` returns the posterior in the VAE's own space; diffusion works on
``scale_factor * z`` (:meth:`MelVAE.encode_latents`) and :meth:`MelVAE.decode` takes diffusion-space latents and
divides by ``scale_factor`` first (Tango's ``decode_first_stage``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from sara.errors import AudioError
from sara.serialization import (
    PretrainedMixin,
    config_from_dict,
    is_release_dir,
    load_release,
    load_state_dict_strict,
)

__all__ = ["MelPosterior", "MelVAE", "MelVAEConfig", "load_tango_vae_state"]

AUDIOLDM_SCALE_FACTOR = 0.9227914214134216  # Tango's vae_config.json / Mustango's configs/vae_config.json


@dataclass(frozen=True)
class MelVAEConfig:
    """Mel VAE hyper-parameters (diffusers ``AutoencoderKL`` names).

    Attributes:
        block_out_channels: channels per resolution level (AudioLDM ``ch * ch_mult``).
        layers_per_block: res blocks per encoder level (the decoder has one more, as in LDM).
        latent_channels: latent channels C (AudioLDM ``z_channels`` = ``embed_dim``).
        norm_num_groups: GroupNorm groups (AudioLDM's ``Normalize`` uses 32).
        n_mels: mel bins F of the input; a multiple of the downsample factor.
        scale_factor: multiplies latents for diffusion (``1 / std`` of training latents, LDM's recipe).
    """

    block_out_channels: tuple[int, ...] = (128, 256, 512)
    layers_per_block: int = 2
    latent_channels: int = 8
    norm_num_groups: int = 32
    n_mels: int = 64
    scale_factor: float = AUDIOLDM_SCALE_FACTOR

    def __post_init__(self) -> None:
        if not self.block_out_channels or any(c <= 0 for c in self.block_out_channels):
            raise ValueError(f"block_out_channels must be non-empty and positive, got {self.block_out_channels}")
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if self.norm_num_groups <= 0 or bad:
            raise ValueError(f"block_out_channels {self.block_out_channels} must be multiples of norm_num_groups "
                             f"{self.norm_num_groups}")
        if self.layers_per_block <= 0 or self.latent_channels <= 0:
            raise ValueError("layers_per_block and latent_channels must be positive")
        if self.n_mels <= 0 or self.n_mels % self.downsample_factor:
            raise ValueError(f"n_mels {self.n_mels} must be a positive multiple of the downsample factor "
                             f"{self.downsample_factor}")
        if not (math.isfinite(self.scale_factor) and self.scale_factor > 0):
            raise ValueError(f"scale_factor must be positive and finite, got {self.scale_factor}")

    @property
    def downsample_factor(self) -> int:
        """Down-sampling of both mel axes: ``2 ** (levels - 1)``."""
        return 2 ** (len(self.block_out_channels) - 1)

    @classmethod
    def paper(cls) -> MelVAEConfig:
        """The AudioLDM / Tango VAE (55.4 M parameters; 1 x 1024 x 64 -> 8 x 256 x 16)."""
        return cls()

    @classmethod
    def small(cls) -> MelVAEConfig:
        """CPU-trainable demo size with the paper's frame arithmetic (factor 4, 8 latent channels)."""
        return cls(block_out_channels=(32, 64, 128), layers_per_block=2, norm_num_groups=16, scale_factor=1.0)

    @classmethod
    def tiny(cls) -> MelVAEConfig:
        """Test size: widths 8/16/16, 1 res block, 16 mel bins (``MelConfig.tiny``), factor 4."""
        return cls(block_out_channels=(8, 16, 16), layers_per_block=1, norm_num_groups=4, n_mels=16,
                   scale_factor=1.0)


@dataclass
class MelPosterior:
    """Diagonal Gaussian over latents, as AudioLDM's ``DiagonalGaussianDistribution``.

    Attributes:
        mean: ``[B, C, T/f, F/f]``.
        logvar: ``[B, C, T/f, F/f]``, clamped to [-30, 20] as AudioLDM does.
    """

    mean: Tensor
    logvar: Tensor

    @classmethod
    def from_moments(cls, moments: Tensor) -> MelPosterior:
        """Split ``[B, 2C, H, W]`` quant-conv moments into mean and (clamped) log-variance."""
        mean, logvar = torch.chunk(moments, 2, dim=1)
        return cls(mean, torch.clamp(logvar, -30.0, 20.0))

    @property
    def std(self) -> Tensor:
        """``exp(logvar / 2)``, same shape as :attr:`mean`."""
        return torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """``mean + std * eps`` with ``eps`` drawn from ``generator`` (global RNG when None).

        The noise is drawn on the generator's device and moved, so a CPU generator gives the same latents on
        any device.
        """
        device = generator.device if generator is not None else self.mean.device
        eps = torch.randn(self.mean.shape, generator=generator, dtype=self.mean.dtype, device=device)
        return self.mean + self.std * eps.to(self.mean.device)

    def mode(self) -> Tensor:
        """The mean (the most likely latent)."""
        return self.mean

    def kl(self, reduction: Literal["mean", "sum"] = "mean") -> Tensor:
        """KL to the standard normal per item, ``[B]``.

        ``"mean"`` averages over C, H, W as AudioLDM's ``distributions.py`` does; ``"sum"`` sums as the original
        LDM (and diffusers) do.
        """
        per_element = 0.5 * (self.mean.pow(2) + torch.exp(self.logvar) - 1.0 - self.logvar)
        return per_element.mean(dim=(1, 2, 3)) if reduction == "mean" else per_element.sum(dim=(1, 2, 3))


def build_autoencoder(cfg: MelVAEConfig) -> nn.Module:
    """diffusers ``AutoencoderKL`` with the AudioLDM layout for ``cfg`` (1 in/out channel, mid attention)."""
    from diffusers import AutoencoderKL

    levels = len(cfg.block_out_channels)
    return AutoencoderKL(
        in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels, block_out_channels=tuple(cfg.block_out_channels),
        layers_per_block=cfg.layers_per_block, latent_channels=cfg.latent_channels,
        norm_num_groups=cfg.norm_num_groups, scaling_factor=cfg.scale_factor, sample_size=cfg.n_mels,
    )


class MelVAE(nn.Module, PretrainedMixin):
    """AudioLDM mel VAE: ``encode`` log-mel -> :class:`MelPosterior`, ``decode`` latents -> log-mel.

    Args:
        config: architecture and latent scale (``MelVAEConfig()`` = the paper/Tango VAE).

    The diffusers module is ``self.autoencoder``; sara releases store its weights under ``autoencoder.*``.
    """

    config_class: ClassVar[type] = MelVAEConfig

    def __init__(self, config: MelVAEConfig | None = None) -> None:
        super().__init__()
        self.config = config or MelVAEConfig()
        self.autoencoder = build_autoencoder(self.config)

    @property
    def scale_factor(self) -> float:
        """Latent scale: diffusion latents are ``scale_factor * z``."""
        return self.config.scale_factor

    @property
    def latent_channels(self) -> int:
        """Latent channels C."""
        return self.config.latent_channels

    @property
    def downsample_factor(self) -> int:
        """Down-sampling f of both mel axes (T and F must be multiples of it)."""
        return self.config.downsample_factor

    def set_scale_factor(self, value: float) -> None:
        """Replace the stored latent scale (e.g. with :func:`sara.mel.vae_training.estimate_scale_factor`)."""
        self.config = dataclasses.replace(self.config, scale_factor=float(value))

    def _check_mel(self, mel: Tensor) -> None:
        if mel.dim() != 4 or mel.shape[1] != 1:
            raise AudioError(f"MelVAE.encode: expected a mel [B, 1, T, F], got shape {tuple(mel.shape)}")
        _, _, frames, bins = mel.shape
        if bins != self.config.n_mels:
            raise AudioError(f"MelVAE.encode: mel has {bins} bins, this VAE takes {self.config.n_mels}")
        self.latent_shape(frames)
        if not mel.is_meta and not torch.isfinite(mel).all():
            raise AudioError("MelVAE.encode: the mel contains NaN or Inf values")

    def latent_shape(self, num_frames: int) -> tuple[int, int, int]:
        """Latent ``(C, T / f, F / f)`` for ``num_frames`` mel frames (Tango: 1024 -> (8, 256, 16)).

        Raises:
            AudioError: ``num_frames`` is not a positive multiple of :attr:`downsample_factor`.
        """
        f = self.downsample_factor
        if num_frames <= 0 or num_frames % f:
            raise AudioError(f"MelVAE: {num_frames} frames is not a positive multiple of the downsample factor "
                             f"{f} (pad or trim the mel, e.g. to {max(f, num_frames // f * f)} frames)")
        return self.latent_channels, num_frames // f, self.config.n_mels // f

    def encode(self, mel: Tensor) -> MelPosterior:
        """Posterior over latents of a log-mel.

        Args:
            mel: ``[B, 1, T, F]`` log-mel (frames T and bins F multiples of :attr:`downsample_factor`).

        Returns:
            :class:`MelPosterior` with ``[B, C, T/f, F/f]`` mean / logvar (VAE space, unscaled).
        """
        self._check_mel(mel)
        ae = self.autoencoder
        return MelPosterior.from_moments(ae.quant_conv(ae.encoder(mel)))

    def encode_latents(self, mel: Tensor, generator: torch.Generator | None = None, sample: bool = True) -> Tensor:
        """Diffusion-space latents ``scale_factor * z`` ``[B, C, T/f, F/f]`` (z sampled, or the mean)."""
        posterior = self.encode(mel)
        z = posterior.sample(generator) if sample else posterior.mode()
        return z * self.scale_factor

    def decode_unscaled(self, z: Tensor) -> Tensor:
        """VAE-space latents ``[B, C, H, W]`` -> log-mel ``[B, 1, H * f, W * f]``."""
        if z.dim() != 4 or z.shape[1] != self.latent_channels:
            raise AudioError(f"MelVAE.decode: expected latents [B, {self.latent_channels}, H, W], "
                             f"got shape {tuple(z.shape)}")
        ae = self.autoencoder
        return ae.decoder(ae.post_quant_conv(z))

    def decode(self, z: Tensor) -> Tensor:
        """Diffusion-space latents ``[B, C, T/f, F/f]`` -> log-mel ``[B, 1, T, F]`` (divides by scale_factor)."""
        return self.decode_unscaled(z / self.scale_factor)

    def forward(self, mel: Tensor, generator: torch.Generator | None = None,
                sample: bool = True) -> tuple[Tensor, MelPosterior]:
        """Reconstruct ``[B, 1, T, F]``: returns ``(mel_hat [B, 1, T, F], posterior)``."""
        posterior = self.encode(mel)
        z = posterior.sample(generator) if sample else posterior.mode()
        return self.decode_unscaled(z), posterior

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> MelVAE:
        """Load a sara release, a Tango directory, a diffusers ``vae/`` folder, a pipeline root with ``vae/`` or an
        AudioLDM ``.ckpt`` (see :mod:`sara.mel.vae_official`).

        Raises:
            CheckpointError: the path holds none of these, or its files/keys do not fit (one line naming them).
        """
        from sara.hub import local_path

        path = local_path(path)  # a hub id or URL -> its cached copy
        if is_release_dir(path):
            payload, state = load_release(path, cls.__name__)
            model = _uninitialised(config_from_dict(MelVAEConfig, payload["config"]))
            load_state_dict_strict(model, state, source=str(path))
        else:
            from sara.mel.vae_official import load_official_vae

            cfg, state = load_official_vae(Path(path))
            model = _uninitialised(cfg)
            load_state_dict_strict(model.autoencoder, state, source=str(path))
        return model.to(map_location).eval()


def _uninitialised(cfg: MelVAEConfig) -> MelVAE:
    """A :class:`MelVAE` with uninitialised CPU weights, for loading (random init of the 55 M-parameter paper
    VAE takes seconds; the strict load then overwrites every parameter and buffer)."""
    with torch.device("meta"):
        model = MelVAE(cfg)
    return model.to_empty(device="cpu")


def load_tango_vae_state(tango_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw state dict of a Tango directory's ``pytorch_model_vae.bin`` (VAE *and* ``vocoder.*`` keys).

    Read weights-only; see :func:`sara.mel.vae_official.split_tango_state` for the VAE part.
    """
    from sara.mel.vae_official import read_tango_state

    return read_tango_state(Path(tango_dir))
