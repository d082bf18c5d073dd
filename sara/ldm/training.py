"""``LDMTask`` (``sara train ldm``): Tango's UNet training on cached mel-VAE latents.

Follows declare-lab/tango ``models.py`` ``AudioDiffusion.forward`` and ``train.py``:

* latent = ``scale_factor * posterior.sample()``, drawn fresh each step from the cached posterior;
* timesteps uniform in ``[0, 1000)``; ``x_t = scheduler.add_noise(x0, noise, t)``;
* target ``scheduler.get_velocity(x0, noise, t)`` (v-prediction, from the SD-2.1 schedule) or the noise;
* Min-SNR weighting exactly as Tango computes it: per-sample ``min(SNR, gamma) / SNR`` with
  ``SNR = alphas_cumprod / (1 - alphas_cumprod)``, **for v-prediction too** (the Min-SNR paper's v-prediction form
  divides by ``SNR + 1``; Tango, like diffusers' example script of the time, does not).  Weights are <= 1;
* condition dropout (Tango's ``--uncondition``): zero the text states of a sample, mask unchanged;
* AdamW lr 3e-5, betas (0.9, 0.999), eps 1e-8, weight decay 1e-2; linear decay to 0 with 0 warm-up steps;
  no gradient clipping (Tango's loop clips nothing);
* validation at the fixed timestep 500, no dropout: ``AudioDiffusion.forward(validation_mode=True)`` (Tango's
  ``train.py`` itself never passes that flag, so its logged validation loss uses random timesteps; a fixed
  timestep makes successive validations comparable).

Randomness: every per-sample draw (caption choice, posterior sample, noise, timestep, dropout) comes from a
``torch.Generator`` seeded by ``(seed, draw, index)``: ``index`` the item's dataset index and ``draw`` the number of
training micro-batches already seen, a buffer of the trained module saved with every checkpoint.  Nothing
reads the global RNG, so resuming is bit-exact and items differ across data-parallel ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from sara.errors import ConfigError
from sara.ldm.config import UNetConfig
from sara.ldm.data import CachedLatentDataset, check_latent_shape, collate_latents
from sara.ldm.schedulers import SchedulerConfig, make_scheduler
from sara.text.factory import TextEncoderSpec
from sara.train.task import LossOutput, TrainTask

__all__ = ["LDMTask", "LDMTrainConfig", "LDMTrainModule", "min_snr_weights", "training_target"]


@dataclass(frozen=True)
class LDMTrainConfig:
    """Task config of ``sara train ldm`` (Tango's values by default).

    Attributes:
        latent_cache: directory written by :func:`sara.ldm.cache.build_latent_cache` (latents and captions).
        unet: UNet architecture (ignored with ``init_from``).
        scheduler: diffusion schedule (SD-2.1 / Tango).
        text_encoder: frozen text encoder (``minilm`` for the demo, ``t5`` + a FLAN-T5 directory for Tango).
        init_from: a UNet release (``unet/`` or its parent), a training run directory or a Tango directory.
        lr / adam_betas / adam_eps / weight_decay: AdamW; warmup_steps / lr_schedule: the LR schedule
            (``linear``: warm-up then linear decay to 0 at the last step, Tango's; ``constant`` after warm-up).
        snr_gamma: Min-SNR gamma (None: plain MSE).
        uncondition_prob: probability of zeroing a sample's text states (Tango's ``--uncondition`` is 0.1, off in
            its ``train.sh``; sara's default 0.1 trains the unconditional branch that guidance needs).
        mixtures: also train on the cache's caption mixtures (Tango's ``--augment``).
        sample_posterior: draw ``mean + std * eps`` each step (Tango) rather than using the posterior mean.
        train_split / valid_split: cache splits (valid None: no validation).
        seed: seeds every per-sample draw (see the module docstring).
        vae / vocoder: releases used by ``log_samples`` to decode samples (optional).
        sample_prompts / sample_steps / sample_guidance: what ``log_samples`` generates (DPM-Solver++).
    """

    latent_cache: str
    unet: UNetConfig = field(default_factory=UNetConfig.small)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    text_encoder: TextEncoderSpec = field(default_factory=TextEncoderSpec)
    init_from: str | None = None
    lr: float = 3e-5
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    weight_decay: float = 1e-2
    warmup_steps: int = 0
    lr_schedule: Literal["linear", "constant"] = "linear"
    snr_gamma: float | None = 5.0
    uncondition_prob: float = 0.1
    mixtures: bool = True
    sample_posterior: bool = True
    train_split: str = "train"
    valid_split: str | None = "valid"
    seed: int = 0
    vae: str | None = None
    vocoder: str | None = None
    sample_prompts: tuple[str, ...] = ("a dog barks", "rain falls on a tin roof")
    sample_steps: int = 25
    sample_guidance: float = 3.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr}")
        if len(self.adam_betas) != 2 or not all(0.0 <= b < 1.0 for b in self.adam_betas):
            raise ValueError(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas}")
        if self.adam_eps <= 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError("adam_eps must be > 0, weight_decay and warmup_steps >= 0")
        if self.lr_schedule not in ("linear", "constant"):
            raise ValueError(f"lr_schedule must be 'linear' or 'constant', got {self.lr_schedule!r}")
        if self.snr_gamma is not None and not (math.isfinite(self.snr_gamma) and self.snr_gamma > 0):
            raise ValueError(f"snr_gamma must be positive (or None), got {self.snr_gamma}")
        if not 0.0 <= self.uncondition_prob < 1.0:
            raise ValueError(f"uncondition_prob must be in [0, 1), got {self.uncondition_prob}")
        if self.sample_steps < 1:
            raise ValueError(f"sample_steps must be >= 1, got {self.sample_steps}")


class LDMTrainModule(nn.Module):
    """What the loop trains and checkpoints: the diffusers UNet plus the ``draws`` counter.

    Args:
        unet: a diffusers ``UNet2DConditionModel`` (exported as is).
    """

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet
        self.register_buffer("draws", torch.zeros((), dtype=torch.long))  # training micro-batches seen

    def forward(self, x_t: Tensor, t: Tensor, states: Tensor, mask: Tensor, drop: Tensor) -> Tensor:
        """UNet output ``[B, C, H, W]`` for ``x_t [B, C, H, W]`` at timesteps ``t [B]``.

        Args:
            states / mask: text ``[B, L, D]`` / ``[B, L]`` bool.
            drop: ``[B]`` bool; True zeroes that sample's states (condition dropout, mask unchanged).
        """
        states = states.masked_fill(drop[:, None, None], 0.0)
        return self.unet(x_t, t, encoder_hidden_states=states, encoder_attention_mask=mask).sample


def min_snr_weights(alphas_cumprod: Tensor, timesteps: Tensor, gamma: float) -> Tensor:
    """Tango's Min-SNR loss weights ``min(SNR_t, gamma) / SNR_t`` ``[B]`` (<= 1) for ``timesteps [B]``.

    ``SNR_t = (sqrt(abar_t) / sqrt(1 - abar_t))^2`` as ``AudioDiffusion.compute_snr``; no ``+ 1`` for v-prediction.
    """
    ac = alphas_cumprod.to(timesteps.device)[timesteps].float()
    snr = (ac**0.5 / (1.0 - ac) ** 0.5) ** 2
    return torch.minimum(snr, torch.full_like(snr, gamma)) / snr


def training_target(scheduler: Any, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """The regression target: ``scheduler.get_velocity(x0, noise, t)`` for v-prediction, else ``noise``."""
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(x0, noise, t)
    return noise


@dataclass
class _Draws:
    """Per-sample random choices of one batch (CPU)."""

    caption: list[int]
    t: Tensor
    drop: Tensor
    eps: Tensor
    noise: Tensor


def _row_seed(seed: int, draw: int, index: int) -> int:
    return ((seed * 1_000_003 + draw + 1) * 1_000_033 + index) % (2**63 - 1)


def draw_batch(seed: int, draw: int, indices: list[int], captions: list[tuple[str, ...]], shape: tuple[int, ...],
               num_timesteps: int, uncondition_prob: float, validation: bool) -> _Draws:
    """Everything random about a batch, each row from its own generator seeded by ``(seed, draw, index)``.

    Validation (``draw = -1``) fixes ``t = num_timesteps // 2`` and never drops the text.
    """
    rows = []
    for index, caps in zip(indices, captions, strict=True):
        g = torch.Generator().manual_seed(_row_seed(seed, draw, index))
        cap = int(torch.randint(len(caps), (1,), generator=g))
        t = num_timesteps // 2 if validation else int(torch.randint(num_timesteps, (1,), generator=g))
        drop = (not validation) and float(torch.rand((), generator=g)) < uncondition_prob
        rows.append((cap, t, drop, torch.randn(shape, generator=g), torch.randn(shape, generator=g)))
    caps, ts, drops, eps, noise = zip(*rows, strict=True)
    return _Draws(list(caps), torch.tensor(ts, dtype=torch.long), torch.tensor(drops, dtype=torch.bool),
                  torch.stack(eps), torch.stack(noise))


class LDMTask(TrainTask):
    """Trains the Tango UNet (see the module docstring)."""

    name: ClassVar[str] = "ldm"
    config_class: ClassVar[type] = LDMTrainConfig
    default_grad_clip: ClassVar[float | None] = None  # Tango clips nothing
    text_cache_size: ClassVar[int] = 65536  # captions whose frozen states are kept (CPU)

    def __init__(self, config: LDMTrainConfig, conditioner: Any | None = None) -> None:
        """``conditioner``: an already built :class:`~sara.ldm.conditioning.TextConditioner` (else lazily built)."""
        super().__init__(config)
        self._conditioner = conditioner
        self._text_cache: dict[str, Tensor] = {}
        self._init_config: UNetConfig | None = None
        self.noise_scheduler = make_scheduler("ddpm", config.scheduler)

    @property
    def conditioner(self) -> Any:
        """The frozen text conditioner (built on first use)."""
        if self._conditioner is None:
            from sara.ldm.conditioning import build_conditioner

            self._conditioner = build_conditioner(self.config.text_encoder)
        return self._conditioner

    # ------------------------------------------------------------------------------------- parts

    def build_model(self) -> LDMTrainModule:
        """A fresh UNet of ``config.unet``, or the ``init_from`` source's UNet, wrapped with the draw counter."""
        from sara.ldm.unet import build_unet, load_any_unet

        if not self.config.init_from:
            return LDMTrainModule(build_unet(self.config.unet).train())
        return LDMTrainModule(load_any_unet(self.config.init_from).train())

    def unet_config(self) -> UNetConfig:
        """The trained UNet's architecture (the init source's when ``init_from`` is set)."""
        if not self.config.init_from:
            return self.config.unet
        if self._init_config is None:
            from sara.ldm.unet import load_any_unet

            self._init_config = UNetConfig.from_unet(load_any_unet(self.config.init_from))
        return self._init_config

    def build_datasets(self) -> tuple[CachedLatentDataset, CachedLatentDataset | None]:
        """Train (clips + mixtures) and valid (clips) items of the cache; checks latent and text widths."""
        cfg = self.config
        train = CachedLatentDataset(cfg.latent_cache, cfg.train_split, mixtures=cfg.mixtures)
        if len(train) == 0:
            raise ConfigError(f"{cfg.latent_cache}: no {cfg.train_split!r} items in the latent cache")
        unet_cfg = self.unet_config()
        check_latent_shape(train.latent_shape, unet_cfg.in_channels)
        if self.conditioner.dim != unet_cfg.cross_attention_dim:
            raise ConfigError(f"text encoder width {self.conditioner.dim} != UNet cross_attention_dim "
                              f"{unet_cfg.cross_attention_dim}")
        valid = None
        if cfg.valid_split:
            valid = CachedLatentDataset(cfg.latent_cache, cfg.valid_split)
            valid = valid if len(valid) else None
        return train, valid

    def collate(self, items: list[dict]) -> dict:
        """See :func:`~sara.ldm.data.collate_latents`."""
        return collate_latents(items)

    def build_optimizer(self, model: nn.Module, max_steps: int):  # noqa: ANN201 - (optimizer, scheduler)
        """AdamW with Tango's settings and a linear (or constant) schedule after ``warmup_steps``."""
        cfg = self.config
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.adam_betas), eps=cfg.adam_eps,
                                weight_decay=cfg.weight_decay)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(cfg.lr_schedule, cfg.warmup_steps, max_steps))

    # -------------------------------------------------------------------------------------- loss

    def compute_loss(self, model: nn.Module, batch: dict) -> LossOutput:
        """One Tango training step on ``batch`` (``mean``/``std`` ``[B, C, H, W]``, ``index``, ``captions``).

        In eval mode (the loop's validation) the timestep is 500 and nothing is dropped.
        """
        inner = getattr(model, "module", model)  # DDP
        draws = self._draw(inner, batch)
        device = batch["mean"].device
        x0 = batch["mean"] + batch["std"] * draws.eps.to(device) if self.config.sample_posterior else batch["mean"]
        t, noise = draws.t.to(device), draws.noise.to(device)
        x_t = self.noise_scheduler.add_noise(x0, noise, t)
        self.conditioner.to(device)
        states, mask = self.encode_captions([c[i] for c, i in zip(batch["captions"], draws.caption, strict=True)])
        pred = model(x_t, t, states.to(device), mask.to(device), draws.drop.to(device))
        return self._weighted_loss(pred, training_target(self.noise_scheduler, x0, noise, t), t)

    def _draw(self, inner: nn.Module, batch: dict) -> _Draws:
        """The batch's random choices; a training call advances the module's ``draws`` counter."""
        validation = not inner.training
        draws = draw_batch(self.config.seed, -1 if validation else int(inner.draws), batch["index"].tolist(),
                           batch["captions"], tuple(batch["mean"].shape[1:]),
                           self.noise_scheduler.config.num_train_timesteps, self.config.uncondition_prob, validation)
        if not validation:
            inner.draws += 1
        return draws

    def _weighted_loss(self, pred: Tensor, target: Tensor, t: Tensor) -> LossOutput:
        """Per-sample MSE ``[B]``, Min-SNR weighted (when ``snr_gamma``), averaged over the batch."""
        mse = (pred.float() - target.float()).pow(2).mean(dim=tuple(range(1, pred.dim())))
        weights = torch.ones_like(mse) if self.config.snr_gamma is None else min_snr_weights(
            self.noise_scheduler.alphas_cumprod, t, self.config.snr_gamma)
        loss = (mse * weights).mean()
        return LossOutput(total=loss, terms={"loss/diffusion": loss.detach(), "loss/mse": mse.mean().detach()})

    def encode_captions(self, captions: list[str]) -> tuple[Tensor, Tensor]:
        """Frozen text states ``[B, L, D]`` + mask ``[B, L]`` (CPU), each caption encoded alone and memoised."""
        from sara.text.base import pad_states

        rows = []
        for caption in captions:
            if caption not in self._text_cache:
                if len(self._text_cache) >= self.text_cache_size:
                    self._text_cache.pop(next(iter(self._text_cache)))
                states, mask = self.conditioner.encode([caption])
                self._text_cache[caption] = states[0, mask[0]].cpu()
            rows.append(self._text_cache[caption])
        return pad_states(rows)

    # --------------------------------------------------------------------------- samples / export

    @torch.no_grad()
    def log_samples(self, model: nn.Module, step: int, out_dir: Path) -> None:
        """Sampled latents ``<i>.safetensors`` (DPM-Solver++, CFG), decoded to ``<i>.wav`` with ``vae`` + ``vocoder``."""
        from sara.ldm.samples import write_samples

        unet = getattr(model, "module", model).unet
        write_samples(unet, self.conditioner, self.config, CachedLatentDataset(
            self.config.latent_cache, self.config.train_split).latent_shape, out_dir)

    def export(self, model: nn.Module, out_dir: Path) -> Path:
        """A LatentDiffusion release (``unet/`` + ``vae/`` + ``vocoder/`` + text spec) when the config names the
        ``vae`` and ``vocoder``, else the UNet alone as a release (``config.json`` class ``LDMUNet``)."""
        from sara.ldm.unet import save_unet_release

        unet = getattr(model, "module", model).unet
        if self.config.vae is None or self.config.vocoder is None:
            return save_unet_release(unet, out_dir, UNetConfig.from_unet(unet))
        from sara.ldm.samples import export_pipeline

        return export_pipeline(unet, self.config, out_dir)


def lr_factor(schedule: str, warmup: int, max_steps: int) -> Any:
    """``step -> factor`` of Tango's ``get_scheduler``: linear warm-up, then linear decay to 0 (or constant)."""
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return step / warmup
        if schedule == "constant":
            return 1.0
        return max(0.0, (max_steps - step) / max(1, max_steps - warmup))

    return factor

