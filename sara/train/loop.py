"""The shared training loop, on HF ``accelerate`` (single CPU, one GPU, or ``accelerate launch`` multi-GPU).

``fit(task, TrainConfig(...))`` resumes automatically from the newest checkpoint in ``run_dir``; it shows a
progress bar on the main process, keeps an EMA, validates, writes samples, checkpoints every
``ckpt_every`` steps and on interruption or ``max_minutes``.  ``export_run`` turns a run into a release.

A task's training set is map-style (drawn by :class:`~sara.train.resume.SeededSampler`) or a streaming
``IterableDataset`` such as :class:`sara.data.stream.ShardStream`, which splits itself over processes and
workers: the loop calls its ``bind`` (seed, batch size, rank, world size, workers), its ``set_epoch(epoch,
skip_batches=...)`` before each epoch (the batches already consumed when resuming mid-epoch) and moves its
batches to the device itself; accelerate does not wrap that loader.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset
from tqdm.auto import tqdm

from sara.errors import CheckpointError, ConfigError, SaraError
from sara.serialization import load_state_dict_strict
from sara.train import checkpoint as ckpt
from sara.train.ema import EMA
from sara.train.resume import (  # EpochSampler is re-exported here, where it used to live
    EpochSampler,
    SeededCollate,
    SeededDataset,
    SeededSampler,
    StopRequest,
    fork_rng,
    worker_init,
)
from sara.train.task import LossOutput, TrainTask

__all__ = ["TrainConfig", "export_run", "fit", "load_run_model"]


@dataclass(frozen=True)
class TrainConfig:
    """Generic optimisation settings shared by every task (task-specific ones live in the task config).

    Attributes:
        run_dir: where checkpoints, metrics and samples go; reused to resume.
        max_steps: optimizer steps to train for (resuming continues up to this count).
        batch_size: per-process batch size.
        grad_accum: micro-batches per optimizer step.
        grad_clip: max global grad norm (None disables; optimizers that clip themselves, e.g. ScaledAdam).
        ema_decay: EMA decay (None disables EMA; export then uses the raw weights).
        max_minutes: stop (and checkpoint) after this wall time; None = no limit.
        max_bad_steps: abort after this many consecutive non-finite losses.
        gradient_checkpointing: recompute activations in the backward pass (the model's
            ``set_gradient_checkpointing``; the DiT and vocoder trainers have it): less memory, ~1 more forward.
    """

    run_dir: str
    max_steps: int = 1000
    batch_size: int = 16
    grad_accum: int = 1
    grad_clip: float | None = 1.0
    ema_decay: float | None = 0.999
    num_workers: int = 0
    log_every: int = 10
    ckpt_every: int = 500
    keep_checkpoints: int = 2
    valid_every: int = 500
    valid_batches: int = 8
    sample_every: int = 0
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    seed: int = 0
    max_minutes: float | None = None
    max_bad_steps: int = 20
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "grad_accum", "log_every", "ckpt_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_workers", "valid_every", "valid_batches", "sample_every", "max_bad_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ConfigError(f"mixed_precision must be no/bf16/fp16, got {self.mixed_precision!r}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in (0, 1) (or off), got {self.ema_decay}")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise ConfigError(f"grad_clip must be a positive number (or off), got {self.grad_clip}")
        if self.max_minutes is not None and not (math.isfinite(self.max_minutes) and self.max_minutes >= 0):
            raise ConfigError(f"max_minutes must be a number >= 0, got {self.max_minutes}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be in [0, 2**32), got {self.seed}")


@dataclass
class _Run:
    """Everything the loop mutates, bundled so helpers stay small."""

    accel: Any
    task: TrainTask
    cfg: TrainConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loader: DataLoader
    sampler: Any  # SeededSampler, or the streaming train set itself (set_epoch with skip_batches)
    valid: Dataset | None
    ema: EMA | None
    progress: ckpt.TrainProgress
    run_dir: Path
    started: float = 0.0  # time.monotonic() when this process started training
    at_step_boundary: bool = True  # no optimizer step is half done (a save now would resume exactly)
    stream: bool = False  # the train set is an IterableDataset (see the module docstring)


def fit(task: TrainTask, cfg: TrainConfig) -> dict[str, float]:
    """Train ``task`` until ``cfg.max_steps`` (resuming from ``cfg.run_dir`` if it has checkpoints).

    Returns:
        The last logged metrics (mean over the last logging window).
    """
    run = _setup(task, cfg)
    if run.progress.step >= cfg.max_steps:
        _print(run, f"run already at step {run.progress.step} >= max_steps {cfg.max_steps}; nothing to do")
        return {}
    # A second Ctrl-C raises KeyboardInterrupt mid-step: nothing is saved then (a state from the middle of a
    # step would not resume exactly); the last periodic checkpoint stands.
    with StopRequest() as stop:
        try:
            metrics = _train(run, stop)
        except SaraError as exc:  # e.g. a clip that became unreadable: keep the steps done so far
            if run.at_step_boundary:
                _save(run)
            # A user error needs no frames; dropping them frees the loader (and its worker processes) now
            # instead of whenever the garbage collector breaks the traceback's reference cycles.
            raise exc.with_traceback(None)  # noqa: B904 - the same exception, re-raised
    _save(run)
    if stop.signal is not None:
        _print(run, f"stopped by signal {stop.signal} at step {run.progress.step}; checkpoint saved, "
                    "run the same command again to resume")
        raise KeyboardInterrupt
    return metrics


def _setup(task: TrainTask, cfg: TrainConfig) -> _Run:
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    ddp = DistributedDataParallelKwargs(find_unused_parameters=task.ddp_find_unused_parameters)
    # step_scheduler_with_optimizer=False: sara's schedules count optimizer steps, so the scheduler steps once per
    # optimizer step whatever the number of processes (accelerate's default steps it num_processes times)
    accel = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum,
                        cpu=not torch.cuda.is_available(), kwargs_handlers=[ddp], step_scheduler_with_optimizer=False)
    set_seed(cfg.seed)
    run_dir = Path(cfg.run_dir)
    # Data problems (bad manifests, missing audio, too few items) are reported before the run directory exists.
    train_ds, valid_ds = task.build_datasets()
    stream = isinstance(train_ds, IterableDataset)
    if stream:
        _bind_stream(train_ds, cfg, accel)
    elif len(train_ds) < cfg.batch_size:  # type: ignore[arg-type]
        raise ConfigError(f"training set has {len(train_ds)} items, fewer than batch_size {cfg.batch_size}")  # type: ignore[arg-type]
    if accel.is_main_process:
        ckpt.write_run(run_dir, task.name, task.config_dict(), asdict(cfg))
    accel.wait_for_everyone()
    model = task.build_model()
    if cfg.gradient_checkpointing:
        _enable_checkpointing(model, task.name)
    optimizer, scheduler = task.build_optimizer(model, cfg.max_steps)
    if stream:  # the stream yields (item, seed) pairs itself and splits itself over processes
        sampler: Any = train_ds
        loader = DataLoader(train_ds, batch_size=cfg.batch_size, drop_last=True,
                            collate_fn=SeededCollate(task.collate), num_workers=cfg.num_workers,
                            worker_init_fn=worker_init if cfg.num_workers else None,
                            generator=torch.Generator().manual_seed(cfg.seed))
        model, optimizer = accel.prepare(model, optimizer)
    else:
        sampler = SeededSampler(EpochSampler(len(train_ds), cfg.seed, getattr(train_ds, "sample_weights", None)),  # type: ignore[arg-type]
                                cfg.seed)
        # Items are fetched with RNGs seeded per (seed, epoch, position) (see sara.train.resume); the private
        # generator (re-seeded per epoch in _batches) gives the workers' base seeds.
        loader = DataLoader(SeededDataset(train_ds), batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                            collate_fn=SeededCollate(task.collate), num_workers=cfg.num_workers,
                            worker_init_fn=worker_init if cfg.num_workers else None,
                            generator=torch.Generator().manual_seed(cfg.seed))
        model, optimizer, loader = accel.prepare(model, optimizer, loader)
    if scheduler is not None:
        scheduler = accel.prepare(scheduler)
    ema = EMA(accel.unwrap_model(model), cfg.ema_decay) if cfg.ema_decay else None
    run = _Run(accel, task, cfg, model, optimizer, scheduler, loader, sampler, valid_ds, ema,
               ckpt.TrainProgress(), run_dir, stream=stream)
    _maybe_resume(run)
    return run


def _bind_stream(train_ds: IterableDataset, cfg: TrainConfig, accel: Any) -> None:
    """Tell a streaming train set how the loop reads it (it raises ConfigError if too small)."""
    if not hasattr(train_ds, "bind") or not hasattr(train_ds, "set_epoch"):
        raise ConfigError(f"{type(train_ds).__name__}: a streaming training set needs bind() and set_epoch() "
                          "(see sara.data.stream.ShardStream)")
    train_ds.bind(seed=cfg.seed, batch_size=cfg.batch_size, rank=accel.process_index,
                  world_size=accel.num_processes, num_workers=cfg.num_workers)


def _maybe_resume(run: _Run) -> None:
    latest = ckpt.latest_checkpoint(run.run_dir)
    if latest is None:
        return
    run.accel.load_state(str(latest))
    run.progress, ema_state = ckpt.load_extras(latest)
    if run.ema is not None and ema_state is not None:
        run.ema.load_state_dict(ema_state, run.progress.ema_updates)
    if run.accel.is_main_process:  # rows logged after this checkpoint by the stopped process are redone
        ckpt.truncate_metrics(run.run_dir / "metrics.jsonl", run.progress.step)
    _print(run, f"resumed from {latest} (step {run.progress.step})")


def _batches(run: _Run) -> Iterator[Any]:
    """Endless batches, epoch after epoch, starting where the progress counters say."""
    while True:
        loader = run.loader
        if run.stream:  # the stream regenerates the epoch and skips what was consumed (sara.data.stream)
            run.sampler.set_epoch(run.progress.epoch, skip_batches=run.progress.batch_in_epoch)
        else:
            if run.progress.batch_in_epoch:
                loader = run.accel.skip_first_batches(run.loader, run.progress.batch_in_epoch)
            # accelerate's loaders push their own iteration counter into the sampler's epoch; set both
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(run.progress.epoch)
            run.sampler.set_epoch(run.progress.epoch)
        _reseed_loader(loader, run.cfg.seed * 100_003 + run.progress.epoch)
        for batch in loader:
            run.progress.batch_in_epoch += 1
            yield _to_device(batch, run.accel.device) if run.stream else batch
        run.progress.epoch += 1
        run.progress.batch_in_epoch = 0


def _enable_checkpointing(model: nn.Module, task_name: str) -> None:
    """``model.set_gradient_checkpointing(True)``; ConfigError when this task's model has no such switch."""
    setter = getattr(model, "set_gradient_checkpointing", None)
    if setter is None:
        raise ConfigError(f"gradient checkpointing is not available for the {task_name} trainer")
    setter(True)


