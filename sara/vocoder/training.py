"""Stage-1 (flow-matching) training of the SemanticVocoder generator as a :class:`~sara.train.task.TrainTask`.

Objective (Flow2GAN stage 1, spec C.1): ``t ~ U(0, 1)``, ``x0 = 0.1 * noise``, ``x1 = audio``,
``x_t = (1 - t) x0 + t x1``; the generator predicts ``x1`` and is scored with the energy-weighted
linear-filterbank spectral loss; one random branch is dropped with probability 0.05 per item.
Optimiser: ScaledAdam (lr 0.035, clipping scale 2.0) with Eden2 (lr_batches 7500, warm-up 500), or AdamW.

Data parallelism: each item's ``t``, noise and branch-dropout draw come from its own noise seed
(:mod:`sara.train.item_noise`), and the soft range constraint of the BiasNorm / ChannelScale parameters acts
on the averaged gradient just before each optimizer step, so ``P`` processes with batch ``B`` train exactly
like one process with batch ``P * B`` (``tests/train/test_distributed_equivalence.py``).  A silent crop that
``collate_segments`` drops, or a clip shorter than the segment, reweights the items of its process's batch
(the loss is a frame-weighted mean per process, averaged over processes).

Latents come either from a frozen encoder run on each batch (``encoder=``) or from the latent cache that
``sara encode`` writes (``latent_cache=``).  The cache is faster: on one CPU core
(``benchmarks/bench_vocoder.py``) encoding a batch of 8 x 1.6 s segments with a dasheng-base-sized encoder
(86 M-parameter transformer) costs about as much again as the small generator's forward + backward
(+70 % per step; relatively more for smaller generators), while reading the cached slices costs < 1 % of
a step -- a memory copy instead of a transformer forward pass per item and step.  Its costs: disk space
(768 x 25 x 4 B = 77 kB per second of audio), latents computed on whole clips (more context than a crop,
like inference on full clips), no loudness augmentation (the cached latents fix the level), and a
rebuild whenever the encoder changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from sara.errors import ConfigError
from sara.outputs import write_text_atomically
from sara.train.item_noise import batch_noise_seeds, item_generators, per_item, with_noise_seeds
from sara.train.resume import fork_rng
from sara.train.task import LossOutput, TrainTask
from sara.vocoder.config import VocoderConfig
from sara.vocoder.data import (
    SegmentDataset,
    SegmentDecoder,
    collate_segments,
    list_clips,
    segment_stream,
    shard_latent_source,
)
from sara.vocoder.losses import energy_weighted_spectral_loss, multi_resolution_mel_distance
from sara.vocoder.model import VocoderGenerator, branch_keep
from sara.vocoder.optim import Eden2, ScaledAdam
from sara.vocoder.vocoder import SemanticVocoder, load_encoder

__all__ = ["VocoderTask", "VocoderTrainConfig"]


@dataclass(frozen=True)
class VocoderTrainConfig:
    """Everything the vocoder task needs besides the generic loop settings.

    Attributes:
        model: generator configuration.
        train_data: manifests (``split == "train"`` items), audio directories or files.
        valid_data: the same for validation; when empty, the ``valid`` split of the train manifests.
        encoder: semantic encoder (path) for on-the-fly latents, log samples and the exported bundle.
        latent_cache: a ``sara encode`` cache (per-file or sharded store); when set, latents are read instead
            of computed.
        shards: WebDataset shards to stream instead of ``train_data`` (``sara data shard``; a directory, brace
            pattern or URL, see :mod:`sara.data.shard_source`); latents from ``latent_cache``, else from the
            shards when they hold them, else computed with ``encoder``.
        shuffle_buffer: clips in each stream reader's shuffle buffer.
        segment_seconds: crop length; rounded to whole latent frames (1.6 s = 40 frames = 38400 samples).
        min_rms, rms_tries: silent-crop retry.
        peak_db: loudness augmentation range (dBFS peak) with on-the-fly latents; validation uses -3 dB.
            Ignored with a latent cache (the cached latents fix the level).
        optimizer: ``scaled_adam`` (paper) or ``adamw``.
        lr: base learning rate; None = 0.035 for ScaledAdam, 2e-4 for AdamW.
        lr_batches, warmup_batches, warmup_start: Eden2 schedule (used with both optimisers).
        clipping_scale: ScaledAdam's median-relative gradient clipping.
        weight_decay: AdamW only.
        num_log_samples, sample_steps, sample_seconds: what ``log_samples`` writes.
        class_balance: draw training clips with weight ``n_class ** -class_balance`` (manifest classes; 0 =
            uniform, 1 = classes equal; needs manifests, not shards).  A sara extension: on a corpus dominated by
            speech and instruments it moves the training signal towards thin classes (drums, vehicles, weather).
    """

    model: VocoderConfig = field(default_factory=VocoderConfig.small)
    train_data: tuple[str, ...] = ()
    valid_data: tuple[str, ...] = ()
    encoder: str | None = None
    latent_cache: str | None = None
    shards: str | None = None
    shuffle_buffer: int = 512
    segment_seconds: float = 1.6
    min_rms: float = 0.005
    rms_tries: int = 3
    peak_db: tuple[float, float] = (-6.0, -1.0)
    optimizer: Literal["scaled_adam", "adamw"] = "scaled_adam"
    lr: float | None = None
    lr_batches: float = 7500.0
    warmup_batches: float = 500.0
    warmup_start: float = 0.1
    clipping_scale: float = 2.0
    weight_decay: float = 0.01
    num_log_samples: int = 2
    sample_steps: int = 16
    sample_seconds: float = 4.0
    class_balance: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.class_balance <= 4.0:
            raise ValueError(f"class_balance must be in [0, 4], got {self.class_balance}")
        if self.shards is not None and self.class_balance:
            raise ValueError("class_balance needs manifests (a stream is drawn without weights)")
        if self.encoder is None and self.latent_cache is None and self.shards is None:
            raise ValueError("give an encoder (latents on the fly) or a latent_cache (from `sara encode`)")
        if self.shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be >= 1, got {self.shuffle_buffer}")
        if self.segment_frames < 1:
            raise ValueError(f"segment_seconds {self.segment_seconds} is shorter than one latent frame")
        if self.optimizer not in ("scaled_adam", "adamw"):
            raise ValueError(f"optimizer must be scaled_adam or adamw, got {self.optimizer!r}")
        if self.peak_db[0] > self.peak_db[1]:
            raise ValueError(f"peak_db must be (low, high), got {self.peak_db}")

    @property
    def segment_frames(self) -> int:
        """Latent frames per training segment."""
        return round(self.segment_seconds * self.model.frame_rate)

    @property
    def segment_samples(self) -> int:
        """Samples per training segment (a multiple of the latent hop)."""
        return self.segment_frames * self.model.hop_length


def _unwrap(model: nn.Module) -> VocoderGenerator:
    """The generator inside a DDP / accelerate wrapper."""
    return getattr(model, "module", model)  # type: ignore[return-value]


def _limit_params_before_steps(generator: VocoderGenerator, optimizer: torch.optim.Optimizer) -> None:
    """Apply the generator's soft parameter ranges to the averaged gradient before every optimizer step
    (instead of to each process's share in the backward pass; see ``limit_params_on_synced_grads``)."""
    generator.limit_params_on_synced_grads(True)
    optimizer.register_step_pre_hook(lambda *_: generator.apply_param_limits_())


class VocoderTask(TrainTask):
    """Flow-matching training of :class:`~sara.vocoder.model.VocoderGenerator`."""

    name: ClassVar[str] = "vocoder"
    config_class: ClassVar[type] = VocoderTrainConfig
    config: VocoderTrainConfig

    def __init__(self, config: VocoderTrainConfig) -> None:
        super().__init__(config)
        self._encoder: Any = None

    @property
    def default_grad_clip(self) -> float | None:
        """The loop's norm clipping: off for ScaledAdam (it clips itself), 1.0 for AdamW."""
        return None if self.config.optimizer == "scaled_adam" else 1.0

    # ------------------------------------------------------------------------------- building
    def build_model(self) -> nn.Module:
        """A freshly initialised generator (trunc-normal 0.015 weights, zero biases)."""
        model = VocoderGenerator(self.config.model)
        for m in model.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.015)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        return model

    def _dataset(self, sources: tuple[str, ...], split: str, train: bool) -> SegmentDataset:
        cfg = self.config
        return SegmentDataset(list_clips(sources, split), cfg.segment_samples, sample_rate=cfg.model.sample_rate,
                              hop_length=cfg.model.hop_length, latent_cache=cfg.latent_cache, train=train,
                              min_rms=cfg.min_rms, rms_tries=cfg.rms_tries,
                              peak_db=cfg.peak_db if train else (-3.0, -3.0),
                              class_balance=cfg.class_balance if train else 0.0)

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        """Random training crops and fixed validation crops (None when there is no validation data)."""
        cfg = self.config
        if cfg.shards is not None:
            return self._stream_datasets(cfg.shards)
        train = self._dataset(cfg.train_data, "train", True)
        if len(train) == 0:
            raise ConfigError(f"no training clips found in {list(cfg.train_data)}")
        # validation: the "valid" items of the given sources, or of the training manifests
        valid_src = cfg.valid_data or tuple(s for s in cfg.train_data if s.endswith(".jsonl"))
        valid = self._dataset(valid_src, "valid", False) if valid_src else None
        return with_noise_seeds(train), (valid if valid is not None and len(valid) else None)

    def _stream_datasets(self, shards: str) -> tuple[Dataset, Dataset | None]:
        """The training stream of ``shards``; validation from ``valid_data``, else the shards' valid split."""
        from sara.data.stream import has_split

        cfg = self.config
        latents = shard_latent_source(shards, cfg.latent_cache)
        if latents is None and cfg.encoder is None:
            raise ConfigError(f"--shards {shards}: the shards hold no latents; give --encoder or --latent-cache")
        kw: dict[str, Any] = {"sample_rate": cfg.model.sample_rate, "hop_length": cfg.model.hop_length,
                              "latents": latents, "min_rms": cfg.min_rms, "rms_tries": cfg.rms_tries}
        train = segment_stream(shards, cfg.segment_samples, split="train", train=True, peak_db=cfg.peak_db,
                               shuffle_buffer=cfg.shuffle_buffer, **kw)
        if train.num_items == 0:
            raise ConfigError(f"--shards {shards}: no 'train' clips in the shards")
        if cfg.valid_data:
            valid: Dataset | None = self._dataset(cfg.valid_data, "valid", False)
            return train, (valid if valid is not None and len(valid) else None)  # type: ignore[arg-type]
        if not has_split(train, "valid"):
            return train, None
        return train, segment_stream(shards, cfg.segment_samples, split="valid", train=False, peak_db=(-3.0, -3.0), **kw)

    def collate(self, items: list[Any]) -> Any:
        """Stack segments, dropping silent crops."""
        return collate_segments(items)

    def build_optimizer(self, model: nn.Module, max_steps: int) -> tuple[torch.optim.Optimizer, Any]:
        """ScaledAdam (or AdamW) with the Eden2 schedule."""
        cfg = self.config
        params = [p for p in model.parameters() if p.requires_grad]
        if cfg.optimizer == "scaled_adam":
            opt: torch.optim.Optimizer = ScaledAdam(params, lr=0.035 if cfg.lr is None else cfg.lr, clipping_scale=cfg.clipping_scale)
        else:
            opt = torch.optim.AdamW(params, lr=2e-4 if cfg.lr is None else cfg.lr, betas=(0.8, 0.99), weight_decay=cfg.weight_decay)
        _limit_params_before_steps(_unwrap(model), opt)
        return opt, Eden2(opt, cfg.lr_batches, cfg.warmup_batches, cfg.warmup_start)

    # ---------------------------------------------------------------------------------- latents
    def encoder(self, device: torch.device) -> Any:
        """The frozen semantic encoder on ``device`` (loaded on first use)."""
        if self.config.encoder is None:
            raise ConfigError("this vocoder task has no encoder (it trains from a latent cache)")
        if self._encoder is None:
            with fork_rng():  # built lazily (after a resume, mid-run): its init must not shift the training RNG
                encoder = load_encoder(self.config.encoder).eval().requires_grad_(False)
            if int(encoder.latent_dim) != self.config.model.latent_dim:
                raise ConfigError(f"encoder {self.config.encoder} gives {encoder.latent_dim}-d latents but the "
                                  f"vocoder expects {self.config.model.latent_dim}-d")
            self._encoder = encoder
        self._encoder = self._encoder.to(device)
        return self._encoder

    def batch_latents(self, batch: dict[str, Tensor]) -> Tensor:
        """``[B, D, S / hop]`` latents of the batch's audio (cached, or encoded now without gradients)."""
        if "latents" in batch:
            if batch["latents"].shape[1] != self.config.model.latent_dim:
                raise ConfigError(f"cached latents are {batch['latents'].shape[1]}-d but the vocoder expects "
                                  f"{self.config.model.latent_dim}-d")
            return batch["latents"]
        audio = batch["audio"]
        with torch.no_grad():
            z = self.encoder(audio.device).encode(audio.float(), self.config.model.sample_rate)
        n = audio.shape[-1] // self.config.model.hop_length
        return torch.nn.functional.pad(z, (0, max(0, n - z.shape[-1])))[..., :n]

    # ------------------------------------------------------------------------------------ loss
    def compute_loss(self, model: nn.Module, batch: dict[str, Tensor]) -> LossOutput:
        """Flow-matching loss on one batch ``{"audio": [B, S], "length": [B], "noise_seed": [B], ...}``."""
        cfg = self.config.model
        x1 = batch["audio"].float()
        latents = self.batch_latents(batch)
        t, x0, keep = (v.to(x1.device) for v in self.draw_noise(batch_noise_seeds(batch, x1.shape[0]), x1.shape[-1]))
        tt = t.unsqueeze(-1)
        x_t = (1.0 - tt) * x0 + tt * x1
        pred = model(x_t, t, latents=latents, branch_keep=keep)
        target = x1 if cfg.pred_x1 else x1 - x0
        loss = energy_weighted_spectral_loss(_unwrap(model).loss_spec, pred.float() - target, x1,
                                             batch["length"], cfg)
        return LossOutput(loss, {"loss/spec": loss.detach()})

    def draw_noise(self, seeds: list[int], num_samples: int) -> tuple[Tensor, Tensor, Tensor]:
        """Each item's flow time, initial noise and branch-dropout choice, from its own generator (CPU).

        Per item, in this order: ``t ~ U[0, 1)``, a drop flag (``U < branch_dropout``), the branch to drop
        (uniform), then ``x0 = init_noise_scale * N(0, 1)`` of ``num_samples`` samples.

        Returns:
            ``(t [B], x0 [B, num_samples], branch weights [B, R])`` (see :func:`branch_keep`).
        """
        cfg = self.config.model
        gens = item_generators(seeds)
        t = per_item(gens, lambda g: torch.rand((), generator=g))
        drop = per_item(gens, lambda g: torch.rand((), generator=g) < cfg.branch_dropout)
        which = per_item(gens, lambda g: torch.randint(0, cfg.num_branches, (), generator=g))
        x0 = per_item(gens, lambda g: torch.randn(num_samples, generator=g)) * cfg.init_noise_scale
        keep = branch_keep(drop, which, cfg.num_branches) if cfg.num_branches > 1 else torch.ones(len(seeds), 1)
        return t, x0, keep

    # ------------------------------------------------------------------------------ samples/export
    @torch.no_grad()
    def log_samples(self, model: nn.Module, step: int, out_dir: Path) -> None:
        """Reconstruct the first few validation (or training) clips; writes wavs and ``mel_distance.json``."""
        import json

        from sara.audio.io import save_audio

        cfg = self.config
        generator = _unwrap(model)
        voc = SemanticVocoder(cfg.model, generator=generator).eval()
        out_dir.mkdir(parents=True, exist_ok=True)
        dists = {}
        for i, (name, item) in enumerate(self._log_items()):
            batch = {k: v.unsqueeze(0).to(voc.device) for k, v in item.items()}
            wav = voc.decode(self.batch_latents(batch), steps=cfg.sample_steps, seed=i)
            save_audio(out_dir / f"sample-{i}.wav", wav[0].cpu(), cfg.model.sample_rate)
            save_audio(out_dir / f"reference-{i}.wav", batch["audio"][0].cpu(), cfg.model.sample_rate)
            dists[name] = float(multi_resolution_mel_distance(wav, batch["audio"])[0])
        write_text_atomically(out_dir / "mel_distance.json", json.dumps({"step": step, **dists}, indent=2) + "\n")

    def _log_items(self) -> list[tuple[str, dict[str, Tensor]]]:
        """``(name, item)`` of the first few validation (or training) clips, ``sample_seconds`` long."""
        cfg = self.config
        seconds = max(1, round(cfg.sample_seconds * cfg.model.frame_rate)) * cfg.model.hop_length
        kw: dict[str, Any] = {"sample_rate": cfg.model.sample_rate, "hop_length": cfg.model.hop_length,
                              "train": False, "min_rms": 0.0, "peak_db": (-3.0, -3.0)}
        if cfg.shards is not None and not cfg.valid_data:
            from sara.data.stream import stream_head

            decoder = SegmentDecoder(seconds, latents=shard_latent_source(cfg.shards, cfg.latent_cache), **kw)
            return stream_head(cfg.shards, decoder, cfg.num_log_samples)
        clips = (list_clips(cfg.valid_data or cfg.train_data, "valid") or list_clips(cfg.train_data, "train"))
        ds = SegmentDataset(clips[: cfg.num_log_samples], seconds, latent_cache=cfg.latent_cache, **kw)
        return [(ds.clips[i].path.name, ds[i]) for i in range(len(ds))]

    def export(self, model: nn.Module, out_dir: Path) -> Path:
        """Write a SemanticVocoder release (with the encoder bundled in ``encoder/`` when the task has one)."""
        generator = _unwrap(model)
        voc = SemanticVocoder(self.config.model, generator=generator)
        if self.config.encoder is not None:
            voc.encoder_path = Path(self.config.encoder)
        return voc.save_pretrained(out_dir)
