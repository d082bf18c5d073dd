"""Shared training infrastructure: one loop (on HF accelerate) plus a :class:`TrainTask` per model family."""

from sara.train.loop import TrainConfig, export_run, fit, load_run_model
from sara.train.task import LossOutput, TrainTask

__all__ = ["LossOutput", "TrainConfig", "TrainTask", "export_run", "fit", "load_run_model"]