def _reseed_loader(loader: Any, seed: int) -> None:
    """Re-seed the generator(s) a (possibly accelerate-wrapped) loader draws its worker seeds from."""
    for obj in (loader, getattr(loader, "base_dataloader", None)):
        gen = getattr(obj, "generator", None)
        if isinstance(gen, torch.Generator):
            gen.manual_seed(seed)


def _train(run: _Run, stop: StopRequest) -> dict[str, float]:
    """The step loop, until ``max_steps``, the time limit or a stop request."""
    cfg, p = run.cfg, run.progress
    start = run.started = time.monotonic()
    bar = tqdm(total=cfg.max_steps, initial=p.step, desc=f"train {run.task.name}", dynamic_ncols=True,
               disable=not run.accel.is_main_process)
    batches = _batches(run)
    # Closed on errors too: the bar, so an error message starts on its own line, and the batch generator,
    # so the loader's worker processes are shut down now (an exception's traceback would keep them alive).
    with bar, contextlib.closing(batches):
        return _step_loop(run, stop, bar, start, batches)


def _step_loop(run: _Run, stop: StopRequest, bar: tqdm, start: float, batches: Iterator[Any]) -> dict[str, float]:
    """The body of :func:`_train`: one iteration per micro-batch."""
    cfg, p = run.cfg, run.progress
    window: dict[str, list[float]] = {}
    last: dict[str, float] = {}
    bad = 0
    run.model.train()
    for batch in batches:
        run.at_step_boundary = False
        terms, finite = _step(run, batch)
        bad = 0 if finite else bad + 1
        if bad >= cfg.max_bad_steps:
            raise FloatingPointError(f"{bad} consecutive non-finite losses at step {p.step}; stopping")
        if not run.accel.sync_gradients:
            continue
        p.step += 1
        run.at_step_boundary = True
        bar.update(1)
        for k, v in terms.items():
            window.setdefault(k, []).append(v)
        if p.step % cfg.log_every == 0 or p.step == cfg.max_steps:
            last = _log(run, window, bar)
            window = {}
        _periodic(run)
        out_of_time = cfg.max_minutes is not None and time.monotonic() - start > 60 * cfg.max_minutes
        if p.step >= cfg.max_steps or out_of_time or stop.signal is not None:
            if out_of_time:
                _print(run, f"time limit reached at step {p.step}")
            break
    return last


