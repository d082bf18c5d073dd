"""Training the AudioGen token LM (``sara train audiogen``) from cached codec tokens.

Objective (audiocraft ``MusicGenSolver``, which AudioGen's solver extends): the codes of a crop are laid out in
the delay pattern (``T + 1`` steps), the LM is teacher-forced, and the loss is the mean over codebooks of the
cross-entropy on the valid positions only (the last ``delay_k`` frames of codebook ``k`` have no prediction, and
padded frames of short clips are excluded).  Condition dropout: with probability ``model.cfg_dropout`` (0.1)
an item's description becomes "" (the null condition: zero states).  audiocraft draws one coin per *batch*;
sara draws one per item, from ``(seed, epoch, index)`` like the crop and the caption choice, so training is
resumable bit-exactly and dropout has lower variance.  Optimiser: AdamW, betas (0.9, 0.95), weight decay 0.1
(``config/solver/audiogen/default.yaml``), lr 5e-4 with an inverse-square-root schedule after linear warm-up
(``audiogen_base_16khz.yaml``: 3000 warm-up steps from 0).

Token cache (until ``sara.codec.encode_manifest_to_tokens`` writes it, this is the format read): for a manifest
record with ``path`` ``audio/x/y.wav``, the file ``<token_dir>/audio/x/y.safetensors`` holds ``codes [K, F]``
(integers in ``[0, card)``, 50 frames per second).  Clips are matched by their exact relative path, never by
stem alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor, nn
from torch.utils.data import Dataset

from sara.audiogen.config import LMConfig
from sara.audiogen.lm import TokenLM
from sara.audiogen.patterns import build_delay_sequence, revert_delay_logits
from sara.errors import ConfigError
from sara.text.factory import TextEncoderSpec
from sara.train.task import LossOutput, TrainTask

__all__ = ["AudioGenTask", "AudioGenTrainConfig", "TokenCaptionDataset", "codebook_cross_entropy",
           "inverse_sqrt_lambda"]


@dataclass(frozen=True)
class AudioGenTrainConfig:
    """Task settings of ``sara train audiogen``.

    Attributes:
        manifest: corpus manifest (jsonl: ``path``, ``captions``/``caption``, ``split``).
        token_dir: token cache (see the module docstring).
        model: the LM to train (its ``cfg_dropout`` is the condition dropout).
        text_encoder: frozen text encoder (``minilm`` demo default; ``t5`` + path for t5-large).
        codec: codec release (or audiocraft compression file) bundled by the export; None = token-only release.
        segment_frames: training crop in frames (audiocraft: 10 s = 500).
        lr: peak learning rate (audiocraft 5e-4).
        betas: AdamW betas.
        weight_decay: AdamW weight decay.
        warmup_steps: linear warm-up from 0 before the inverse-sqrt decay (0 = constant lr).
        seed: seed of the per-item crops, caption choice and condition dropout.
        train_split: manifest split to train on.
        valid_split: manifest split to validate on ("" = none).
    """

    manifest: str
    token_dir: str
    model: LMConfig = field(default_factory=LMConfig.small)
    text_encoder: TextEncoderSpec = field(default_factory=TextEncoderSpec)
    codec: str | None = None
    segment_frames: int = 500
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.1
    warmup_steps: int = 3000
    seed: int = 0
    train_split: str = "train"
    valid_split: str = "valid"

    def __post_init__(self) -> None:
        if self.segment_frames < 1:
            raise ValueError(f"segment_frames must be >= 1, got {self.segment_frames}")
        if not self.lr > 0 or self.warmup_steps < 0 or self.weight_decay < 0:
            raise ValueError("lr must be > 0, warmup_steps and weight_decay >= 0")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The random source of one dataset item: a function of ``(seed, epoch, index)`` only."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 1_000_033 + index) % (2**63 - 1))


@dataclass(frozen=True)
class _Clip:
    path: Path
    captions: tuple[str, ...]


class TokenCaptionDataset(Dataset):
    """``{"codes": [K, frames] long, "mask": [frames] bool, "caption": str}`` items from the token cache.

    Args:
        manifest: corpus manifest.
        token_dir: token cache directory.
        split: manifest split.
        frames: crop length; shorter clips are padded with ``special`` (mask False there).
        num_codebooks: expected K.
        special: padding token (the LM's special token ``card``).
        train: random crop, random caption and condition dropout (else first frames, first caption).
        cfg_dropout: probability that a training item's caption becomes "".
        seed: seed of the per-item randomness (with the epoch set by the loop through :meth:`set_epoch`).
    """

    def __init__(self, manifest: str | Path, token_dir: str | Path, split: str, frames: int, num_codebooks: int,
                 special: int, train: bool = True, cfg_dropout: float = 0.0, seed: int = 0) -> None:
        from sara.data.manifest import load_manifest

        self.frames, self.special, self.train = int(frames), int(special), train
        self.cfg_dropout, self.seed, self.epoch = float(cfg_dropout), int(seed), 0
        root = Path(token_dir)
        if not root.is_dir():
            raise ConfigError(f"{root}: no such token cache directory")
        records = [r for r in load_manifest(manifest) if r.get("split", "train") == split]
        self.clips = [c for c in (_clip(r, root) for r in records) if c is not None]
        self.num_missing = len(records) - len(self.clips)
        if records and not self.clips:
            raise ConfigError(f"{root}: no cached tokens for the {split!r} clips of {manifest} "
                              f"(expected <token_dir>/<path>.safetensors with 'codes' [K, F])")
        for clip in self.clips:
            _check_shape(clip.path, num_codebooks)

    def set_epoch(self, epoch: int) -> None:
        """Called by the training loop's data loader at the start of every epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.clips[index]
        g = item_generator(self.seed, self.epoch, index)
        codes = load_file(str(clip.path))["codes"].long()
        codes, mask = self._crop(codes, g)
        caption = clip.captions[int(torch.randint(len(clip.captions), (1,), generator=g))] if self.train \
            else clip.captions[0]
        if self.train and float(torch.rand(1, generator=g)) < self.cfg_dropout:
            caption = ""
        return {"codes": codes, "mask": mask, "caption": caption}

    def _crop(self, codes: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """``[K, F] -> ([K, frames], mask [frames])``: a crop (random start when training) or special padding."""
        n = codes.shape[-1]
        if n >= self.frames:
            start = int(torch.randint(n - self.frames + 1, (1,), generator=g)) if self.train else 0
            return codes[:, start:start + self.frames].clone(), torch.ones(self.frames, dtype=torch.bool)
        out = torch.full((codes.shape[0], self.frames), self.special, dtype=torch.long)
        out[:, :n] = codes
        return out, torch.arange(self.frames) < n


def _clip(record: dict, root: Path) -> _Clip | None:
    """The clip of a manifest record if its tokens are cached at the exact relative path and it has a caption."""
    captions = [c for c in record.get("captions") or [record.get("caption")] if isinstance(c, str) and c.strip()]
    if not captions or not isinstance(record.get("path"), str):
        return None
    path = root / Path(record["path"]).with_suffix(".safetensors")
    return _Clip(path, tuple(captions)) if path.is_file() else None


def _check_shape(path: Path, num_codebooks: int) -> None:
    try:
        with safe_open(str(path), framework="pt") as f:
            shape = f.get_slice("codes").get_shape()
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for bad files
        raise ConfigError(f"{path}: unreadable token file (expected tensor 'codes' [K, F]): {exc}") from None
    if len(shape) != 2 or shape[0] != num_codebooks:
        raise ConfigError(f"{path}: codes of shape {list(shape)}, expected [{num_codebooks}, F]")


def collate_tokens(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack items: ``codes [B, K, F]``, ``mask [B, F]``, ``captions`` (list of B strings)."""
    return {"codes": torch.stack([i["codes"] for i in items]), "mask": torch.stack([i["mask"] for i in items]),
            "captions": [i["caption"] for i in items]}


def codebook_cross_entropy(logits: Tensor, codes: Tensor, valid: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Mean over codebooks of the cross-entropy on valid positions (audiocraft ``_compute_cross_entropy``).

    Args:
        logits: ``[B, K, T, V]``.
        codes: ``[B, K, T]`` targets.
        valid: ``[B, K, T]`` bool.

    Returns:
        ``(loss, per-codebook losses)``.
    """
    per_codebook = []
    for k in range(codes.shape[1]):
        keep = valid[:, k]
        per_codebook.append(F.cross_entropy(logits[:, k][keep].float(), codes[:, k][keep]))
    return torch.stack(per_codebook).mean(), per_codebook


def inverse_sqrt_lambda(warmup: int) -> Any:
    """LR factor after ``s`` scheduler steps: ``n / warmup`` for ``n = s + 1 < warmup``, then ``sqrt(warmup / n)``
    (audiocraft ``InverseSquareRootLRScheduler``, warm-up from 0; ``warmup == 0``: constant)."""
    def factor(step: int) -> float:
        n = step + 1
        if warmup <= 0:
            return 1.0
        return n / warmup if n < warmup else math.sqrt(warmup / n)
    return factor


class AudioGenTask(TrainTask):
    """Trains :class:`~sara.audiogen.lm.TokenLM` by teacher-forced cross-entropy (see the module docstring)."""

    name: ClassVar[str] = "audiogen"
    config_class: ClassVar[type] = AudioGenTrainConfig
    default_grad_clip: ClassVar[float] = 1.0  # audiocraft optim.max_norm
    text_cache_size: ClassVar[int] = 65536

    def __init__(self, config: AudioGenTrainConfig, text: Any | None = None) -> None:
        """``text``: an already built :class:`~sara.audiogen.conditioning.TextConditioner` (else built lazily)."""
        super().__init__(config)
        self._text = text
        self._cache: dict[str, Tensor] = {}

    @property
    def text(self) -> Any:
        """The frozen text conditioner (built on first use)."""
        if self._text is None:
            from sara.audiogen.conditioning import build_text_conditioner

            self._text = build_text_conditioner(self.config.text_encoder)
        return self._text

    def build_model(self) -> TokenLM:
        return TokenLM(self.config.model).train()

    def build_datasets(self) -> tuple[TokenCaptionDataset, TokenCaptionDataset | None]:
        c, m = self.config, self.config.model
        train = TokenCaptionDataset(c.manifest, c.token_dir, c.train_split, c.segment_frames, m.n_q, m.card,
                                    train=True, cfg_dropout=m.cfg_dropout, seed=c.seed)
        if len(train) == 0:
            raise ConfigError(f"{c.manifest}: no {c.train_split!r} clips with cached tokens")
        valid = None
        if c.valid_split:
            valid = TokenCaptionDataset(c.manifest, c.token_dir, c.valid_split, c.segment_frames, m.n_q, m.card,
                                        train=False)
        return train, valid if valid is not None and len(valid) else None

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_tokens(items)

    def build_optimizer(self, model: nn.Module, max_steps: int):  # noqa: ANN201 - (optimizer, scheduler)
        """AdamW (betas, weight decay from the config) with the inverse-sqrt schedule."""
        params = [p for p in model.parameters() if p.requires_grad]
        c = self.config
        opt = torch.optim.AdamW(params, lr=c.lr, betas=tuple(c.betas), weight_decay=c.weight_decay, eps=1e-8)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, inverse_sqrt_lambda(c.warmup_steps))

    def compute_loss(self, model: nn.Module, batch: dict[str, Any]) -> LossOutput:
        """Teacher-forced CE of ``batch`` (``codes [B, K, F]``, ``mask [B, F]``, ``captions``)."""
        codes, frame_mask = batch["codes"], batch["mask"]
        states, mask = self.encode_captions(list(batch["captions"]))
        states, mask = states.to(codes.device), mask.to(codes.device)
        delays, special = self.config.model.delays, self.config.model.card
        sequence, _ = build_delay_sequence(codes, delays, special, codes.shape[-1] + 1)
        logits, valid = revert_delay_logits(model(sequence, states, mask), delays, fill=0.0)
        loss, per_codebook = codebook_cross_entropy(logits, codes, valid[None] & frame_mask[:, None, :])
        terms = {f"loss/ce_q{k}": v.detach() for k, v in enumerate(per_codebook)}
        return LossOutput(total=loss, terms={"loss/ce": loss.detach(), **terms})

    def encode_captions(self, captions: list[str]) -> tuple[Tensor, Tensor]:
        """Frozen text states of ``captions`` (cached per caption; "" is the null condition):
        ``(states [B, L, text_dim], mask [B, L] long)`` on the CPU, zero-padded.

        Each caption is encoded alone, so a resumed run (empty cache) sees bit-identical states; with the
        encoder's attention mask this equals audiocraft's padded batch at the real positions, and the LM's
        ``output_proj(states) * mask`` zeroes the rest either way.
        """
        todo = sorted({c for c in captions if c and c not in self._cache})
        if len(self._cache) + len(todo) > self.text_cache_size:
            self._cache.clear()
        for caption in todo:  # one at a time: the states must not depend on which captions share a batch
            states, mask = self.text([caption])
            self._cache[caption] = states[0, : int(mask[0].sum())].cpu()
        rows = [self._cache[c] if c else torch.zeros(0, self.text.dim) for c in captions]
        length = max(1, max(r.shape[0] for r in rows))
        out = torch.zeros(len(rows), length, self.text.dim)
        out_mask = torch.zeros(len(rows), length, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : r.shape[0]], out_mask[i, : r.shape[0]] = r, 1
        return out, out_mask

    def export(self, model: nn.Module, out_dir: Path) -> Path:
        """Write an AudioGen release (the LM, the text spec, and the configured codec under ``codec/``)."""
        from sara.audiogen.model import save_audiogen_release

        return save_audiogen_release(out_dir, model, self.config.text_encoder, self.config.codec)
