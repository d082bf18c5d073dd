"""PatchGAN discriminator on log-mels, as AudioLDM's VAE loss uses it (``NLayerDiscriminator``).

AudioLDM trains its mel VAE with LDM's ``LPIPSWithDiscriminator`` (``disc_in_channels 1``), whose adversary is
the pix2pix / taming-transformers ``NLayerDiscriminator``: ``num_layers`` stride-2 4x4 convolutions (widths
``channels * min(2**n, 8)``), one stride-1 4x4 convolution, then a 4x4 convolution to one logit per patch;
LeakyReLU(0.2) between them, BatchNorm after every convolution but the first and the last (which have biases;
the normalised ones have none), and weights drawn N(0, 0.02) (BatchNorm scales N(1, 0.02)).

Shapes: ``[B, 1, T, F]`` log-mel -> ``[B, 1, T', F']`` patch logits (``T' ~ T / 2**num_layers - 2``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["PatchDiscriminator", "PatchDiscriminatorConfig", "hinge_discriminator_loss"]


@dataclass(frozen=True)
class PatchDiscriminatorConfig:
    """NLayerDiscriminator hyper-parameters.

    Attributes:
        channels: width of the first convolution (pix2pix ``ndf``).
        num_layers: stride-2 convolutions (pix2pix ``n_layers``).
        norm: ``"batch"`` (the reference) or ``"none"`` (no normalisation, biases everywhere).
    """

    channels: int = 64
    num_layers: int = 3
    norm: Literal["batch", "none"] = "batch"

    def __post_init__(self) -> None:
        if self.channels <= 0 or self.num_layers <= 0:
            raise ValueError(f"channels and num_layers must be positive, got {self.channels}, {self.num_layers}")
        if self.norm not in ("batch", "none"):
            raise ValueError(f"norm must be 'batch' or 'none', got {self.norm!r}")

    @classmethod
    def paper(cls) -> PatchDiscriminatorConfig:
        """LDM / AudioLDM: ndf 64, 3 layers, BatchNorm (2.8 M parameters)."""
        return cls()

    @classmethod
    def small(cls) -> PatchDiscriminatorConfig:
        """CPU size: ndf 32, 3 layers."""
        return cls(channels=32)

    @classmethod
    def tiny(cls) -> PatchDiscriminatorConfig:
        """Test size: ndf 8, 2 layers (fits a 32 x 16 mel)."""
        return cls(channels=8, num_layers=2)


def _block(c_in: int, c_out: int, stride: int, norm: bool) -> list[nn.Module]:
    """4x4 convolution (+ BatchNorm) + LeakyReLU(0.2); a normalised convolution has no bias."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, stride=stride, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    return [*layers, nn.LeakyReLU(0.2, inplace=True)]


class PatchDiscriminator(nn.Module):
    """One logit per mel patch (``forward``: ``[B, 1, T, F]`` -> ``[B, 1, T', F']``).

    Args:
        cfg: sizes (``PatchDiscriminatorConfig()`` = the reference).
    """

    def __init__(self, cfg: PatchDiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or PatchDiscriminatorConfig()
        ndf, norm = self.cfg.channels, self.cfg.norm == "batch"
        layers = _block(1, ndf, 2, norm=False)
        mult = 1
        for n in range(1, self.cfg.num_layers):
            prev, mult = mult, min(2**n, 8)
            layers += _block(ndf * prev, ndf * mult, 2, norm)
        prev, mult = mult, min(2**self.cfg.num_layers, 8)
        layers += _block(ndf * prev, ndf * mult, 1, norm)
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.main = nn.Sequential(*layers)
        self.apply(_init_weights)

    def forward(self, mel: Tensor) -> Tensor:
        """``[B, 1, T, F]`` log-mel -> ``[B, 1, T', F']`` logits."""
        return self.main(mel)


def _init_weights(module: nn.Module) -> None:
    """pix2pix ``weights_init``: convolutions N(0, 0.02); BatchNorm scale N(1, 0.02), shift 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def hinge_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """taming's ``hinge_d_loss``: ``(mean(relu(1 - D(x))) + mean(relu(1 + D(x_hat)))) / 2``."""
    return 0.5 * (torch.relu(1.0 - real).mean() + torch.relu(1.0 + fake).mean())
