"""HiFi-GAN vocoder for 64-bin 16 kHz log-mel spectrograms (the Tango / AudioLDM vocoder).

Kong et al., "HiFi-GAN: Generative Adversarial Networks for Efficient and High Fidelity Speech Synthesis"
(NeurIPS 2020, https://arxiv.org/abs/2010.05646), generator V1 with AudioLDM's 16 kHz configuration
(``HIFIGAN_16K_64`` in haoheliu/AudioLDM ``audioldm/hifigan/utilities.py``): 64 mel bins, upsampling
5 x 4 x 2 x 2 x 2 = 160 samples per frame (the mel hop), kernels 16/16/8/4/4, 1024 initial channels,
type-1 residual blocks with kernels 3/7/11 and dilations 1/3/5.

The network itself is ``transformers.SpeechT5HifiGan`` (``normalize_before=False``), the class the diffusers
AudioLDM pipelines use, so sara runs the standard implementation; :class:`HiFiGAN` adds the config, the
frame arithmetic (SpeechT5HifiGan returns ``T * 160 + 32`` samples for the paper config: the first
transposed convolution, kernel 16 with stride 5 and padding 5, gives ``5 T + 1``, and the later stages
multiply by 32; :meth:`HiFiGAN.forward` keeps the first ``T * hop_length``, as the diffusers pipelines do),
input checks and loading (:mod:`sara.mel.hifigan_official`).

Notation: ``B`` batch, ``T`` mel frames (100 per second at 16 kHz), ``N = T * hop_length`` samples.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from sara.errors import AudioError
from sara.serialization import PretrainedMixin

__all__ = ["HiFiGAN", "HiFiGANConfig"]


@dataclass(frozen=True)
class HiFiGANConfig:
    """Generator size (HiFi-GAN V1 structure; residual blocks of type "1" only).

    Attributes:
        n_mels: mel bins of the input.
        sample_rate: output rate in Hz.
        upsample_rates: stride of each transposed convolution; their product is the hop in samples.
        upsample_kernel_sizes: kernel of each transposed convolution (>= its rate).
        upsample_initial_channel: width after ``conv_pre``; halved by every upsampling stage.
        resblock_kernel_sizes: kernels of the parallel residual blocks after each upsampling (odd).
        resblock_dilation_sizes: dilations of each residual block's convolutions (one tuple per kernel).
        leaky_relu_slope: negative slope inside the network (the final activation uses 0.01 as in the
            reference code).
        normalize_before: standardise the mel with the ``mean`` / ``scale`` buffers first (SpeechT5's
            option; False for AudioLDM / Tango).
    """

    n_mels: int = 64
    sample_rate: int = 16000
    upsample_rates: tuple[int, ...] = (5, 4, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 4, 4)
    upsample_initial_channel: int = 1024
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    leaky_relu_slope: float = 0.1
    normalize_before: bool = False

    def __post_init__(self) -> None:
        for name in ("n_mels", "sample_rate", "upsample_initial_channel"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        self._check_upsampling()
        self._check_resblocks()
        if not 0.0 <= self.leaky_relu_slope < 1.0:
            raise ValueError(f"leaky_relu_slope must be in [0, 1), got {self.leaky_relu_slope}")

    def _check_upsampling(self) -> None:
        rates, kernels = self.upsample_rates, self.upsample_kernel_sizes
        if not rates or len(rates) != len(kernels):
            raise ValueError(f"upsample_rates {rates} and upsample_kernel_sizes {kernels} need the same length >= 1")
        if any(u < 1 or k < u for u, k in zip(rates, kernels)):
            raise ValueError(f"each upsample kernel must be >= its rate >= 1, got {kernels} for {rates}")
        if self.upsample_initial_channel % (2 ** len(rates)):
            raise ValueError(f"upsample_initial_channel {self.upsample_initial_channel} must be divisible by "
                             f"2 ** {len(rates)} (it is halved by every upsampling stage)")

    def _check_resblocks(self) -> None:
        kernels, dilations = self.resblock_kernel_sizes, self.resblock_dilation_sizes
        if not kernels or len(kernels) != len(dilations):
            raise ValueError(f"resblock_kernel_sizes {kernels} and resblock_dilation_sizes need the same length >= 1")
        if any(k < 1 or k % 2 == 0 for k in kernels):
            raise ValueError(f"resblock kernels must be odd (length-preserving padding), got {kernels}")
        if any(not d or min(d) < 1 for d in dilations):
            raise ValueError(f"resblock dilations must be non-empty tuples of ints >= 1, got {dilations}")

    @property
    def hop_length(self) -> int:
        """Output samples per mel frame: the product of the upsampling rates."""
        return math.prod(self.upsample_rates)

    @classmethod
    def paper(cls) -> HiFiGANConfig:
        """AudioLDM's ``HIFIGAN_16K_64`` (the vocoder inside Tango's ``pytorch_model_vae.bin``; 55.3 M)."""
        return cls()

    @classmethod
    def small(cls) -> HiFiGANConfig:
        """HiFi-GAN V2's width (128 initial channels) at the paper's 16 kHz / hop-160 layout (0.92 M)."""
        return cls(upsample_initial_channel=128)

    @classmethod
    def tiny(cls) -> HiFiGANConfig:
        """For tests: 16 mel bins, hop 160 in three stages (5 x 4 x 8), two narrow residual blocks."""
        return cls(n_mels=16, upsample_rates=(5, 4, 8), upsample_kernel_sizes=(10, 8, 16), upsample_initial_channel=16,
                   resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)))

    def to_speecht5(self) -> Any:
        """The equivalent ``transformers.SpeechT5HifiGanConfig``."""
        from transformers import SpeechT5HifiGanConfig

        return SpeechT5HifiGanConfig(
            model_in_dim=self.n_mels, sampling_rate=self.sample_rate,
            upsample_initial_channel=self.upsample_initial_channel, upsample_rates=list(self.upsample_rates),
            upsample_kernel_sizes=list(self.upsample_kernel_sizes),
            resblock_kernel_sizes=list(self.resblock_kernel_sizes),
            resblock_dilation_sizes=[list(d) for d in self.resblock_dilation_sizes],
            leaky_relu_slope=self.leaky_relu_slope, normalize_before=self.normalize_before,
        )


class HiFiGAN(nn.Module, PretrainedMixin):
    """Mel spectrogram ``[B, T, n_mels]`` -> waveform ``[B, T * hop_length]`` in [-1, 1].

    Args:
        config: generator size; None = :meth:`HiFiGANConfig.paper`.
        init_weights: re-draw the weights with :meth:`reset_parameters` (PyTorch's default initialisation);
            False keeps transformers' initialisation (for weights about to be loaded anyway).
    """

    config_class: ClassVar[type] = HiFiGANConfig

    def __init__(self, config: HiFiGANConfig | None = None, *, init_weights: bool = True) -> None:
        super().__init__()
        from transformers import SpeechT5HifiGan

        self.config = config if config is not None else HiFiGANConfig.paper()
        self.generator = SpeechT5HifiGan(self.config.to_speecht5())
        if init_weights:
            self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, std: float | None = None) -> None:
        """Initialise every convolution.

        Args:
            std: None = PyTorch's default (Kaiming-uniform) for all layers: what HiFi-GAN *effectively* trains
                from, because its ``init_weights`` (N(0, 0.01)) writes into the weight that weight norm recomputes
                from ``weight_g`` / ``weight_v`` at the next forward, so it has no effect (jik876/hifi-gan issue
                145; AudioLDM's copy does the same).  A float = the intended N(0, std) for the transposed
                convolutions, the residual blocks and ``conv_post`` (``conv_pre`` keeps the default).
        """
        g = self.generator
        g.conv_pre.reset_parameters()
        for module in (*g.upsampler, *g.resblocks, g.conv_post):
            for conv in module.modules():
                if isinstance(conv, (nn.Conv1d, nn.ConvTranspose1d)):
                    conv.reset_parameters()
                    if std is not None:
                        conv.weight.normal_(0.0, std)

    @property
    def hop_length(self) -> int:
        """Output samples per input frame."""
        return self.config.hop_length

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz."""
        return self.config.sample_rate

    @property
    def n_mels(self) -> int:
        """Mel bins the input must have."""
        return self.config.n_mels

    def num_samples(self, num_frames: int) -> int:
        """Samples returned for ``num_frames`` mel frames."""
        return num_frames * self.hop_length

    def forward(self, mel: Tensor) -> Tensor:
        """Vocode ``mel [B, T, n_mels]`` (natural-log magnitude mel, as :func:`sara.mel.frontend.log_mel`).

        Returns:
            ``[B, T * hop_length]`` float waveform at :attr:`sample_rate`.

        Raises:
            AudioError: the input is not ``[B, T >= 1, n_mels]`` or holds NaN / infinite values.
        """
        self._check_mel(mel)
        weight = self.generator.conv_pre.weight
        wav = self.generator(mel.to(weight.dtype))
        return wav[:, : mel.shape[1] * self.hop_length]

    def _check_mel(self, mel: Tensor) -> None:
        if mel.dim() != 3 or mel.shape[-1] != self.n_mels or mel.shape[1] < 1:
            raise AudioError(f"HiFiGAN: mel must be [batch, frames >= 1, {self.n_mels}], got {list(mel.shape)}")
        if not bool(torch.isfinite(mel).all()):
            raise AudioError("HiFiGAN: mel contains NaN or infinite values")

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> HiFiGAN:
        """Load a vocoder, strictly, from any of the layouts in :func:`sara.mel.hifigan_official.load_hifigan`:
        a sara release, a Tango directory, a diffusers ``vocoder/`` folder or AudioLDM pipeline root, or an
        AudioLDM HiFi-GAN checkpoint file.

        Raises:
            CheckpointError: unknown layout, missing / unexpected keys (named, with the file).
        """
        from sara.hub import local_path

        path = local_path(path)  # a hub id or URL -> its cached copy
        from sara.mel.hifigan_official import load_hifigan

        return load_hifigan(path).to(map_location).eval()
