"""``TextToAudioTask``: flow-matching training of the latent DiT on cached latents + captions.

Official convention (spec D.4): ``x_sigma = (1 - sigma) x1 + sigma noise``, target ``noise - x1``, timesteps
``1000 - long(u * 1000)`` with logit-normal ``u``, frame-masked MSE, and condition dropout that zeroes the
projected text embedding (mask unchanged) with probability ``cfg_drop_ratio``.  Two stages: ``pretrain``
from scratch, ``finetune`` from a previous run / release (``init_from``) at a lower learning rate.

Each item's timestep, noise and dropout flag come from its own noise seed (:mod:`sara.train.item_noise`), so
``P`` data-parallel processes with batch ``B`` train exactly like one process with batch ``P * B`` (the loss
is a mean of per-item means; ``tests/train/test_distributed_equivalence.py``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from sara.dit.config import FRAME_RATE, DiTConfig
from sara.dit.data import LatentCaptionDataset, collate_latent_captions, latent_caption_streams
from sara.dit.model import LatentDiT
from sara.errors import ConfigError
from sara.flow.paths import interpolate, masked_mse, sample_train_timesteps, velocity_target
from sara.outputs import write_text_atomically
from sara.text.factory import TextEncoderSpec, build_text_encoder
from sara.train.item_noise import (
    NOISE_SEED,
    batch_noise_seeds,
    item_generators,
    per_item,
    split_noise_seeds,
    with_noise_seeds,
)
from sara.train.resume import fork_rng
from sara.train.task import LossOutput, TrainTask

__all__ = ["FlowMatchingDiT", "T2ATrainConfig", "TextToAudioTask", "with_pooled_text"]

_STAGE_LR = {"pretrain": 1e-4, "finetune": 2e-5}


@dataclass(frozen=True)
class T2ATrainConfig:
    """Task config of ``sara train t2a``.

    Attributes:
        manifest: corpus manifest (jsonl) with ``path``, ``captions``, ``split`` (None with ``shards``).
        latent_dir: latent cache written by ``sara encode``: per-file (``<stem>.safetensors``, ``latents
            [D, N]``) or a sharded store (``index.json``); with ``shards`` optional (the shards' latents).
        shards: WebDataset shards to stream instead of the manifest (``sara data shard``; a directory, brace
            pattern or URL, see :mod:`sara.data.shard_source`); latents from ``latent_dir`` when given (by
            clip key), else the shards' ``latents.npy`` members.
        shuffle_buffer: clips in each stream reader's shuffle buffer.
        model: DiT architecture (ignored when ``init_from`` is given: the source's config is used, except
            that ``model.pooled_text`` can switch the pooled-text path on; it starts at zero, so the
            initial function is the source's).
        text_encoder: frozen text encoder; its width must equal ``model.text_dim``.
        stage: 'pretrain' (lr 1e-4) or 'finetune' (lr 2e-5, needs ``init_from``).
        init_from: run dir, TextToAudio release, DiT release or official model dir to start from.
        segment_seconds: crop/pad length of the training latents.
        lr: learning rate (default per stage); weight_decay / warmup_steps: AdamW settings.
        cfg_drop_ratio: probability of training a sample unconditionally.
        timestep_sampling: 'logit_normal' (official default) or 'uniform'.
        timestep_shift: SD3-style shift of the training noise levels towards noise (1 = official; see
            :func:`~sara.flow.paths.sample_train_timesteps`).
        train_split / valid_split: manifest splits (valid None disables validation).
        class_balance: re-balancing exponent of the training split's classes (0 = off; see
            :class:`~sara.dit.data.LatentCaptionDataset`).
        vocoder: vocoder release for audio samples and for :meth:`TextToAudioTask.export`.
        sample_prompts / sample_seconds / sample_steps / guidance_scale: what ``log_samples`` generates.
    """

    manifest: str | None = None
    latent_dir: str | None = None
    shards: str | None = None
    shuffle_buffer: int = 512
    model: DiTConfig = field(default_factory=DiTConfig.small)
    text_encoder: TextEncoderSpec = field(default_factory=TextEncoderSpec)
    stage: Literal["pretrain", "finetune"] = "pretrain"
    init_from: str | None = None
    segment_seconds: float = 10.0
    lr: float | None = None
    weight_decay: float = 0.01
    warmup_steps: int = 500
    cfg_drop_ratio: float = 0.2
    timestep_sampling: Literal["logit_normal", "uniform"] = "logit_normal"
    timestep_shift: float = 1.0
    train_split: str = "train"
    valid_split: str | None = "valid"
    class_balance: float = 0.0
    vocoder: str | None = None
    sample_prompts: tuple[str, ...] = ("a dog barks", "rain falls on a tin roof")
    sample_seconds: float = 5.0
    sample_steps: int = 50
    guidance_scale: float = 3.5

    def __post_init__(self) -> None:
        if self.shards is None and (self.manifest is None or self.latent_dir is None):
            raise ValueError("give a manifest and its latent cache (latent_dir), or shards")
        if self.shards is not None and self.class_balance:
            raise ValueError("class_balance needs a manifest (a stream is drawn without weights)")
        if self.shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be >= 1, got {self.shuffle_buffer}")
        if self.stage not in _STAGE_LR:
            raise ValueError(f"stage must be 'pretrain' or 'finetune', got {self.stage!r}")
        if self.stage == "finetune" and not self.init_from:
            raise ValueError("the finetune stage needs init_from (a run dir or release)")
        if not 0.0 <= self.cfg_drop_ratio < 1.0:
            raise ValueError("cfg_drop_ratio must be in [0, 1)")
        if self.segment_seconds <= 0:
            raise ValueError("segment_seconds must be > 0")
        if not (math.isfinite(self.timestep_shift) and 0.05 <= self.timestep_shift <= 20.0):
            raise ValueError(f"timestep_shift must be in [0.05, 20], got {self.timestep_shift}")
        if not 0.0 <= self.class_balance <= 4.0:
            raise ValueError(f"class_balance must be in [0, 4], got {self.class_balance}")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else _STAGE_LR[self.stage]


class FlowMatchingDiT(nn.Module):
    """The trained module: the DiT plus the training-time condition dropout.

    Args:
        dit: the :class:`LatentDiT` (exported as is).
    """

    def __init__(self, dit: LatentDiT) -> None:
        super().__init__()
        self.dit = dit

    def forward(self, x_t: Tensor, t: Tensor, text_states: Tensor, text_mask: Tensor, drop: Tensor,
                x_mask: Tensor | None = None) -> Tensor:
        """Velocity for ``x_t [B, C, F]`` at timesteps ``t [B]`` (0..1000).

        Args:
            text_states: ``[B, S, text_dim]`` raw text-encoder states; text_mask: ``[B, S]`` bool.
            drop: ``[B]`` bool; True zeroes that sample's projected text embedding (mask unchanged).
            x_mask: ``[B, F]`` bool valid frames.
        """
        ctx = self.dit.project_text(text_states)
        ctx = ctx.masked_fill(drop[:, None, None], 0.0)
        return self.dit(x_t, t, ctx, text_mask, x_mask=x_mask)

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """See :meth:`LatentDiT.set_gradient_checkpointing`."""
        self.dit.set_gradient_checkpointing(enabled)


class TextToAudioTask(TrainTask):
    """Trains :class:`LatentDiT` by flow matching (see the module docstring)."""

    name: ClassVar[str] = "t2a"
    config_class: ClassVar[type] = T2ATrainConfig
    default_grad_clip: ClassVar[float] = 1.0

    # captions recur every epoch: keep the frozen encoder's states of this many captions (a corpus of ~18k
    # distinct captions at ~20 tokens x 384 floats is ~0.5 GB; a smaller cache re-encodes most of them)
    text_cache_size: ClassVar[int] = 65536

    def __init__(self, config: T2ATrainConfig, text_encoder: Any | None = None) -> None:
        """``text_encoder``: an already built encoder matching ``config.text_encoder`` (else built lazily)."""
        super().__init__(config)
        self._text_encoder: Any = text_encoder
        self._text_cache: dict[str, Tensor] = {}

    # ------------------------------------------------------------------------------------- parts

    @property
    def text_encoder(self) -> Any:
        """The frozen text encoder (built on first use)."""
        if self._text_encoder is None:
            with fork_rng():  # built lazily (after a resume, mid-run): loading must not shift the training RNG
                self._text_encoder = build_text_encoder(self.config.text_encoder)
        return self._text_encoder

    def build_model(self) -> FlowMatchingDiT:
        if not self.config.init_from:
            return FlowMatchingDiT(LatentDiT(self.config.model).train())
        dit = _load_init(self.config.init_from)
        if self.config.model.pooled_text and not dit.config.pooled_text:
            dit = with_pooled_text(dit)
        return FlowMatchingDiT(dit.train())

    def build_datasets(self) -> tuple[LatentCaptionDataset, LatentCaptionDataset | None]:
        cfg = self.config
        frames = max(1, round(cfg.segment_seconds * FRAME_RATE))
        if cfg.shards is not None:
            return latent_caption_streams(cfg.shards, cfg.latent_dir, frames, cfg.train_split, cfg.valid_split,
                                          shuffle_buffer=cfg.shuffle_buffer)  # type: ignore[return-value]
        assert cfg.manifest is not None and cfg.latent_dir is not None  # __post_init__
        train = LatentCaptionDataset(cfg.manifest, cfg.latent_dir, cfg.train_split, frames, train=True,
                                     class_balance=cfg.class_balance)
        if len(train) == 0:
            raise ConfigError(f"{cfg.manifest}: no {cfg.train_split!r} clips with cached latents")
        valid = None
        if cfg.valid_split:
            valid = LatentCaptionDataset(cfg.manifest, cfg.latent_dir, cfg.valid_split, frames, train=False)
            valid = valid if len(valid) else None
        return with_noise_seeds(train), valid  # type: ignore[return-value]

    def collate(self, items: list[dict]) -> dict:
        """:func:`collate_latent_captions`, plus the items' noise seeds ``[B]`` when they have them."""
        items, seeds = split_noise_seeds(items)
        batch = collate_latent_captions(items)
        if seeds is not None:
            batch[NOISE_SEED] = seeds
        return batch

    def build_optimizer(self, model: nn.Module, max_steps: int):  # noqa: ANN201 - (optimizer, scheduler)
        """AdamW at the stage's learning rate with linear warm-up, then constant."""
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.config.learning_rate, weight_decay=self.config.weight_decay,
                                betas=(0.9, 0.999))
        warmup = max(0, int(self.config.warmup_steps))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
        return opt, sched

    # -------------------------------------------------------------------------------------- loss

    def compute_loss(self, model: nn.Module, batch: dict) -> LossOutput:
        """One flow-matching step on ``batch`` (``latents [B, D, F]``, ``mask [B, F]``, ``captions``)."""
        x1, mask = batch["latents"], batch["mask"]
        device, b = x1.device, x1.shape[0]
        self.text_encoder.to(device)
        states, text_mask = self.encode_captions(list(batch["captions"]))
        t, noise, drop = (v.to(device) for v in self.draw_noise(batch_noise_seeds(batch, b), tuple(x1.shape[1:])))
        x_t = interpolate(x1, noise.to(x1.dtype), t / 1000.0)
        v = model(x_t, t, states.to(device), text_mask.to(device), drop, x_mask=mask)
        loss = masked_mse(v, velocity_target(x1, noise), mask)
        return LossOutput(total=loss, terms={"loss/flow": loss.detach()})

    def draw_noise(self, seeds: list[int], shape: tuple[int, ...]) -> tuple[Tensor, Tensor, Tensor]:
        """Each item's timestep, noise and condition-dropout flag from its own generator (CPU).

        Per item, in this order: the timestep (:func:`sample_train_timesteps`), the dropout flag
        (``U < cfg_drop_ratio``), then the noise of ``shape`` (``[D, F]``).

        Returns:
            ``(t [B] in 1..1000, noise [B, D, F], drop [B] bool)``.
        """
        cfg = self.config
        gens = item_generators(seeds)
        t = per_item(gens, lambda g: sample_train_timesteps(1, cfg.timestep_sampling, generator=g,
                                                            shift=cfg.timestep_shift)[0])
        drop = per_item(gens, lambda g: torch.rand((), generator=g) < cfg.cfg_drop_ratio)
        return t, per_item(gens, lambda g: torch.randn(shape, generator=g)), drop

    def encode_captions(self, captions: list[str]) -> tuple[Tensor, Tensor]:
        """Frozen text states ``[B, S, text_dim]`` + mask ``[B, S]`` (CPU), memoised per caption."""
        from sara.text.base import pad_states

        rows = []
        for caption in captions:
            if caption not in self._text_cache:
                if len(self._text_cache) >= self.text_cache_size:
                    self._text_cache.pop(next(iter(self._text_cache)))
                self._text_cache[caption] = self.text_encoder.encode_one(caption).cpu()
            rows.append(self._text_cache[caption])
        return pad_states(rows)

    # --------------------------------------------------------------------------- samples / export

    @torch.no_grad()
    def log_samples(self, model: nn.Module, step: int, out_dir: Path) -> None:
        """Latents (``<i>.safetensors``, decodable with ``sara decode``) and, with a vocoder, ``<i>.wav``."""
        from safetensors.torch import save_file

        from sara.audio.io import save_audio

        cfg = self.config
        pipe = self._pipeline(_dit_of(model), with_vocoder=cfg.vocoder is not None)
        out_dir.mkdir(parents=True, exist_ok=True)
        gen = torch.Generator().manual_seed(0)
        latents = pipe.generate_latents(list(cfg.sample_prompts), cfg.sample_seconds, cfg.sample_steps,
                                        cfg.guidance_scale, generator=gen)
        for i, lat in enumerate(latents):
            save_file({"latents": lat.float().cpu().contiguous()}, str(out_dir / f"{i}.safetensors"),
                      metadata={"frame_rate": str(FRAME_RATE), "source": "t2a-sample"})
        if pipe.vocoder is not None:
            wav = pipe.vocoder.decode(latents, steps=None, seed=0)
            for i, w in enumerate(wav):
                save_audio(out_dir / f"{i}.wav", w.cpu(), pipe.sample_rate)
        write_text_atomically(out_dir / "prompts.json", json.dumps(list(cfg.sample_prompts), indent=1) + "\n")

    def export(self, model: nn.Module, out_dir: Path) -> Path:
        """Write a TextToAudio release (needs ``vocoder`` in the task config)."""
        if self.config.vocoder is None:
            raise ConfigError("export needs the task's vocoder path (train with --vocoder DIR)")
        return self._pipeline(_dit_of(model), with_vocoder=True).save_pretrained(out_dir)

    def _pipeline(self, dit: LatentDiT, with_vocoder: bool) -> Any:
        from sara.pipelines.text_to_audio import TextToAudio

        vocoder = None
        if with_vocoder:
            from sara.vocoder import SemanticVocoder

            vocoder = SemanticVocoder.from_pretrained(self.config.vocoder, map_location=_device_of(dit))
        encoder = self.text_encoder.to(_device_of(dit))
        # generate what the model was trained on by default (a 4 s-crop model is not asked for 10 s)
        duration = min(self.config.segment_seconds, dit.config.max_seconds)
        return TextToAudio(dit.eval(), encoder, vocoder, text_encoder_spec=self.config.text_encoder,
                           default_duration=duration)