def _step(run: _Run, batch: Any) -> tuple[dict[str, float], bool]:
    """One micro-batch: forward, backward, and (on sync) clip + optimizer/scheduler step + EMA."""
    with run.accel.accumulate(run.model):
        with run.accel.autocast():
            out: LossOutput = run.task.compute_loss(run.model, batch)
        finite = bool(torch.isfinite(out.total.detach()))
        if finite:
            run.accel.backward(out.total)
        terms = {k: float(v.detach()) for k, v in out.terms.items()}
        terms.setdefault("loss/total", float(out.total.detach()))
        if run.accel.sync_gradients:
            terms.update(_optimizer_step(run, finite))
    return terms, finite


def _optimizer_step(run: _Run, finite: bool) -> dict[str, float]:
    """Clip, step the optimizer and scheduler (finite losses only), zero the grads, update the EMA."""
    terms = {}
    if run.cfg.grad_clip is not None:
        terms["grad/norm"] = float(run.accel.clip_grad_norm_(run.model.parameters(), run.cfg.grad_clip))
    if finite:
        run.optimizer.step()
        if run.scheduler is not None:
            run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if run.ema is not None and finite:
        run.ema.update(run.accel.unwrap_model(run.model))
        run.progress.ema_updates = run.ema.num_updates
    return terms


