"""The SemanticVocoder generator: semantic latents + noisy waveform + flow time -> clean-waveform estimate.

Architecture (Flow2GAN generator with a semantic-latent condition; spec B.3)::

    latents [B, D, N] --CondEncoder--> cond [B, Cc, N]                       (25 Hz)
    for each branch r (n_fft_r, hop_r):
        x_t [B, L] --STFT--> [B, F_r, T_r] --real/imag--> [B, 2 F_r, T_r]      (T_r = 1 + L // hop_r)
        cond --repeat x (960 / hop_r), zero-pad one frame--> [B, Cc, T_r] --cond_mlp-->
        ConvNeXtDecoder(spec, cond, t) --> [B, 2 F_r, T_r] --ISTFT, fix length--> [B, L]
    x1_hat = mean_r(branch_r)                                                  (L = N * 960 samples)

``B`` batch, ``D`` latent channels, ``N`` latent frames, ``L`` samples at 24 kHz.  Module and parameter
names match the official checkpoint (``cond_encoder.*``, ``estimators.{r}.decoder.*``, ``loss_spec.*``).
STFT windows and the loss filterbank are non-persistent buffers rebuilt from the config.

Training memory: :meth:`VocoderGenerator.set_gradient_checkpointing` recomputes each ConvNeXt block in the
backward pass instead of keeping its activations (``benchmarks/bench_train_paper.py`` measures the saving).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from sara.audio.dsp import hann_window, istft, linear_filterbank, stft
from sara.vocoder.blocks import (
    CHANNEL_SCALE_LIMITS,
    LIMIT_PROB,
    LOG_SCALE_LIMITS,
    BiasNorm,
    ChannelScale,
    ConvNeXtBlock,
    reverse_outward_grad_,
    sinusoidal_time_embedding,
)
from sara.vocoder.config import VocoderConfig

__all__ = [
    "AudioConvNeXt",
    "BranchCondition",
    "CondEncoder",
    "ConvNeXtDecoder",
    "LinearFilterSpectrogram",
    "VocoderGenerator",
    "branch_keep",
    "channels_to_spec",
    "fix_length",
    "spec_to_channels",
    "upsample_condition",
]


# ------------------------------------------------------------------------------ pure helpers


def spec_to_channels(spec: Tensor) -> Tensor:
    """Complex ``[B, F, T]`` -> real ``[B, 2F, T]`` with all real parts first, then all imaginary parts."""
    return torch.cat([spec.real, spec.imag], dim=1)


def channels_to_spec(x: Tensor) -> Tensor:
    """Inverse of :func:`spec_to_channels`: real ``[B, 2F, T]`` -> complex ``[B, F, T]``."""
    real, imag = x.chunk(2, dim=1)
    return torch.complex(real.float(), imag.float())


def fix_length(x: Tensor, length: int) -> Tensor:
    """Truncate or zero-pad the last dimension of ``x`` to ``length``."""
    cur = x.shape[-1]
    if cur >= length:
        return x[..., :length]
    return torch.nn.functional.pad(x, (0, length - cur))


def upsample_condition(cond: Tensor, factor: int, num_frames: int) -> Tensor:
    """Repeat each frame of ``cond [B, C, N]`` ``factor`` times, then truncate/zero-pad to ``num_frames``.

    With ``L = N * 960`` samples a centred STFT has ``N * factor + 1`` frames, so the last frame receives
    a zero condition (as in the official model).
    """
    return fix_length(cond.repeat_interleave(factor, dim=-1), num_frames)


def branch_keep(drop: Tensor, which: Tensor, num_branches: int) -> Tensor:
    """Branch-dropout weights ``[B, R]``: item ``b`` with ``drop[b]`` loses branch ``which[b]`` and the other
    ``R - 1`` branches are scaled by ``R / (R - 1)`` (so a mean over branches keeps its scale); other items
    keep all branches with weight 1.

    Args:
        drop: ``[B]`` bool.
        which: ``[B]`` int64 in ``[0, R)``.
        num_branches: ``R`` (>= 2).
    """
    keep = torch.ones(drop.shape[0], num_branches, device=drop.device)
    rows = drop.nonzero().squeeze(-1)
    keep[rows, which[rows]] = 0.0
    keep[rows] *= num_branches / (num_branches - 1)
    return keep


def _run_blocks(blocks: nn.ModuleList, x: Tensor, cond: Tensor | None, time_embed: Tensor | None,
                recompute: bool) -> Tensor:
    """Apply ConvNeXt ``blocks`` to ``x [B, C, T]``, each projecting ``cond [B, Cc, T]`` itself.

    With ``recompute`` every block runs under ``torch.utils.checkpoint`` (non-reentrant): only its inputs
    are kept for the backward pass and its activations are recomputed there.
    """
    for block in blocks:
        x = checkpoint(_block_step, block, x, cond, time_embed, use_reentrant=False) if recompute else \
            _block_step(block, x, cond, time_embed)
    return x


def _recompute(module: nn.Module) -> bool:
    """Whether ``module`` should checkpoint its blocks now (flag set, training, gradients on)."""
    return bool(getattr(module, "gradient_checkpointing", False)) and module.training and torch.is_grad_enabled()


def _block_step(block: ConvNeXtBlock, x: Tensor, cond: Tensor | None, time_embed: Tensor | None) -> Tensor:
    """One block, its condition projection included (so a checkpoint keeps ``cond`` once, not per block)."""
    return block(x, block.project_cond(cond) if cond is not None else None, time_embed)


# ---------------------------------------------------------------------------------- modules


class _Window(nn.Module):
    """Holds a periodic Hann window as a non-persistent buffer (official name ``<module>.window``)."""

    def __init__(self, n_fft: int) -> None:
        super().__init__()
        self.register_buffer("window", hann_window(n_fft), persistent=False)


class LinearFilterSpectrogram(nn.Module):
    """Power spectrogram followed by a linear triangular filterbank (the stage-1 loss front end).

    Args:
        sample_rate: Hz.
        n_fft, hop_length: STFT parameters (samples).
        n_filters: number of linearly spaced triangular filters over 0..sample_rate/2.
    """

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_filters: int) -> None:
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.spectrogram = _Window(n_fft)
        self.register_buffer("fb", linear_filterbank(n_fft // 2 + 1, n_filters, sample_rate), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, L]`` -> filterbank energies ``[B, n_filters, 1 + L // hop]``."""
        power = stft(x.float(), self.n_fft, self.hop_length, self.spectrogram.window).abs().pow(2)
        return torch.matmul(power.transpose(1, 2), self.fb).transpose(1, 2)


