"""Training the EnCodec codec on the shared loop (``sara train codec``), following audiocraft's compression solver.

Losses (``config/solver/compression/default.yaml``): time-domain L1 (weight 0.1), multi-scale mel ``msspec``
(2), MS-STFT discriminator hinge adversarial (4) and L1 feature matching (4), all combined by the
:class:`~sara.codec.balancer.LossBalancer` w.r.t. the decoder output (total norm 1, EMA 0.999, per item),
plus the quantizer's commitment loss (weight 1, outside the balancer, as audiocraft's ``penalty``).  The
discriminator is trained with the hinge loss on the detached reconstruction every step.  Optimiser:
Adam lr 3e-4, betas (0.5, 0.9), no weight decay, no gradient clipping, for both halves.

One module, one optimizer with two parameter groups, one backward (the :mod:`sara.vocoder.gan` pattern):
the discriminator's terms see the reconstruction detached, and the generator's adversarial / feature terms
are computed with the discriminator's parameters frozen, so each half gets exactly its own gradients; both
halves update from the same discriminator state (audiocraft steps the discriminator first: one step of
staleness).  ``adversarial=False`` drops the discriminator (L1 + msspec only): far cheaper on a CPU.

Codebook EMA / k-means / dead-code updates happen inside the training forward (buffers of the model,
so checkpointed); their randomness comes from a generator seeded by ``(seed, batches seen)``, the batch
counter being a buffer too, so a resumed run is bit-exact.  Under DDP the quantizer broadcasts its k-means
and replacement decisions from rank 0 and averages the EMA statistics over ranks (and accelerate's DDP
also broadcasts buffers from rank 0 before each forward), so codebooks stay identical on every rank; the
balancer averages its gradient norms over ranks (both checked with two gloo processes in
``tests/codec/test_distributed.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from sara.codec.balancer import LossBalancer
from sara.codec.config import CodecConfig
from sara.codec.data import CodecWindowDataset, collate_windows, item_seed, random_crops
from sara.codec.discriminator import MSSTFTDConfig, MultiScaleSTFTDiscriminator
from sara.codec.losses import (
    MultiScaleMelLoss,
    discriminator_hinge_loss,
    feature_matching_loss,
    generator_hinge_loss,
)
from sara.codec.model import EncodecCodec
from sara.errors import ConfigError
from sara.train.task import LossOutput, TrainTask
from sara.vocoder.data import list_clips

__all__ = ["CodecTask", "CodecTrainConfig", "CodecTrainModule", "codec_from_training_module"]

MSSPEC_REFLECT_PAD = (1024 - 256) // 2  # the largest msspec scale pads (n_fft - hop) // 2 on each side


@dataclass(frozen=True)
class CodecTrainConfig:
    """Task settings besides the generic loop ones.

    Attributes:
        model: the codec architecture.
        train_data / valid_data: manifests, audio directories or files (valid: default = the train
            manifests' ``valid`` split).
        segment_seconds: crop length (audiocraft: 1 s).
        window_seconds: longest audio window read per item (longer files are split); crops are drawn inside.
        seed: seed of the crops and of the quantizer's randomness.
        adversarial: train against the MS-STFT discriminator.
        discriminator: its sizes.
        balance_grads: audiocraft's gradient balancer; False = plain weighted sum with the same weights.
        l1_weight, msspec_weight, adv_weight, feat_weight: balancer weights.
        commitment_weight: weight of the commitment loss (outside the balancer).
        balancer_total_norm, balancer_ema_decay: balancer settings.
        lr, disc_lr: Adam learning rates (``disc_lr`` None = ``lr``); betas as audiocraft.
        min_rms: silent training crops are re-drawn.
        num_log_samples: clips reconstructed by ``log_samples``.
    """

    model: CodecConfig = field(default_factory=CodecConfig.small)
    train_data: tuple[str, ...] = ()
    valid_data: tuple[str, ...] = ()
    segment_seconds: float = 1.0
    window_seconds: float = 10.0
    seed: int = 0
    adversarial: bool = True
    discriminator: MSSTFTDConfig = field(default_factory=MSSTFTDConfig.paper)
    balance_grads: bool = True
    l1_weight: float = 0.1
    msspec_weight: float = 2.0
    adv_weight: float = 4.0
    feat_weight: float = 4.0
    commitment_weight: float = 1.0
    balancer_total_norm: float = 1.0
    balancer_ema_decay: float = 0.999
    lr: float = 3e-4
    disc_lr: float | None = None
    betas: tuple[float, float] = (0.5, 0.9)
    min_rms: float = 1e-3
    num_log_samples: int = 2

    def __post_init__(self) -> None:
        if self.segment_samples < self.model.hop_length:
            raise ValueError(f"segment_seconds {self.segment_seconds} is shorter than one codec frame")
        if self.segment_samples <= MSSPEC_REFLECT_PAD:
            raise ValueError(f"segment_seconds {self.segment_seconds} is too short for the multi-scale mel loss "
                             f"(its 1024-point scale reflect-pads {MSSPEC_REFLECT_PAD} samples)")
        if self.adversarial and self.segment_samples < max(self.discriminator.n_ffts):
            raise ValueError(f"segment_seconds {self.segment_seconds} is shorter than the discriminator's "
                             f"largest FFT ({max(self.discriminator.n_ffts)} samples)")
        weights = (self.l1_weight, self.msspec_weight, self.adv_weight, self.feat_weight, self.commitment_weight)
        if min(weights) < 0 or self.l1_weight + self.msspec_weight <= 0:
            raise ValueError("loss weights must be >= 0 with a positive reconstruction weight")
        if self.window_seconds < self.segment_seconds:
            raise ValueError(f"window_seconds {self.window_seconds} is shorter than segment_seconds")
        if self.lr <= 0 or (self.disc_lr is not None and self.disc_lr <= 0):
            raise ValueError("learning rates must be > 0")

    @property
    def segment_samples(self) -> int:
        """Crop length in samples at the codec rate."""
        return round(self.segment_seconds * self.model.sample_rate)

    def balancer_weights(self) -> dict[str, float]:
        """The balanced losses and their weights (zero-weight reconstruction terms are left out)."""
        weights = {k: w for k, w in (("l1", self.l1_weight), ("msspec", self.msspec_weight)) if w > 0}
        if self.adversarial:
            weights.update(adv=self.adv_weight, feat=self.feat_weight)
        return weights


class CodecTrainModule(nn.Module):
    """What the codec task trains: ``codec``, optional ``discriminator``, the ``balancer`` state and a batch
    counter (all checkpointed).  Every network evaluation happens in :meth:`forward` (DDP sees them)."""

    def __init__(self, codec: EncodecCodec, discriminator: MultiScaleSTFTDiscriminator | None,
                 balancer: LossBalancer, seed: int) -> None:
        super().__init__()
        self.codec, self.discriminator, self.balancer, self.seed = codec, discriminator, balancer, seed
        self.register_buffer("num_batches", torch.zeros((), dtype=torch.long))

    def generator(self, stream: int) -> torch.Generator:
        """Randomness of the current batch for ``stream`` (0: crops, 1: quantizer): a function of
        ``(seed, stream, batches seen)``."""
        return torch.Generator().manual_seed(item_seed(self.seed, stream, int(self.num_batches)))

    def forward(self, real: Tensor) -> dict[str, Any]:
        """Reconstruct ``real [B, 1, T]`` and, in training with a discriminator, score it.

        Returns a dict with ``fake [B, 1, T]``, ``commitment`` and, when adversarial and training,
        ``real`` (logits, fmaps), ``fake`` logits on the detached reconstruction (``fake_logits``) and
        ``gen`` (logits, fmaps) with the discriminator's parameters frozen.
        """
        out = self.codec(real, self.generator(1) if self.training else None)
        res: dict[str, Any] = {"fake": out.audio, "commitment": out.commitment}
        if self.training:
            self.num_batches += 1
        d = self.discriminator
        if d is None or not self.training:
            return res
        res["real"] = d(real)
        res["fake_logits"] = d(out.audio.detach())[0]
        d.requires_grad_(False)  # this pass sends gradients to the reconstruction only
        try:
            res["gen"] = d(out.audio)
        finally:
            d.requires_grad_(True)
        return res


def codec_from_training_module(model: nn.Module, config: CodecConfig) -> EncodecCodec:
    """A standalone :class:`EncodecCodec` with the trained (or EMA-averaged) codec weights; ``inited`` flags are
    rounded back to 0/1 (the loop's EMA averages every float buffer)."""
    m: CodecTrainModule = getattr(model, "module", model)
    state = {k: v.detach().clone() for k, v in m.codec.state_dict().items()}
    for key in state:
        if key.endswith("_codebook.inited"):
            state[key] = (state[key] > 0.5).to(state[key].dtype)
    codec = EncodecCodec(config)
    codec.load_state_dict(state)
    return codec.eval()


class CodecTask(TrainTask):
    """EnCodec training (see the module docstring)."""

    name: ClassVar[str] = "codec"
    config_class: ClassVar[type] = CodecTrainConfig
    config: CodecTrainConfig

    def __init__(self, config: CodecTrainConfig) -> None:
        super().__init__(config)
        self._msspec: MultiScaleMelLoss | None = None

    @property
    def default_grad_clip(self) -> float | None:
        """audiocraft's compression solver does not clip (``optim.max_norm: 0``)."""
        return None

    def build_model(self) -> nn.Module:
        """Fresh codec, discriminator (when adversarial) and balancer."""
        cfg = self.config
        disc = MultiScaleSTFTDiscriminator(cfg.discriminator) if cfg.adversarial else None
        balancer = LossBalancer(cfg.balancer_weights(), balance_grads=cfg.balance_grads,
                                total_norm=cfg.balancer_total_norm, ema_decay=cfg.balancer_ema_decay)
        return CodecTrainModule(EncodecCodec(cfg.model), disc, balancer, cfg.seed)

    def build_optimizer(self, model: nn.Module, max_steps: int) -> tuple[torch.optim.Optimizer, Any]:
        """Adam with a codec group and a discriminator group; no schedule."""
        cfg, m = self.config, getattr(model, "module", model)
        groups = [{"params": list(m.codec.parameters()), "lr": cfg.lr}]
        if m.discriminator is not None:
            groups.append({"params": list(m.discriminator.parameters()), "lr": cfg.disc_lr or cfg.lr})
        return torch.optim.Adam(groups, betas=cfg.betas, weight_decay=0.0), None

    def _dataset(self, sources: tuple[str, ...], split: str) -> CodecWindowDataset:
        cfg = self.config
        window = round(cfg.window_seconds * cfg.model.sample_rate)
        return CodecWindowDataset(list_clips(sources, split), window, sample_rate=cfg.model.sample_rate)

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        """Audio windows of the training and validation clips (valid: None without validation data)."""
        cfg = self.config
        train = self._dataset(cfg.train_data, "train")
        if len(train) == 0:
            raise ConfigError(f"no training clips found in {list(cfg.train_data)}")
        valid_src = cfg.valid_data or tuple(s for s in cfg.train_data if s.endswith(".jsonl"))
        valid = self._dataset(valid_src, "valid") if valid_src else None
        return train, (valid if valid is not None and len(valid) else None)

    def collate(self, items: list[Any]) -> Any:
        """Zero-padded windows with their lengths."""
        return collate_windows(items)

    def crops(self, model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        """``[B, 1, segment]`` crops of the batch: random from the module's crop stream in training,
        from the window starts otherwise."""
        m, cfg = getattr(model, "module", model), self.config
        gen = m.generator(0) if m.training else None
        crops = random_crops(batch["audio"].float(), batch["length"], cfg.segment_samples, gen, min_rms=cfg.min_rms,
                             tries=3)
        return crops.unsqueeze(1)

    def msspec(self, device: torch.device) -> MultiScaleMelLoss:
        """The multi-scale mel loss on ``device`` (built on first use)."""
        if self._msspec is None:
            self._msspec = MultiScaleMelLoss(self.config.model.sample_rate)
        self._msspec = self._msspec.to(device)
        return self._msspec

    def reconstruction_losses(self, fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        """``{"l1", "msspec"}`` (those with a positive weight) between ``[B, 1, T]`` waveforms."""
        losses = {"l1": F.l1_loss(fake, real), "msspec": self.msspec(real.device)(fake, real)}
        return {k: v for k, v in losses.items() if k in self.config.balancer_weights()}

    def compute_loss(self, model: nn.Module, batch: dict[str, Tensor]) -> LossOutput:
        """Balanced generator losses + commitment + discriminator hinge (training) or the weighted
        reconstruction losses (evaluation, the same weights without balancing)."""
        cfg, m = self.config, getattr(model, "module", model)
        real = self.crops(model, batch)
        if not m.training:
            with torch.no_grad():
                losses = self.reconstruction_losses(model(real)["fake"], real)
            total = sum(cfg.balancer_weights()[k] * v for k, v in losses.items())
            return LossOutput(total, {f"loss/{k}": v for k, v in losses.items()})  # type: ignore[arg-type]
        out = model(real)
        losses = self.reconstruction_losses(out["fake"], real)
        disc = real.new_zeros(())
        if "gen" in out:
            losses["adv"] = generator_hinge_loss(out["gen"][0])
            losses["feat"] = feature_matching_loss(out["real"][1], out["gen"][1])
            disc = discriminator_hinge_loss(out["real"][0], out["fake_logits"])
        surrogate, scales = m.balancer.surrogate(losses, out["fake"])
        total = surrogate + cfg.commitment_weight * out["commitment"] + disc
        terms = {f"loss/{k}": v.detach() for k, v in losses.items()}
        terms.update({"loss/commitment": out["commitment"].detach(), "loss/effective": surrogate.detach()})
        if "gen" in out:
            terms["loss/disc"] = disc.detach()
        return LossOutput(total, terms)

    @torch.no_grad()
    def log_samples(self, model: nn.Module, step: int, out_dir: Path) -> None:
        """Reconstruct the first validation (or training) clips: wavs + ``metrics.json`` (l1, msspec)."""
        from sara.audio.io import save_audio

        cfg = self.config
        clips = list_clips(cfg.valid_data or cfg.train_data, "valid") or list_clips(cfg.train_data, "train")
        ds = CodecWindowDataset(clips[: cfg.num_log_samples], 4 * cfg.model.sample_rate,
                                sample_rate=cfg.model.sample_rate)
        codec = codec_from_training_module(model, cfg.model)
        out_dir.mkdir(parents=True, exist_ok=True)
        metrics = {}
        for i in range(min(len(ds), cfg.num_log_samples)):
            real = ds[i]["audio"].view(1, 1, -1).to(codec.device)
            fake = codec.decode(codec.encode(real))[..., : real.shape[-1]]
            save_audio(out_dir / f"sample-{i}.wav", fake[0].cpu(), cfg.model.sample_rate)
            save_audio(out_dir / f"reference-{i}.wav", real[0].cpu(), cfg.model.sample_rate)
            metrics[ds.windows[i].clip.path.name] = {k: float(v) for k, v in self.reconstruction_losses(fake, real).items()}
        (out_dir / "metrics.json").write_text(json.dumps({"step": step, **metrics}, indent=2) + "\n")

    def export(self, model: nn.Module, out_dir: Path) -> Path:
        """An :class:`EncodecCodec` release (config.json + model.safetensors) of the codec alone."""
        return codec_from_training_module(model, self.config.model).save_pretrained(out_dir)
