"""Resumable training checkpoints (distinct from release artifacts).

Layout of a run directory::

    run_dir/run.json                      task name + task config + train config (written once)
    run_dir/metrics.jsonl                 one JSON object per logged step
    run_dir/checkpoints/step-00001000/    accelerate state (model, optimizer, scheduler, RNG, scaler)
                                          + ema.safetensors + trainer.json (step, epoch, batch, EMA count)
    run_dir/samples/step-00001000/        whatever the task's ``log_samples`` writes

Checkpoints are written to ``step-N.tmp`` and renamed, so an interrupted save never shadows a good one;
``run.json`` and ``trainer.json`` are replaced atomically, so a kill at any moment leaves either the old or
the new file, never a torn one.
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
from sara.serialization import read_json_object, write_text_atomically

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
        old = read_json_object(path)
        if old.get("task") != task_name or old.get("task_config") != json.loads(json.dumps(task_config)):
            raise CheckpointError(
                f"{run_dir} holds a run with a different task or task configuration; "
                "use a new --run-dir (or the same flags as before to resume)"
            )
    payload = {"task": task_name, "task_config": task_config, "train_config": train_config}
    write_text_atomically(path, json.dumps(payload, indent=2) + "\n")  # a kill mid-write leaves the old one


def read_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``run.json``; raises :class:`CheckpointError` when the directory is not a training run."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: not a training run directory (no run.json)")
    info = read_json_object(path)
    if not isinstance(info.get("task"), str) or not isinstance(info.get("task_config"), dict):
        raise CheckpointError(f"{path}: not a sara run description (needs 'task' and 'task_config')")
    return info


def save_extras(ckpt_dir: Path, progress: TrainProgress, ema_state: dict[str, Any] | None) -> None:
    """Write the trainer state (and EMA weights) next to accelerate's files."""
    if ema_state is not None:
        save_file(ema_state, str(ckpt_dir / "ema.safetensors"))
    write_text_atomically(ckpt_dir / "trainer.json", json.dumps(asdict(progress), indent=2) + "\n")


def load_extras(ckpt_dir: Path) -> tuple[TrainProgress, dict[str, Any] | None]:
    """Read what :func:`save_extras` wrote."""
    try:
        progress = TrainProgress(**read_json_object(ckpt_dir / "trainer.json"))
    except TypeError as exc:
        raise CheckpointError(f"{ckpt_dir / 'trainer.json'}: unexpected content ({exc})") from None
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


def truncate_metrics(path: Path, step: int) -> None:
    """Drop the rows of ``metrics.jsonl`` logged after ``step`` (and any torn last line), atomically.

    A resumed run repeats the steps after its checkpoint; without this their rows would appear twice.
    """
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            kept.append(line + "\n")
    write_text_atomically(path, "".join(kept))


def model_weights_path(ckpt_dir: Path) -> Path:
    """accelerate's file holding the (single) model's weights."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (ckpt_dir / name).is_file():
            return ckpt_dir / name
    raise CheckpointError(f"{ckpt_dir}: no model weights found")
