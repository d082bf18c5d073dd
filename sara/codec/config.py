"""Configuration of the EnCodec codec (SEANet encoder/decoder + residual vector quantizer).

The ``audiogen()`` preset is audiocraft's ``encodec_large_nq4_s320`` as the AudioGen solver builds it
(``config/solver/compression/encodec_audiogen_16khz.yaml`` -> ``config/model/encodec/encodec_large_nq4_s320.yaml``
on top of ``config/model/encodec/default.yaml``): 16 kHz mono, SEANet with 64 base filters and ratios
``[8, 5, 4, 2]`` (hop 320, 50 Hz), a 128-d latent, one residual layer per stage, a 2-layer LSTM, compress 2,
ELU, weight norm, non-causal ``constant`` padding, true skips; RVQ with 4 codebooks of 2048 entries, EMA
decay 0.99, k-means initialisation (50 iterations) and dead-code replacement below an EMA count of 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["CodecConfig"]


@dataclass(frozen=True)
class CodecConfig:
    """Hyper-parameters of :class:`~sara.codec.model.EncodecCodec` (names follow audiocraft's yaml).

    Attributes:
        sample_rate: audio rate in Hz.
        channels: audio channels (1 = mono).
        n_filters: SEANet base width (channels after the first conv; doubled at each downsampling).
        ratios: decoder-order up-sampling ratios; the encoder uses them reversed.  hop = prod(ratios).
        dimension: latent (and codebook) dimension.
        n_residual_layers: residual blocks per stage (dilations ``dilation_base ** j``).
        lstm: LSTM layers after the encoder's last stage / before the decoder's first (0 = none).
        compress: hidden width divisor in the residual branches.
        activation_alpha: the ELU's alpha.
        kernel_size, last_kernel_size, residual_kernel_size: conv kernel sizes (samples / frames).
        dilation_base: dilation growth across residual layers.
        norm: ``weight_norm`` (audiocraft's old-style ``weight_g``/``weight_v``) or ``none``.
        causal: left-only padding (streamable) instead of centred padding.
        pad_mode: padding mode of the stride-1 convs (``constant`` = zeros, ``reflect``).
        true_skip: identity shortcuts in residual blocks (False: a 1x1 conv).
        disable_norm_outer_blocks: number of outer blocks without weight norm.
        trim_right_ratio: causal transposed-conv trimming split (1.0 = all on the right).
        num_codebooks: RVQ levels ``K`` (audiocraft ``n_q``).
        bins: entries per codebook (the token cardinality).
        decay: EMA decay of the codebook statistics.
        kmeans_init: initialise the codebooks by k-means on the first training batch (else uniform init).
        kmeans_iters: k-means iterations.
        threshold_ema_dead_code: codes whose EMA count (average uses per training batch) falls below this are
            replaced by batch vectors (0 = never).  Keep it well below the uniform usage
            ``batch vectors / bins``: audiocraft's 2 is above its own 3200 / 2048 = 1.6, harmless there only
            because its replacement is overwritten in the same step (see :mod:`sara.codec.quantizer`); with
            sara's effective replacement a threshold above the usage replaces most codes every step.
        epsilon: Laplace smoothing of the EMA counts.
    """

    sample_rate: int = 16000
    channels: int = 1
    n_filters: int = 64
    ratios: tuple[int, ...] = (8, 5, 4, 2)
    dimension: int = 128
    n_residual_layers: int = 1
    lstm: int = 2
    compress: int = 2
    activation_alpha: float = 1.0
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    norm: Literal["weight_norm", "none"] = "weight_norm"
    causal: bool = False
    pad_mode: Literal["constant", "reflect"] = "constant"
    true_skip: bool = True
    disable_norm_outer_blocks: int = 0
    trim_right_ratio: float = 1.0
    num_codebooks: int = 4
    bins: int = 2048
    decay: float = 0.99
    kmeans_init: bool = True
    kmeans_iters: int = 50
    threshold_ema_dead_code: float = 2.0
    epsilon: float = 1e-5

    def __post_init__(self) -> None:
        positive = ("sample_rate", "channels", "n_filters", "dimension", "compress", "kernel_size",
                    "last_kernel_size", "residual_kernel_size", "dilation_base", "num_codebooks", "bins")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.ratios or any(r < 1 for r in self.ratios):
            raise ValueError(f"ratios must be positive integers, got {self.ratios}")
        if self.n_residual_layers < 0 or self.lstm < 0 or self.kmeans_iters < 0:
            raise ValueError("n_residual_layers, lstm and kmeans_iters must be >= 0")
        if self.norm not in ("weight_norm", "none"):
            raise ValueError(f"norm must be weight_norm or none, got {self.norm!r}")
        if self.pad_mode not in ("constant", "reflect"):
            raise ValueError(f"pad_mode must be constant or reflect, got {self.pad_mode!r}")
        if not 0 <= self.disable_norm_outer_blocks <= len(self.ratios) + 2:
            raise ValueError(f"disable_norm_outer_blocks must be in [0, {len(self.ratios) + 2}]")
        if not 0.0 < self.decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {self.decay}")
        if not 0.0 <= self.trim_right_ratio <= 1.0 or (not self.causal and self.trim_right_ratio != 1.0):
            raise ValueError("trim_right_ratio must be in [0, 1], and 1.0 unless causal")

    # ------------------------------------------------------------------------------------ presets
    @classmethod
    def audiogen(cls) -> CodecConfig:
        """audiocraft's ``encodec_large_nq4_s320`` at 16 kHz (the AudioGen tokenizer, ~57.5 M parameters)."""
        return cls()

    paper = audiogen  # the team's preset name for "the published model"

    @classmethod
    def small(cls) -> CodecConfig:
        """A CPU-trainable demo codec with the same rates and token layout (50 Hz, 4 codebooks, 128-d) and
        1024-entry codebooks; the dead-code threshold suits CPU batches (8 x 1 s = 400 vectors, 0.4 uses per
        code and batch): a code used less than once in 20 batches is replaced."""
        return cls(n_filters=16, lstm=1, bins=1024, kmeans_iters=20, threshold_ema_dead_code=0.05)

    @classmethod
    def tiny(cls) -> CodecConfig:
        """A test-sized codec: hop 8 (2 kHz frames at 16 kHz), 8-d latent, 2 codebooks of 16."""
        return cls(n_filters=4, ratios=(4, 2), dimension=8, lstm=1, num_codebooks=2, bins=16, kmeans_iters=4)

    # ---------------------------------------------------------------------------------- derived
    @property
    def hop_length(self) -> int:
        """Samples per latent frame: ``prod(ratios)``."""
        return math.prod(self.ratios)

    @property
    def frame_rate(self) -> int:
        """Latent frames per second (audiocraft: ``sample_rate // hop_length``)."""
        return self.sample_rate // self.hop_length