class CondEncoder(nn.Module):
    """Latents ``[B, D, N]`` -> condition ``[B, C, N]``: Conv1d(k=3) -> BiasNorm -> ConvNeXt blocks."""

    def __init__(self, cfg: VocoderConfig) -> None:
        super().__init__()
        c = cfg.cond_enc_channels
        self.in_proj = nn.Conv1d(cfg.latent_dim, c, 3, padding=1)
        self.in_norm = BiasNorm(c)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(c, cfg.cond_enc_hidden_factor * c, cfg.cond_enc_kernel_size, residual_scale=cfg.residual_scale)
            for _ in range(cfg.cond_enc_num_layers)
        )
        self.gradient_checkpointing = False

    def forward(self, latents: Tensor) -> Tensor:
        """Encode ``latents [B, D, N]`` into ``[B, cond_enc_channels, N]``."""
        x = self.in_norm(self.in_proj(latents))
        return _run_blocks(self.blocks, x, None, None, _recompute(self))


@dataclass
class BranchCondition:
    """The part of a branch's computation that depends only on the latents (reused across Euler steps).

    Attributes:
        cond: ``cond_mlp`` output ``[B, Cc, T_r]`` at the branch frame rate.
        per_block: each block's projected condition ``[B, C_r, T_r]``, or None to project on the fly.
    """

    cond: Tensor
    per_block: list[Tensor] | None = None


