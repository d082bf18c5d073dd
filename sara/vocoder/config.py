"""Configuration of the SemanticVocoder generator (a Flow2GAN-style flow-matching waveform decoder).

The defaults are the paper's generator (spec B.3): a 4-layer 512-wide condition encoder and three
ConvNeXt branches of widths 768/512/384 with 8 layers each, predicting raw STFT coefficients at three
resolutions.  The hop lengths are not stored in the official weights; we assume ``hop = n_fft / 2`` as
Flow2GAN always does, and every hop must divide the 960 samples of one 25 Hz latent frame at 24 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["VocoderConfig"]


@dataclass(frozen=True)
class VocoderConfig:
    """Hyper-parameters of :class:`~sara.vocoder.model.VocoderGenerator` and its sampler.

    Attributes:
        sample_rate: output sample rate in Hz.
        latent_dim: channels ``D`` of the semantic latents ``[B, D, N]``.
        hop_length: waveform samples per latent frame (960 = 24 kHz / 25 Hz).
        n_ffts: FFT size of each branch (samples).
        hop_lengths: STFT hop of each branch (samples); each must divide ``hop_length``.
        channels: ConvNeXt width of each branch.
        num_layers: ConvNeXt blocks per branch.
        kernel_sizes: depthwise kernel size of each branch's blocks.
        hidden_factor: pointwise expansion of the branch blocks (and of the time / condition MLPs).
        time_embed_dim: sinusoidal time-embedding width.
        cond_enc_channels: width of the condition encoder (and of the condition fed to the branches).
        cond_enc_hidden_factor: pointwise expansion of the condition-encoder blocks.
        cond_enc_kernel_size: depthwise kernel size of the condition-encoder blocks.
        cond_enc_num_layers: ConvNeXt blocks in the condition encoder.
        residual_scale: whether blocks carry a learnable per-channel scale on the skip path.
        init_noise_scale: standard deviation of the waveform-domain initial noise ``x0``.
        pred_x1: the network predicts the clean waveform (True) or the velocity (False).
        branch_reduction: how branch waveforms are fused.
        branch_dropout: training-only probability per item of dropping one random branch.
        clamp: clamp decoded waveforms to [-1, 1].
        default_steps: Euler steps used when the caller gives none.
        loss_n_fft, loss_hop_length, loss_n_filters: linear-filterbank power spectrogram of the loss.
        loss_power: exponent of the energy weighting: ``scale = (G + eps) ** -loss_power``.
        loss_eps, loss_scale_min, loss_scale_max: stabiliser and clamp range of that weighting.
    """

    sample_rate: int = 24000
    latent_dim: int = 768
    hop_length: int = 960
    n_ffts: tuple[int, ...] = (960, 480, 240)
    hop_lengths: tuple[int, ...] = (480, 240, 120)
    channels: tuple[int, ...] = (768, 512, 384)
    num_layers: tuple[int, ...] = (8, 8, 8)
    kernel_sizes: tuple[int, ...] = (7, 7, 7)
    hidden_factor: int = 3
    time_embed_dim: int = 512
    cond_enc_channels: int = 512
    cond_enc_hidden_factor: int = 3
    cond_enc_kernel_size: int = 7
    cond_enc_num_layers: int = 4
    residual_scale: bool = True
    init_noise_scale: float = 0.1
    pred_x1: bool = True
    branch_reduction: Literal["mean", "sum"] = "mean"
    branch_dropout: float = 0.05
    clamp: bool = True
    default_steps: int = 200
    loss_n_fft: int = 1024
    loss_hop_length: int = 256
    loss_n_filters: int = 256
    loss_power: float = 0.5
    loss_eps: float = 1e-7
    loss_scale_min: float = 1e-2
    loss_scale_max: float = 1e2

    def __post_init__(self) -> None:
        n = len(self.n_ffts)
        if n == 0:
            raise ValueError("at least one branch (n_ffts) is required")
        for name in ("hop_lengths", "channels", "num_layers", "kernel_sizes"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries but n_ffts has {n}")
        for n_fft, hop in zip(self.n_ffts, self.hop_lengths):
            if n_fft <= 0 or n_fft % 2 or hop <= 0 or hop > n_fft:
                raise ValueError(f"invalid STFT (n_fft={n_fft}, hop={hop}): n_fft must be even and >= hop > 0")
            if self.hop_length % hop:
                raise ValueError(f"hop {hop} does not divide the latent hop_length {self.hop_length}")
        if self.sample_rate <= 0 or self.hop_length <= 0 or self.latent_dim <= 0:
            raise ValueError("sample_rate, hop_length and latent_dim must be positive")
        if any(k % 2 == 0 for k in (*self.kernel_sizes, self.cond_enc_kernel_size)):
            raise ValueError("kernel sizes must be odd (same-length depthwise convolutions)")
        if self.time_embed_dim % 2 or self.time_embed_dim < 4:
            raise ValueError(f"time_embed_dim must be even and >= 4, got {self.time_embed_dim}")
        if self.branch_reduction not in ("mean", "sum"):
            raise ValueError(f"branch_reduction must be 'mean' or 'sum', got {self.branch_reduction!r}")
        if not 0.0 <= self.branch_dropout < 1.0:
            raise ValueError(f"branch_dropout must be in [0, 1), got {self.branch_dropout}")
        if self.init_noise_scale < 0 or self.default_steps < 1:
            raise ValueError("init_noise_scale must be >= 0 and default_steps >= 1")

    # ------------------------------------------------------------------------------------- presets
    @classmethod
    def paper(cls) -> VocoderConfig:
        """The released SemanticVocoder generator (about 81 M parameters)."""
        return cls()

    @classmethod
    def small(cls) -> VocoderConfig:
        """A ~9 M-parameter generator for single-GPU or CPU experiments."""
        return cls(channels=(256, 192, 128), num_layers=(4, 4, 4), time_embed_dim=256,
                   cond_enc_channels=256, cond_enc_num_layers=2)

    @classmethod
    def tiny(cls) -> VocoderConfig:
        """A very small two-branch generator for tests and CPU smoke runs."""
        return cls(n_ffts=(480, 240), hop_lengths=(240, 120), channels=(32, 24), num_layers=(1, 1),
                   kernel_sizes=(7, 7), time_embed_dim=32, cond_enc_channels=32, cond_enc_num_layers=1,
                   default_steps=4)

    # ------------------------------------------------------------------------------------ derived
    @property
    def num_branches(self) -> int:
        """Number of STFT branches."""
        return len(self.n_ffts)

    @property
    def frame_rate(self) -> float:
        """Latent frames per second (25.0 for the paper)."""
        return self.sample_rate / self.hop_length
