"""``EncoderTask``: MAE pretraining or clip-label fine-tuning of the semantic encoder in the shared loop.

Defaults follow dasheng: mask ratio 0.75, norm_pix_loss, AdamW lr 3e-4 / weight decay 0.01, cosine decay to
``lr * 0.01``, 10 s crops.  ``export`` writes the encoder alone as a release directory (decoder / classifier
head are training-only).

Data parallelism.  Three things made an item's loss depend on how the global batch is split, and are
changed here so that ``P`` processes with batch ``B`` train like one process with batch ``P * B``
(``tests/train/test_distributed_equivalence.py``):

* the MAE masking noise comes from each item's noise seed (:mod:`sara.train.item_noise`), not from the
  process RNG (which every process holds alike: all ranks masked the same positions);
* the dB floor (``top_db`` below the peak) is taken per item, not over the batch as torchaudio does, so an
  item's features do not depend on what it is batched with (a departure from dasheng's training, where a
  loud clip raised the floor of the quiet clips in its batch);
* ``init_bn`` (BatchNorm over mel bins, batch statistics while training) takes its statistics over the
  batches of *all* processes (:class:`CrossProcessBatchNorm2d`; PyTorch's SyncBatchNorm is GPU-only).

Gradient accumulation is still not equivalent to a larger batch: each micro-batch is normalised with its own
BatchNorm statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from sara.encoder.config import EncoderConfig
from sara.encoder.data import (
    AudioCropDataset,
    AudioCropDecoder,
    Clip,
    clips_from_dir,
    clips_from_manifest,
    crop_samples_for,
)
from sara.encoder.encoder import SemanticEncoder
from sara.encoder.mae import ClipClassifier, MAEOutput, MaskedAutoencoder, decoder_defaults, patchify
from sara.errors import ConfigError
from sara.train.item_noise import batch_noise_seeds, item_generators, per_item, with_noise_seeds
from sara.train.task import LossOutput, TrainTask

__all__ = ["CrossProcessBatchNorm2d", "EncoderTask", "EncoderTaskConfig", "ItemSeededMAE", "ItemScopedClassifier",
           "mask_with_noise"]


@dataclass(frozen=True)
class EncoderTaskConfig:
    """Everything that defines an encoder training run (stored in the run's ``run.json``).

    Attributes:
        encoder: architecture (ignored in favour of the checkpoint's when ``init`` is set; must then match).
        objective: ``"mae"`` pretraining or ``"supervised"`` clip-label fine-tuning.
        data_dir: audio directory (class = parent folder) -- or ``manifest``: corpus jsonl with ``split`` --
            or ``shards``: WebDataset shards to stream (``sara data shard``; directory, brace pattern or URL).
        shuffle_buffer: clips in each stream reader's shuffle buffer (with ``shards``).
        train_split: manifest split to train on; ``valid_split``: to validate on (None = no validation).
        crop_seconds: crop length (10 s for the paper sizes; a tiny encoder's chunk is 4 s).
        gain_db: random gain range in dB (dasheng: (-6, 10)); None disables.
        mask_ratio: MAE fraction of masked patches.
        decoder_dim / decoder_depth / decoder_heads: MAE decoder; 0 = :func:`decoder_defaults`.
        norm_pix_loss: standardise each target patch.
        class_names: label vocabulary for ``supervised`` (filled from the data by the CLI).
        multi_label: BCE on multi-hot targets instead of cross-entropy.
        init: encoder to start from (release dir or official dasheng checkpoint); None = random init.
        lr, weight_decay, warmup_steps, min_lr_ratio: AdamW and the warm-up + cosine schedule.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig.tiny)
    objective: Literal["mae", "supervised"] = "mae"
    data_dir: str | None = None
    manifest: str | None = None
    shards: str | None = None
    shuffle_buffer: int = 512
    train_split: str = "train"
    valid_split: str | None = "valid"
    crop_seconds: float = 4.0
    gain_db: tuple[float, float] | None = None
    mask_ratio: float = 0.75
    decoder_dim: int = 0
    decoder_depth: int = 0
    decoder_heads: int = 0
    norm_pix_loss: bool = True
    class_names: tuple[str, ...] = ()
    multi_label: bool = False
    init: str | None = None
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 0
    min_lr_ratio: float = 0.01

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.data_dir, self.manifest, self.shards)) != 1:
            raise ValueError("give exactly one of data_dir, manifest and shards")
        if self.shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be >= 1, got {self.shuffle_buffer}")
        if self.objective not in ("mae", "supervised"):
            raise ValueError(f"objective must be 'mae' or 'supervised', got {self.objective!r}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.crop_seconds <= 0:
            raise ValueError("crop_seconds must be positive")
        tokens = self.encoder.num_frames(crop_samples_for(self.crop_seconds, self.encoder.sample_rate))
        if self.objective == "mae" and tokens > self.encoder.tokens_per_chunk:
            raise ValueError(f"a {self.crop_seconds} s crop gives {tokens} tokens, more than one encoder chunk "
                             f"({self.encoder.tokens_per_chunk}); shorten --crop-seconds")
        if self.objective == "supervised" and not self.class_names:
            raise ValueError("supervised training needs class_names")

    def decoder_shape(self) -> tuple[int, int, int]:
        """``(width, depth, heads)`` of the MAE decoder, defaults filled in."""
        dim, depth, heads = decoder_defaults(self.encoder.embed_dim, self.encoder.depth)
        return self.decoder_dim or dim, self.decoder_depth or depth, self.decoder_heads or heads


class EncoderTask(TrainTask):
    """MAE pretraining / supervised fine-tuning of a :class:`SemanticEncoder`."""

    name: ClassVar[str] = "encoder"
    config_class: ClassVar[type] = EncoderTaskConfig
    config: EncoderTaskConfig

    def build_model(self) -> nn.Module:
        """:class:`MaskedAutoencoder` or :class:`ClipClassifier` around a fresh or ``init`` encoder."""
        cfg = self.config
        encoder = self._build_encoder().train()
        _use_cross_process_batch_norm(encoder)
        if cfg.objective == "supervised":
            return ItemScopedClassifier(encoder, len(cfg.class_names))
        dim, depth, heads = cfg.decoder_shape()
        return ItemSeededMAE(encoder, dim, depth, heads, mask_ratio=cfg.mask_ratio, norm_pix_loss=cfg.norm_pix_loss)

    def _build_encoder(self) -> SemanticEncoder:
        if self.config.init is None:
            return SemanticEncoder(self.config.encoder)
        encoder = SemanticEncoder.from_pretrained(self.config.init)
        if encoder.config != self.config.encoder:
            raise ConfigError(f"--init {self.config.init} holds a different encoder architecture than the task config")
        return encoder

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        """Random crops (+ gain) for training; leading crops, no gain, for validation."""
        cfg = self.config
        if cfg.shards is not None:
            return self._streams(cfg.shards)
        if cfg.manifest is not None:
            train = clips_from_manifest(cfg.manifest, cfg.train_split)
            valid = clips_from_manifest(cfg.manifest, cfg.valid_split) if cfg.valid_split else []
        else:
            train, valid = clips_from_dir(cfg.data_dir or ""), []
        if not train:
            raise ConfigError(f"no training clips found in {cfg.manifest or cfg.data_dir}")
        if cfg.objective == "supervised":
            unlabelled = [str(c.path) for c in train + valid if not c.labels]
            if unlabelled:
                raise ConfigError(f"supervised training: {len(unlabelled)} clip(s) have no class, e.g. {unlabelled[0]}")
        return with_noise_seeds(self._dataset(train, True)), (self._dataset(valid, False) if valid else None)

    def _dataset(self, clips: list[Clip], training: bool) -> AudioCropDataset:
        cfg = self.config
        labelled = cfg.objective == "supervised"
        return AudioCropDataset(
            clips, crop_samples_for(cfg.crop_seconds, cfg.encoder.sample_rate), sample_rate=cfg.encoder.sample_rate,
            random_crop=training, gain_db=cfg.gain_db if training else None,
            class_names=cfg.class_names if labelled else (), multi_label=cfg.multi_label,
        )

    def _streams(self, shards: str) -> tuple[Dataset, Dataset | None]:
        """The training stream of ``shards`` and, when its index lists ``valid_split`` clips, a valid stream."""
        from sara.data.stream import ShardStream, has_split

        cfg = self.config
        labelled = cfg.objective == "supervised"

        def decoder(training: bool) -> AudioCropDecoder:
            return AudioCropDecoder(crop_samples_for(cfg.crop_seconds, cfg.encoder.sample_rate),
                                    sample_rate=cfg.encoder.sample_rate, random_crop=training,
                                    gain_db=cfg.gain_db if training else None,
                                    class_names=cfg.class_names if labelled else (), multi_label=cfg.multi_label)

        train = ShardStream(shards, decoder(True), split=cfg.train_split, shuffle_buffer=cfg.shuffle_buffer)
        if train.num_items == 0:
            raise ConfigError(f"--shards {shards}: no {cfg.train_split!r} clips in the shards")
        if cfg.valid_split is None or not has_split(train, cfg.valid_split):
            return train, None
        return train, ShardStream(shards, decoder(False), split=cfg.valid_split, train=False)

    def compute_loss(self, model: nn.Module, batch: Any) -> LossOutput:
        """MAE: masked-patch MSE; supervised: CE (or BCE) on clip labels, with accuracy logged."""
        if self.config.objective == "mae":
            loss = model(batch["audio"], noise_seeds=batch_noise_seeds(batch, batch["audio"].shape[0])).loss
            return LossOutput(loss, {"loss/mae": loss})
        logits = model(batch["audio"])
        if self.config.multi_label:
            loss = F.binary_cross_entropy_with_logits(logits, batch["label"].float())
            return LossOutput(loss, {"loss/bce": loss})
        loss = F.cross_entropy(logits, batch["label"])
        accuracy = (logits.argmax(dim=-1) == batch["label"]).float().mean()
        return LossOutput(loss, {"loss/ce": loss, "metric/accuracy": accuracy})

    def build_optimizer(
        self, model: nn.Module, max_steps: int
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
        """AdamW (no decay on norms, biases, position tables, tokens) + linear warm-up and cosine decay."""
        cfg = self.config
        decay, no_decay = [], []
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            plain = param.ndim <= 1 or "pos_embed" in name or name.endswith("token")
            (no_decay if plain else decay).append(param)
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(cfg.warmup_steps, max_steps, cfg.min_lr_ratio))
        return opt, sched

    def export(self, model: nn.Module, out_dir: Path) -> Path:
        """Write the encoder (only) as a release directory."""
        encoder: SemanticEncoder = model.encoder  # type: ignore[assignment]
        return encoder.eval().save_pretrained(out_dir)


def _warmup_cosine(warmup: int, total: int, floor: float) -> Any:
    """LR multiplier: linear 0 -> 1 over ``warmup`` steps, then cosine 1 -> ``floor`` at ``total``."""

    def factor(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


# ------------------------------------------------------------------------- batch-split independence


def mask_with_noise(x: Tensor, noise: Tensor, mask_ratio: float) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`sara.encoder.mae.random_masking` with its uniform ``noise [B, L]`` given (the same result
    for the same noise): keep the ``int(L * (1 - mask_ratio))`` tokens with the smallest noise.

    Returns:
        ``(kept [B, K, D], mask [B, L] with 1 = masked, ids_restore [B, L])``.
    """
    b, length, d = x.shape
    keep = max(1, int(length * (1.0 - mask_ratio)))
    ids_shuffle = noise.argsort(dim=1)
    ids_restore = ids_shuffle.argsort(dim=1)
    kept = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, d))
    mask = torch.ones(b, length, device=x.device)
    mask[:, :keep] = 0.0
    return kept, torch.gather(mask, 1, ids_restore), ids_restore


class ItemSeededMAE(MaskedAutoencoder):
    """:class:`MaskedAutoencoder` (same parameters and state dict) whose masking noise is drawn per item
    from noise seeds, on per-item dB features."""

    def forward(self, wav: Tensor, noise_seeds: list[int] | None = None) -> MAEOutput:  # type: ignore[override]
        """``wav [B, T]`` at 16 kHz -> :class:`MAEOutput`; ``noise_seeds`` (B ints) pick each item's mask
        (None: the process RNG, as the parent class does)."""
        enc = self.encoder
        p = enc.config.patch_size[1]
        db = enc.mel_db(wav, "item")
        length = db.shape[-1] // p
        if length > enc.config.tokens_per_chunk:
            raise ValueError(f"MAE crop gives {length} tokens, more than one chunk ({enc.config.tokens_per_chunk})")
        if noise_seeds is None:
            noise = torch.rand(wav.shape[0], length)
        else:
            noise = per_item(item_generators(noise_seeds), lambda g: torch.rand(length, generator=g))
        tokens = enc.embed_chunk(enc.patch_embed(enc.normalize_spec(db[..., : length * p])))
        kept, mask, ids_restore = mask_with_noise(tokens, noise.to(tokens.device), self.mask_ratio)
        pred = self.decode(enc.run_blocks(kept), ids_restore)
        target = patchify(db, p)
        return MAEOutput(self.loss(pred, target, mask), pred, target, mask)


class ItemScopedClassifier(ClipClassifier):
    """:class:`ClipClassifier` on per-item dB features (see the module docstring)."""

    def forward(self, wav: Tensor) -> Tensor:
        """``wav [B, T]`` at 16 kHz -> logits ``[B, num_classes]``."""
        return self.outputlayer(self.encoder(wav, db_scope="item").mean(dim=1))


class _AllReduceSum(torch.autograd.Function):
    """Sum of a tensor over the default process group; its gradient is the sum of the output gradients.

    Used instead of ``torch.distributed.nn.functional.all_reduce`` (deprecated), whose backward made gloo
    processes abort at exit ("terminate called without an active exception") about one run in five.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:  # noqa: ARG004 - autograd's signature
        """``x`` summed over processes (a new tensor)."""
        out = x.detach().clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # noqa: ARG004 - autograd's signature
        """Each input's gradient: the output gradients summed over processes."""
        out = grad.contiguous().clone()
        dist.all_reduce(out)
        return out


class CrossProcessBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the batches of all data-parallel processes.

    Alone (or in eval mode) it is ``nn.BatchNorm2d``.  With a process group of more than one process, each
    training forward all-reduces the per-channel sums (then the centred squared sums) of ``x [B, C, H, W]``
    with an autograd-aware all-reduce (:class:`_AllReduceSum`), normalises with the global mean and biased
    variance and updates the running statistics with the global unbiased variance -- what one process
    holding every process's batch computes.  Every process must run the same training forwards.
    """

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x [B, C, H, W]`` per channel."""
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        all_reduce = _AllReduceSum.apply
        c = x.shape[1]
        totals = all_reduce(torch.cat([x.sum(dim=(0, 2, 3)), x.new_full((1,), x.numel() / c)]))
        count = totals[c]
        mean = totals[:c] / count
        centred = x - mean[None, :, None, None]
        var = all_reduce(centred.pow(2).sum(dim=(0, 2, 3))) / count
        self._update_running_stats(mean.detach(), var.detach(), float(count))
        out = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        return out * self.weight[None, :, None, None] + self.bias[None, :, None, None] if self.affine else out

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor, count: float) -> None:
        """``running = (1 - m) running + m stat`` (unbiased variance), as ``F.batch_norm`` does."""
        if not self.track_running_stats or self.running_mean is None or self.running_var is None:
            return
        self.num_batches_tracked += 1
        m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.mul_(1 - m).add_(mean, alpha=m)
        self.running_var.mul_(1 - m).add_(var * (count / max(count - 1.0, 1.0)), alpha=m)


def _use_cross_process_batch_norm(encoder: SemanticEncoder) -> None:
    """Replace ``encoder.init_bn``'s BatchNorm2d by a :class:`CrossProcessBatchNorm2d` with the same state."""
    bn = encoder.init_bn[1]
    if isinstance(bn, CrossProcessBatchNorm2d) or not isinstance(bn, nn.BatchNorm2d):
        return
    swapped = CrossProcessBatchNorm2d(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                                      track_running_stats=bn.track_running_stats)
    swapped.load_state_dict(bn.state_dict())
    encoder.init_bn[1] = swapped