class ConvNeXtDecoder(nn.Module):
    """Spectral ConvNeXt stack of one branch: ``[B, n_fft+2, T] -> [B, n_fft+2, T]``."""

    def __init__(self, cfg: VocoderConfig, branch: int) -> None:
        super().__init__()
        c, k, n_fft = cfg.channels[branch], cfg.kernel_sizes[branch], cfg.n_ffts[branch]
        cc, te, hf = cfg.cond_enc_channels, cfg.time_embed_dim, cfg.hidden_factor
        self.time_embed_dim = te
        self.in_proj = nn.Conv1d(n_fft + 2, c, 1)
        self.in_norm = BiasNorm(c)
        self.time_mlp = nn.Sequential(nn.Linear(te, hf * te), nn.SiLU(), nn.Linear(hf * te, te))
        self.cond_mlp = nn.Sequential(nn.Conv1d(cc, hf * cc, 1), nn.PReLU(hf * cc, init=0.25), nn.Conv1d(hf * cc, cc, 1))
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(c, hf * c, k, cond_channels=cc, time_embed_channels=te, residual_scale=cfg.residual_scale)
            for _ in range(cfg.num_layers[branch])
        )
        self.out_proj = nn.Conv1d(c, n_fft + 2, 1)
        self.gradient_checkpointing = False

    def prepare(self, cond_frames: Tensor, project_blocks: bool) -> BranchCondition:
        """Run ``cond_mlp`` (and optionally every block's ``cond_proj``) on ``cond_frames [B, Cc, T]``."""
        cond = self.cond_mlp(cond_frames)
        per_block = [blk.project_cond(cond) for blk in self.blocks] if project_blocks else None
        return BranchCondition(cond, per_block)

    def forward(self, spec: Tensor, condition: BranchCondition, t: Tensor) -> Tensor:
        """Denoise one spectrogram.

        Args:
            spec: ``[B, n_fft+2, T]`` real/imag channels of the noisy waveform.
            condition: from :meth:`prepare`.
            t: ``[B]`` flow time in [0, 1).
        """
        temb = self.time_mlp(sinusoidal_time_embedding(t, self.time_embed_dim).to(spec.dtype))
        x = self.in_norm(self.in_proj(spec))
        if condition.per_block is None:
            x = _run_blocks(self.blocks, x, condition.cond, temb, _recompute(self))
        else:  # sampling: the projections were computed once for all steps
            for block, cproj in zip(self.blocks, condition.per_block):
                x = block(x, cproj, temb)
        return self.out_proj(x)


