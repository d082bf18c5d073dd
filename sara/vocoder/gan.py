"""Stage-2 (few-step GAN) fine-tuning of a SemanticVocoder generator (Flow2GAN, spec C.2).

The generator starts from a stage-1 (flow-matching) model and is trained *through* a fixed ``k``-step
Euler sampler (gradients flow through all ``k`` network evaluations, no clamping) against a
multi-period and a multi-resolution discriminator, with hinge losses, feature matching and a 7-scale
log-mel L1 reconstruction loss.  A ``k``-step checkpoint is meant to be run with exactly ``k`` steps, so
the exported release sets ``default_steps = k``.

One optimizer, one backward per batch: the discriminator terms see the generated audio detached, and the
generator's adversarial and feature-matching terms are computed with the discriminators' parameters
frozen (``requires_grad_(False)`` while that forward pass is recorded), so each half receives exactly the
gradients of its own loss.  Both halves are updated from the same discriminator state (Flow2GAN
alternates a discriminator step and a generator step on each batch; the difference is one step of
staleness).  The discriminator trains alone for the first ``gen_start_step`` steps.
With ``adversarial=False`` there are no discriminators and the generator is fine-tuned through the sampler
on the mel loss alone: far cheaper on a CPU, where a GAN step costs one to two orders of magnitude more than
a stage-1 step (``benchmarks/bench_vocoder_train.py``), at the price of the over-smoothed detail that a pure
regression loss gives.
Optimiser: ScaledAdam with one parameter group per half (lr 0.002 generator / 0.02 discriminator, separate
gradient clipping) and Eden2 (lr_batches 20000 / 5000).

sara extension, off by default (``semantic_weight = 0``): a *semantic consistency* term, the relative squared
error between the frozen semantic encoder's latents of the generated and of the real segment
(:func:`semantic_consistency_loss`).  The vocoder's input *is* those latents, so re-encoding its output
should give them back, and the encoder's class-aware features score the detail a regression loss
over-smooths.  Measured on the demo corpus (40 min each from the same start, valid split): no gain over the
``mel_floor`` change alone (classifier accuracy on reconstructions 0.168 with it vs 0.181 without).

Assumption: the 7 mel-scale L1 terms are summed (DAC's ``MelSpectrogramLoss`` convention, from which the
Flow2GAN loss is adapted); the spec gives the scales, not the reduction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from sara.audio.dsp import mel_spectrogram
from sara.errors import ConfigError
from sara.train.task import LossOutput
from sara.vocoder.discriminators import DiscriminatorConfig, Discriminators, Features, Scores
from sara.vocoder.grow import deepen_generator, grown_min_rms, grown_parameters
from sara.vocoder.model import VocoderGenerator
from sara.vocoder.optim import Eden2, ScaledAdam
from sara.vocoder.sampler import euler_sample
from sara.vocoder.training import VocoderTask, VocoderTrainConfig
from sara.vocoder.vocoder import SemanticVocoder

__all__ = ["GANVocoder", "VocoderGANTask", "VocoderGANTrainConfig", "discriminator_hinge_loss",
           "feature_matching_loss", "generator_hinge_loss", "multi_scale_mel_loss", "semantic_consistency_loss"]

MEL_SCALES: tuple[tuple[int, int], ...] = ((32, 5), (64, 10), (128, 20), (256, 40), (512, 80), (1024, 160), (2048, 320))


# ------------------------------------------------------------------------------------------- losses
def multi_scale_mel_loss(pred: Tensor, ref: Tensor, sample_rate: int,
                         scales: tuple[tuple[int, int], ...] = MEL_SCALES, floor: float = 1e-7) -> Tensor:
    """Sum over scales of the mean L1 between ``log(clamp(mel, floor))`` magnitude spectrograms.

    Args:
        pred, ref: waveforms ``[B, L]`` at ``sample_rate``.
        scales: ``(n_fft, n_mels)`` pairs; hop = n_fft / 4, HTK mel, power 1.

    Returns:
        Scalar loss.
    """
    total = pred.new_zeros(())
    for n_fft, n_mels in scales:
        a = mel_spectrogram(pred.float(), sample_rate, n_fft, n_fft // 4, n_mels, power=1.0)
        b = mel_spectrogram(ref.float(), sample_rate, n_fft, n_fft // 4, n_mels, power=1.0)
        total = total + (a.clamp(min=floor).log() - b.clamp(min=floor).log()).abs().mean()
    return total


def semantic_consistency_loss(encoder: nn.Module, pred: Tensor, ref: Tensor, sample_rate: int) -> Tensor:
    """``||E(pred) - E(ref)||^2 / ||E(ref)||^2`` with the frozen semantic encoder ``E`` (gradients reach ``pred``).

    Args:
        encoder: a :class:`~sara.encoder.SemanticEncoder` (its parameters should not require gradients).
        pred, ref: waveforms ``[B, L]`` at ``sample_rate``; both are encoded with per-item dB floors, so the
            two sides see the same context and no batch mate changes either.

    Returns:
        Scalar relative error (0 = identical latents).
    """
    with torch.no_grad():
        target = encoder(encoder.to_model_rate(ref.float(), sample_rate), None, db_scope="item")
    latents = encoder(encoder.to_model_rate(pred.float(), sample_rate), None, db_scope="item")
    return (latents - target).pow(2).sum() / target.pow(2).sum().clamp(min=1e-8)


def discriminator_hinge_loss(real: Scores, fake: Scores) -> Tensor:
    """``sum_d mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``."""
    return sum((torch.relu(1 - r).mean() + torch.relu(1 + f).mean() for r, f in zip(real, fake)),
               start=real[0].new_zeros(()))


def generator_hinge_loss(fake: Scores) -> Tensor:
    """``sum_d mean(relu(1 - D(fake)))``."""
    return sum((torch.relu(1 - f).mean() for f in fake), start=fake[0].new_zeros(()))


def feature_matching_loss(real: Features, fake: Features) -> Tensor:
    """Sum over discriminators and layers of the mean L1 between real (detached) and fake activations."""
    total = fake[0][0].new_zeros(())
    for rs, fs in zip(real, fake):
        for r, f in zip(rs, fs):
            total = total + (r.detach() - f).abs().mean()
    return total


# -------------------------------------------------------------------------------------------- model
class GANVocoder(nn.Module):
    """What stage 2 trains: the ``generator`` and its ``discriminators`` (one checkpointed module).

    Every network evaluation of a training step happens in :meth:`forward`, so a DDP wrapper sees them.
    """

    def __init__(self, generator: VocoderGenerator, discriminators: Discriminators | None) -> None:
        super().__init__()
        self.generator = generator
        self.discriminators = discriminators
        self.register_buffer("num_batches", torch.zeros((), dtype=torch.long))  # training batches seen

    def generate(self, latents: Tensor, num_samples: int, steps: int) -> Tensor:
        """The ``steps``-step sample ``[B, num_samples]`` (differentiable, unclamped) for ``latents [B, D, N]``."""
        gen = self.generator
        x0 = torch.randn(latents.shape[0], num_samples, device=latents.device) * gen.cfg.init_noise_scale
        condition = gen.prepare_condition(latents, num_samples)
        return euler_sample(lambda x, t: gen(x, t, condition=condition), x0, steps, pred_x1=gen.cfg.pred_x1,
                            clamp=False)

    def forward(self, real: Tensor, latents: Tensor, steps: int, train_gen: bool) -> dict[str, Any]:
        """Generate from ``latents`` and score real and generated audio ``[B, L]``.

        Returns a dict with ``fake`` and, when there are discriminators, ``real_mpd``/``real_mrd`` (scores,
        features), ``fake_mpd``/``fake_mrd`` (on the detached fake) and, when ``train_gen``, ``gen_mpd``/
        ``gen_mrd`` (on the fake, with the discriminators' parameters frozen).
        """
        if train_gen:
            fake = self.generate(latents, real.shape[-1], steps)
        else:
            with torch.no_grad():
                fake = self.generate(latents, real.shape[-1], steps)
        out: dict[str, Any] = {"fake": fake}
        d = self.discriminators
        if d is None or not self.training:
            return out
        out.update(real_mpd=d.mpd(real), real_mrd=d.mrd(real), fake_mpd=d.mpd(fake.detach()),
                   fake_mrd=d.mrd(fake.detach()))
        if train_gen:
            d.requires_grad_(False)  # this pass gives gradients to the generated audio only
            try:
                out.update(gen_mpd=d.mpd(fake), gen_mrd=d.mrd(fake))
            finally:
                d.requires_grad_(True)
        return out


@dataclass(frozen=True)
class VocoderGANTrainConfig(VocoderTrainConfig):
    """Stage-2 settings on top of the stage-1 data settings (``lr``/``lr_batches`` of stage 1 are unused).

    Attributes:
        init: stage-1 vocoder to start from (release dir, official checkpoint dir or ``.pt``); None
            starts from a fresh generator (not useful except in tests).
        gen_steps: the fixed number of Euler steps ``k`` trained and exported.
        adversarial: train against discriminators (Flow2GAN); False = mel reconstruction loss only.
        discriminator: discriminator sizes.
        gen_start_step: batches during which only the discriminator trains.
        lr_gen, lr_disc: ScaledAdam base learning rates.
        lr_batches_gen, lr_batches_disc: Eden2 decay constants.
        mel_weight, adv_mpd_weight, adv_mrd_weight, fm_mpd_weight, fm_mrd_weight, disc_mpd_weight,
            disc_mrd_weight: loss weights (spec C.2 table).
        mel_floor: magnitude floor of the log-mel L1 (spec: 1e-7).  On a corpus with digital silence the
            floor decides where the loss goes: at 1e-7 most of the loss and nearly all of its gradient come
            from cells below 1e-4, i.e. from making silence silenter; 1e-4 spends it on audible content.
        semantic_weight: weight of :func:`semantic_consistency_loss` (sara extension; 0 = off, as in the
            paper); needs ``encoder``.
    """

    init: str | None = None
    gen_steps: int = 1
    adversarial: bool = True
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig.paper)
    gen_start_step: int = 1000
    lr_gen: float = 0.002
    lr_disc: float = 0.02
    lr_batches_gen: float = 20000.0
    lr_batches_disc: float = 5000.0
    mel_weight: float = 45.0
    adv_mpd_weight: float = 1.0
    adv_mrd_weight: float = 0.1
    fm_mpd_weight: float = 1.0
    fm_mrd_weight: float = 0.1
    disc_mpd_weight: float = 1.0
    disc_mrd_weight: float = 0.1
    semantic_weight: float = 0.0
    mel_floor: float = 1e-7

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gen_steps < 1:
            raise ValueError(f"gen_steps must be >= 1, got {self.gen_steps}")
        if self.gen_start_step < 0:
            raise ValueError(f"gen_start_step must be >= 0, got {self.gen_start_step}")
        if not self.mel_floor > 0:
            raise ValueError(f"mel_floor must be > 0, got {self.mel_floor}")
        if self.semantic_weight < 0:
            raise ValueError(f"semantic_weight must be >= 0, got {self.semantic_weight}")
        if self.semantic_weight > 0 and self.encoder is None:
            raise ValueError("semantic_weight > 0 needs the semantic encoder (encoder=...)")


class VocoderGANTask(VocoderTask):
    """Few-step GAN fine-tuning of a stage-1 generator."""

    name: ClassVar[str] = "vocoder_gan"
    config_class: ClassVar[type] = VocoderGANTrainConfig
    config: VocoderGANTrainConfig

    def build_model(self) -> nn.Module:
        """The generator (from ``init`` when given) and fresh discriminators."""
        cfg = self.config
        if cfg.init is not None:
            voc = SemanticVocoder.from_pretrained(cfg.init)
            if voc.config.latent_dim != cfg.model.latent_dim or voc.config.hop_length != cfg.model.hop_length:
                raise ConfigError(f"{cfg.init}: its generator ({voc.config.latent_dim}-d latents) does not match "
                                  f"the task's model config ({cfg.model.latent_dim}-d)")
            generator = VocoderGenerator(cfg.model)
            generator.load_state_dict(self._deepened(voc.generator).state_dict())
        else:
            generator = super().build_model()  # type: ignore[assignment]
        return GANVocoder(generator, Discriminators(cfg.discriminator) if cfg.adversarial else None)

    def _deepened(self, generator: VocoderGenerator) -> VocoderGenerator:
        """``generator`` (from ``init``), deepened by identity blocks to the task's ``num_layers`` if those are
        larger (:mod:`sara.vocoder.grow`); records the trained depths in ``self.base_num_layers``."""
        base, target = tuple(generator.cfg.num_layers), tuple(self.config.model.num_layers)
        self.base_num_layers = base
        if base == target:
            return generator
        try:
            return deepen_generator(generator, target)
        except ValueError as exc:
            raise ConfigError(f"{self.config.init}: {exc}") from None

    def _generator_groups(self, generator: VocoderGenerator) -> list[dict]:
        """The generator's parameter group, and a second one for blocks added by deepening (their zero
        output projections need an RMS floor under ScaledAdam, see :func:`grown_min_rms`)."""
        cfg, base = self.config, getattr(self, "base_num_layers", tuple(self.config.model.num_layers))
        grown = {id(p) for p in grown_parameters(generator, base)}
        trained = [p for p in generator.parameters() if p.requires_grad and id(p) not in grown]
        groups = [{"params": trained, "lr": cfg.lr_gen}]
        if grown:
            new = [p for p in generator.parameters() if p.requires_grad and id(p) in grown]
            floor = {"param_min_rms": grown_min_rms(generator, base)} if cfg.optimizer == "scaled_adam" else {}
            groups.append({"params": new, "lr": cfg.lr_gen, **floor})
        return groups

    def build_optimizer(self, model: nn.Module, max_steps: int) -> tuple[torch.optim.Optimizer, Any]:
        """One optimizer with a generator group (two after deepening) and a discriminator group, and Eden2
        per group."""
        cfg = self.config
        m = getattr(model, "module", model)
        groups = self._generator_groups(m.generator)
        lr_batches = [cfg.lr_batches_gen] * len(groups)
        if m.discriminators is not None:
            groups.append({"params": [p for p in m.discriminators.parameters() if p.requires_grad], "lr": cfg.lr_disc})
            lr_batches.append(cfg.lr_batches_disc)
        if cfg.optimizer == "scaled_adam":
            opt: torch.optim.Optimizer = ScaledAdam(groups, clipping_scale=cfg.clipping_scale, clip_per_group=True)
        else:
            opt = torch.optim.AdamW(groups, betas=(0.8, 0.99), weight_decay=cfg.weight_decay)
        return opt, Eden2(opt, lr_batches, cfg.warmup_batches, cfg.warmup_start)

    @property
    def ddp_find_unused_parameters(self) -> bool:
        """The generator has no gradients during the discriminator-only warm-up."""
        return self.config.adversarial and self.config.gen_start_step > 0

    # ------------------------------------------------------------------------------------ loss
    def compute_loss(self, model: nn.Module, batch: dict[str, Tensor]) -> LossOutput:
        """Discriminator + generator losses (training) or the k-step mel loss (evaluation)."""
        cfg = self.config
        m: GANVocoder = getattr(model, "module", model)
        real = batch["audio"].float()
        latents = self.batch_latents(batch)
        sr = cfg.model.sample_rate
        if not m.training:
            with torch.no_grad():
                mel = multi_scale_mel_loss(model(real, latents, cfg.gen_steps, False)["fake"], real, sr,
                                           floor=cfg.mel_floor)
            return LossOutput(mel, {"loss/mel": mel})
        train_gen = m.discriminators is None or int(m.num_batches) >= cfg.gen_start_step
        m.num_batches += 1
        out = model(real, latents, cfg.gen_steps, train_gen)
        if m.discriminators is None:
            mel = multi_scale_mel_loss(out["fake"], real, sr, floor=cfg.mel_floor)
            return self._add_semantic(out["fake"], real, cfg.mel_weight * mel, {"loss/mel": mel.detach()})
        (real_mpd, real_mpd_f), (real_mrd, real_mrd_f) = out["real_mpd"], out["real_mrd"]
        disc_mpd = discriminator_hinge_loss(real_mpd, out["fake_mpd"][0])
        disc_mrd = discriminator_hinge_loss(real_mrd, out["fake_mrd"][0])
        total = cfg.disc_mpd_weight * disc_mpd + cfg.disc_mrd_weight * disc_mrd
        terms = {"loss/disc_mpd": disc_mpd.detach(), "loss/disc_mrd": disc_mrd.detach()}
        if train_gen:
            (g_mpd, g_mpd_f), (g_mrd, g_mrd_f) = out["gen_mpd"], out["gen_mrd"]
            adv_mpd, adv_mrd = generator_hinge_loss(g_mpd), generator_hinge_loss(g_mrd)
            fm_mpd, fm_mrd = feature_matching_loss(real_mpd_f, g_mpd_f), feature_matching_loss(real_mrd_f, g_mrd_f)
            mel = multi_scale_mel_loss(out["fake"], real, sr, floor=cfg.mel_floor)
            total = total + (cfg.adv_mpd_weight * adv_mpd + cfg.adv_mrd_weight * adv_mrd + cfg.fm_mpd_weight * fm_mpd
                             + cfg.fm_mrd_weight * fm_mrd + cfg.mel_weight * mel)
            terms.update({"loss/adv_mpd": adv_mpd.detach(), "loss/adv_mrd": adv_mrd.detach(),
                          "loss/fm_mpd": fm_mpd.detach(), "loss/fm_mrd": fm_mrd.detach(), "loss/mel": mel.detach()})
            return self._add_semantic(out["fake"], real, total, terms)
        return LossOutput(total, terms)

    def _add_semantic(self, fake: Tensor, real: Tensor, total: Tensor, terms: dict[str, Tensor]) -> LossOutput:
        """``total`` plus the weighted semantic consistency term when it is on (logged as ``loss/semantic``)."""
        cfg = self.config
        if cfg.semantic_weight > 0:
            sem = semantic_consistency_loss(self.encoder(fake.device), fake, real, cfg.model.sample_rate)
            total = total + cfg.semantic_weight * sem
            terms = {**terms, "loss/semantic": sem.detach()}
        return LossOutput(total, terms)

    # ------------------------------------------------------------------------------ samples/export
    def _release(self, model: nn.Module) -> SemanticVocoder:
        m: GANVocoder = getattr(model, "module", model)
        cfg = dataclasses.replace(self.config.model, default_steps=self.config.gen_steps)
        generator = VocoderGenerator(cfg)
        generator.load_state_dict(m.generator.state_dict())
        return SemanticVocoder(cfg, generator=generator)

    @torch.no_grad()
    def log_samples(self, model: nn.Module, step: int, out_dir: Path) -> None:
        """Reconstruct validation clips with the trained ``k`` steps (see :meth:`VocoderTask.log_samples`)."""
        m: GANVocoder = getattr(model, "module", model)
        sample_cfg = dataclasses.replace(self.config, sample_steps=self.config.gen_steps)
        VocoderTask(sample_cfg).log_samples(m.generator, step, out_dir)

    def export(self, model: nn.Module, out_dir: Path) -> Path:
        """A SemanticVocoder release of the generator alone, with ``default_steps = gen_steps``."""
        voc = self._release(model)
        if self.config.encoder is not None:
            voc.encoder_path = Path(self.config.encoder)
        return voc.save_pretrained(out_dir)
