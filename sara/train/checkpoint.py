"""Resumable training checkpoints (distinct from release artifacts).

Layout of a run directory::

    run_dir/run.json                      task name + task config + train config (written once)
    run_dir/metrics.jsonl                 one JSON object per logged step
    run_dir/checkpoints/step-00001000/    accelerate state (model, optimizer, scheduler, RNG, scaler)
                                          + ema.safetensors + trainer.json (step, epoch, batch, EMA count)
    run_dir/samples/step-00001000/        whatever the task's ``log_samples`` writes

Checkpoints are written to ``step-N.tmp`` and renamed, so an interrupted save never shadows a good one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from sara.errors import CheckpointError

__all__ = ["TrainProgress", "latest_checkpoint", "list_checkpoints", "read_run", "write_run"]

_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass
class TrainProgress:
    """Where the loop is: optimizer steps done, epoch, batches consumed in that epoch, EMA updates."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    ema_updates: int = 0


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found) if (p / "trainer.json").is_file()]


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint, or None."""
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def write_run(run_dir: Path, task_name: str, task_config: dict[str, Any], train_config: dict[str, Any]) -> None:
    """Create ``run.json``, or check that an existing one describes the same task (resuming)."""
    path = run_dir / "run.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("task") != task_name or old.get("task_config") != json.loads(json.dumps(task_config)):
            raise CheckpointError(
                f"{run_dir} holds a run with a different task or task configuration; "
                "use a new --run-dir (or the same flags as before to resume)"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    payload = {"task": task_name, "task_config": task_config, "train_config": train_config}
    path.write_text(json.dumps(payload, indent=2) + "\n")


def read_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``run.json``; raises :class:`CheckpointError` when the directory is not a training run."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: not a training run directory (no run.json)")
    return json.loads(path.read_text())


def save_extras(ckpt_dir: Path, progress: TrainProgress, ema_state: dict[str, Any] | None) -> None:
    """Write the trainer state (and EMA weights) next to accelerate's files."""
    if ema_state is not None:
        save_file(ema_state, str(ckpt_dir / "ema.safetensors"))
    (ckpt_dir / "trainer.json").write_text(json.dumps(asdict(progress), indent=2) + "\n")


def load_extras(ckpt_dir: Path) -> tuple[TrainProgress, dict[str, Any] | None]:
    """Read what :func:`save_extras` wrote."""
    progress = TrainProgress(**json.loads((ckpt_dir / "trainer.json").read_text()))
    ema_path = ckpt_dir / "ema.safetensors"
    return progress, (load_file(str(ema_path)) if ema_path.is_file() else None)


def finalize(tmp_dir: Path, final_dir: Path, keep: int) -> None:
    """Rename a finished ``.tmp`` checkpoint into place and prune all but the newest ``keep``."""
    if final_dir.exists():
        shutil.rmtree(final_dir)
    os.replace(tmp_dir, final_dir)
    ckpts = list_checkpoints(final_dir.parent.parent)
    for old in ckpts[: max(0, len(ckpts) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


def model_weights_path(ckpt_dir: Path) -> Path:
    """accelerate's file holding the (single) model's weights."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (ckpt_dir / name).is_file():
            return ckpt_dir / name
    raise CheckpointError(f"{ckpt_dir}: no model weights found")