def _log(run: _Run, window: dict[str, list[float]], bar: tqdm) -> dict[str, float]:
    means = {k: sum(v) / len(v) for k, v in window.items() if v}
    means["lr"] = float(run.optimizer.param_groups[0]["lr"])
    means["time/session_s"] = round(time.monotonic() - run.started, 1)  # wall time since this (re)start
    if run.accel.is_main_process:
        bar.set_postfix({k.split("/")[-1]: f"{v:.4g}" for k, v in means.items() if k.startswith("loss")})
        with open(run.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": run.progress.step, **means}) + "\n")
    return means


def _periodic(run: _Run) -> None:
    cfg, step = run.cfg, run.progress.step
    if run.valid is not None and cfg.valid_every and step % cfg.valid_every == 0:
        _validate(run)
    if cfg.sample_every and step % cfg.sample_every == 0 and run.accel.is_main_process:
        with fork_rng(cfg.seed + step, cuda=True):  # samples never shift the training RNG stream
            run.task.log_samples(_eval_model(run), step, run.run_dir / "samples" / f"step-{step:08d}")
        run.model.train()
    if step % cfg.ckpt_every == 0:
        _save(run)


def _eval_model(run: _Run) -> nn.Module:
    """The EMA weights (a copy) if EMA is on, else the raw model; in eval mode."""
    model = run.accel.unwrap_model(run.model)
    return run.ema.averaged_copy(model) if run.ema is not None else model.eval()


@torch.no_grad()
def _validate(run: _Run) -> dict[str, float]:
    model = _eval_model(run)
    loader = DataLoader(run.valid, batch_size=run.cfg.batch_size, shuffle=False, collate_fn=run.task.collate)  # type: ignore[arg-type]
    sums: dict[str, float] = {}
    count = 0
    with fork_rng(1234, cuda=True):  # the same noise/timesteps at every evaluation; training RNGs untouched
        for i, batch in enumerate(loader):
            if i >= run.cfg.valid_batches:
                break
            batch = _to_device(batch, run.accel.device)
            out = run.task.compute_loss(model, batch)
            for k, v in {**out.terms, "loss/total": out.total}.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            count += 1
    run.model.train()
    means = {f"valid/{k.split('/', 1)[-1]}": v / max(count, 1) for k, v in sums.items()}
    if run.accel.is_main_process and means:
        with open(run.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": run.progress.step, **means}) + "\n")
    return means


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _save(run: _Run) -> None:
    step = run.progress.step
    final = run.run_dir / "checkpoints" / f"step-{step:08d}"
    if (final / "trainer.json").is_file():
        return
    tmp = final.with_name(final.name + ".tmp")
    run.accel.wait_for_everyone()
    if run.accel.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)  # left by a process killed while saving
    run.accel.wait_for_everyone()
    run.accel.save_state(str(tmp))
    run.accel.wait_for_everyone()  # every process has written its RNG state into tmp before it is renamed
    if run.accel.is_main_process:
        ckpt.save_extras(tmp, run.progress, run.ema.state_dict() if run.ema is not None else None)
        ckpt.finalize(tmp, final, run.cfg.keep_checkpoints)
    run.accel.wait_for_everyone()


def _print(run: _Run, msg: str) -> None:
    if run.accel.is_main_process:
        tqdm.write(f"[sara train] {msg}")


# ------------------------------------------------------------------------------------------- export


def load_run_model(run_dir: str | Path, *, use_ema: bool = True,
                   overrides: dict[str, Any] | None = None) -> tuple[TrainTask, nn.Module, int]:
    """Rebuild a run's task and model from its newest checkpoint.

    ``overrides`` replaces task-config fields that do not change the model (e.g. the vocoder a text-to-audio
    export bundles).

    Returns:
        ``(task, model in eval mode, step)``; the model holds the EMA weights when available and ``use_ema``.
    """
    from safetensors.torch import load_file

    from sara.train.registry import get_task_class

    info = ckpt.read_run(run_dir)
    task = get_task_class(info["task"]).from_config_dict({**info["task_config"], **(overrides or {})})
    latest = ckpt.latest_checkpoint(run_dir)
    if latest is None:
        raise CheckpointError(f"{run_dir}: the run has no complete checkpoint yet")
    model = task.build_model()
    ema_path = latest / "ema.safetensors"
    if use_ema and ema_path.is_file():
        weights = {**model.state_dict(), **load_file(str(ema_path))}
    else:
        wpath = ckpt.model_weights_path(latest)
        weights = load_file(str(wpath)) if wpath.suffix == ".safetensors" else torch.load(wpath, weights_only=True)
    load_state_dict_strict(model, weights, source=str(latest))
    progress, _ = ckpt.load_extras(latest)
    return task, model.eval(), progress.step


def export_run(run_dir: str | Path, out_dir: str | Path, *, use_ema: bool = True,
               overrides: dict[str, Any] | None = None) -> Path:
    """Write the release directory of a training run (EMA weights by default; ``overrides`` as in
    :func:`load_run_model`)."""
    task, model, _ = load_run_model(run_dir, use_ema=use_ema, overrides=overrides)
    return task.export(model, Path(out_dir))


def steps_per_epoch(num_items: int, batch_size: int, grad_accum: int = 1) -> int:
    """Optimizer steps in one pass over ``num_items`` (drop_last)."""
    return max(1, math.floor(num_items / batch_size) // grad_accum)