def with_pooled_text(dit: LatentDiT) -> LatentDiT:
    """A copy of ``dit`` with the pooled-text path added (zero-initialised output: same function)."""
    from dataclasses import replace

    out = LatentDiT(replace(dit.config, pooled_text=True))
    missing, unexpected = out.load_state_dict(dit.state_dict(), strict=False)
    if unexpected or any(not k.startswith("pooled_text_embed.") for k in missing):
        raise ConfigError(f"cannot add the pooled-text path: missing {missing}, unexpected {unexpected}")
    return out


def _dit_of(model: nn.Module) -> LatentDiT:
    inner = getattr(model, "module", model)  # DDP
    return inner.dit if isinstance(inner, FlowMatchingDiT) else inner


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def _load_init(path: str) -> LatentDiT:
    """The DiT of a run dir (EMA weights), TextToAudio release, DiT release or official model dir."""
    from sara.dit.official_dir import is_official_dir

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"init_from {p}: no such file or directory")
    if (p / "checkpoints").is_dir():
        from sara.train import load_run_model

        _, model, _ = load_run_model(p)
        return _dit_of(model)
    if is_official_dir(p):
        from sara.dit.official import dit_from_official
        from sara.dit.official_dir import read_official_dir

        info = read_official_dir(p)
        return dit_from_official(info.backbone_config, info.state_dict)
    return LatentDiT.from_pretrained(p / "dit" if (p / "dit").is_dir() else p)