class AudioConvNeXt(nn.Module):
    """One branch: STFT at (n_fft, hop) -> ConvNeXtDecoder -> ISTFT, waveform ``[B, L] -> [B, L]``."""

    def __init__(self, cfg: VocoderConfig, branch: int) -> None:
        super().__init__()
        self.n_fft, self.hop_length = cfg.n_ffts[branch], cfg.hop_lengths[branch]
        self.upsample = cfg.hop_length // self.hop_length
        self.fft = _Window(self.n_fft)
        self.ifft = _Window(self.n_fft)
        self.decoder = ConvNeXtDecoder(cfg, branch)

    def prepare(self, cond: Tensor, num_samples: int, project_blocks: bool = False) -> BranchCondition:
        """Bring ``cond [B, Cc, N]`` to this branch's ``1 + L // hop`` frames and run the condition MLPs."""
        frames = upsample_condition(cond, self.upsample, 1 + num_samples // self.hop_length)
        return self.decoder.prepare(frames, project_blocks)

    def forward(self, audio: Tensor, condition: BranchCondition, t: Tensor) -> Tensor:
        """Predict the clean waveform ``[B, L]`` from the noisy ``audio [B, L]`` at times ``t [B]``."""
        spec = spec_to_channels(stft(audio.float(), self.n_fft, self.hop_length, self.fft.window))
        out = self.decoder(spec.to(audio.dtype), condition, t)
        wav = istft(channels_to_spec(out), self.n_fft, self.hop_length, self.ifft.window)
        return fix_length(wav, audio.shape[-1]).to(audio.dtype)


class VocoderGenerator(nn.Module):
    """The full generator; ``forward`` is one network evaluation ``pred(x_t, t | latents)``.

    Args:
        cfg: the vocoder configuration.
    """

    def __init__(self, cfg: VocoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.loss_spec = LinearFilterSpectrogram(cfg.sample_rate, cfg.loss_n_fft, cfg.loss_hop_length, cfg.loss_n_filters)
        self.cond_encoder = CondEncoder(cfg)
        self.estimators = nn.ModuleList(AudioConvNeXt(cfg, r) for r in range(cfg.num_branches))

    def prepare_condition(self, latents: Tensor, num_samples: int, project_blocks: bool = False) -> list[BranchCondition]:
        """Everything that depends only on ``latents [B, D, N]``, for output length ``num_samples``."""
        cond = self.cond_encoder(latents)
        return [est.prepare(cond, num_samples, project_blocks) for est in self.estimators]

    def branch_outputs(self, x_t: Tensor, t: Tensor, condition: list[BranchCondition]) -> Tensor:
        """Each branch's waveform estimate, stacked: ``[B, R, L]``."""
        return torch.stack([est(x_t, cond, t) for est, cond in zip(self.estimators, condition)], dim=1)

    def fuse(self, branches: Tensor, keep: Tensor | None = None) -> Tensor:
        """``[B, R, L] -> [B, L]`` by mean (or sum); in training, drop one random branch per item with
        probability ``branch_dropout`` and rescale the others by ``R / (R - 1)``.

        Args:
            branches: ``[B, R, L]`` branch outputs.
            keep: ``[B, R]`` branch weights from :func:`branch_keep` (the trainer's per-item draws); None
                draws them from the process RNG.  Used only in training with ``branch_dropout > 0``.
        """
        num = branches.shape[1]
        if self.training and self.cfg.branch_dropout > 0 and num > 1:
            if keep is None:
                b = branches.shape[0]
                drop = torch.rand(b, device=branches.device) < self.cfg.branch_dropout
                keep = branch_keep(drop, torch.randint(0, num, (b,), device=branches.device), num)
            branches = branches * keep.to(branches).unsqueeze(-1)
        return branches.mean(dim=1) if self.cfg.branch_reduction == "mean" else branches.sum(dim=1)

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """Recompute every ConvNeXt block (condition encoder and all branches) in the backward pass while
        training, instead of storing its activations: less memory for about one more forward pass."""
        for module in self.modules():
            if isinstance(module, (CondEncoder, ConvNeXtDecoder)):
                module.gradient_checkpointing = bool(enabled)

    # ------------------------------------------------------------------- soft parameter ranges
    def param_limits(self) -> list[tuple[nn.Parameter, float, float]]:
        """``(parameter, low, high)`` of every softly range-limited parameter (BiasNorm log-scales,
        ChannelScale scales), in module order."""
        limits = []
        for module in self.modules():
            if isinstance(module, BiasNorm):
                limits.append((module.log_scale, *LOG_SCALE_LIMITS))
            elif isinstance(module, ChannelScale):
                limits.append((module.scale, *CHANNEL_SCALE_LIMITS))
        return limits

    def limit_params_on_synced_grads(self, enabled: bool = True) -> None:
        """Move the soft range constraint from the backward pass to :meth:`apply_param_limits_`.

        In the backward pass each data-parallel process flips the signs of *its own* gradient share, so the
        result depends on how the batch is split; applied after the gradients are averaged (and accumulated)
        it depends only on the global batch.  The trainer then calls :meth:`apply_param_limits_` before every
        optimizer step.
        """
        for module in self.modules():
            if isinstance(module, (BiasNorm, ChannelScale)):
                module.limit_in_forward = not enabled

    def apply_param_limits_(self, prob: float = LIMIT_PROB) -> None:
        """For each limited parameter, with probability ``prob`` (one draw from the process RNG each, which
        every process holds alike), reverse the gradient components that push it out of range."""
        for param, low, high in self.param_limits():
            if float(torch.rand(())) < prob:
                reverse_outward_grad_(param, low, high)

    def forward(
        self,
        x_t: Tensor,
        t: Tensor,
        *,
        latents: Tensor | None = None,
        condition: list[BranchCondition] | None = None,
        branch_keep: Tensor | None = None,
    ) -> Tensor:
        """One prediction, conditioned on ``latents`` or on a prepared ``condition`` (exactly one).

        Args:
            x_t: noisy waveform ``[B, L]`` with ``L = N * hop_length``.
            t: flow time ``[B]`` in [0, 1).
            latents: ``[B, D, N]`` semantic latents (training path).
            condition: from :meth:`prepare_condition` with the same ``L`` (sampling path, reused per step).
            branch_keep: ``[B, R]`` branch-dropout weights for training (see :meth:`fuse`); None draws them.

        Returns:
            ``[B, L]``: the clean-waveform estimate (``pred_x1``) or the velocity.
        """
        if (latents is None) == (condition is None):
            raise ValueError("pass exactly one of latents= or condition=")
        if condition is None:
            condition = self.prepare_condition(latents, x_t.shape[-1])
        return self.fuse(self.branch_outputs(x_t, t, condition), branch_keep)
