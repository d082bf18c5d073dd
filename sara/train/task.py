"""The plug-in interface between the shared training loop and one model family.

Each stage (semantic encoder MAE, vocoder, text-to-latent DiT) implements a :class:`TrainTask`; the loop in
:mod:`sara.train.loop` owns everything generic (devices, accumulation, mixed precision, EMA, checkpoints,
logging, resumption).  A task never sees the accelerator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from sara.serialization import config_from_dict, config_to_dict

__all__ = ["LossOutput", "TrainTask"]


@dataclass
class LossOutput:
    """Result of :meth:`TrainTask.compute_loss`.

    Attributes:
        total: scalar tensor to back-propagate.
        terms: named scalars to log (keys like ``"loss/spec"``); detached by the loop.
    """

    total: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)


class TrainTask(ABC):
    """One trainable stage.  Subclasses set ``name`` and ``config_class`` and implement the abstract methods."""

    name: ClassVar[str]
    config_class: ClassVar[type]

    def __init__(self, config: Any) -> None:
        self.config = config

    # --------------------------------------------------------------------------- (de)serialisation
    @classmethod
    def from_config_dict(cls, data: dict[str, Any]) -> TrainTask:
        """Rebuild the task from :meth:`config_dict` output (used for resume and export)."""
        return cls(config_from_dict(cls.config_class, data))

    def config_dict(self) -> dict[str, Any]:
        """JSON-ready task config stored in ``run.json``."""
        return config_to_dict(self.config)

    # ------------------------------------------------------------------------------------ required
    @abstractmethod
    def build_model(self) -> nn.Module:
        """Everything trainable (and checkpointed) as one module."""

    @abstractmethod
    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        """``(train, valid)`` map-style datasets; ``valid`` may be None.

        A train dataset with a ``sample_weights`` attribute (``[len]`` tensor, or None) is drawn from with
        replacement by those weights, still as a function of ``(seed, epoch)`` only (see ``EpochSampler``).
        """

    @abstractmethod
    def compute_loss(self, model: nn.Module, batch: Any) -> LossOutput:
        """Forward one batch (already on the model's device) and return the loss."""

    @abstractmethod
    def export(self, model: nn.Module, out_dir: Path) -> Path:
        """Write a release directory from ``model`` (the loop passes EMA weights when available)."""

    # ------------------------------------------------------------------------------------ optional
    def collate(self, items: list[Any]) -> Any:
        """Merge dataset items into a batch (default: ``torch.utils.data.default_collate``)."""
        return torch.utils.data.default_collate(items)

    def build_optimizer(
        self, model: nn.Module, max_steps: int
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
        """Default: AdamW(lr=config.lr or 1e-4, wd=config.weight_decay or 0.01) with linear warm-up."""
        lr = float(getattr(self.config, "lr", 1e-4))
        wd = float(getattr(self.config, "weight_decay", 0.01))
        warmup = int(getattr(self.config, "warmup_steps", 0))
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd, betas=(0.9, 0.99))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) if warmup > 0 else 1.0)
        return opt, sched

    @property
    def ddp_find_unused_parameters(self) -> bool:
        """Whether some parameters get no gradient in some steps (DDP must then look for them)."""
        return False

    def log_samples(self, model: nn.Module, step: int, out_dir: Path) -> None:  # noqa: B027 - optional hook
        """Write periodic samples (audio, plots) for listening; default: nothing."""
