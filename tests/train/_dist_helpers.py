"""Helpers of the multi-process equivalence tests: tiny datasets, launching ``sara train`` runs, weight diffs.

Every run is a real CLI process (``python -m sara.cli train ...``), launched alone, under ``torchrun`` or
under ``accelerate launch`` with the gloo backend on CPU.  Runs with a deliberately broken set-up go through
``_dist_runner.py`` (``SARA_TEST_BREAK``); nothing outside this directory reads that variable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file

Launcher = Literal["single", "torchrun", "accelerate"]
RUNNER = Path(__file__).with_name("_dist_runner.py")
LATENT_DIM = 8  # vocoder and DiT latents (the tiny vocoder / DiT accept any width)


# ------------------------------------------------------------------------------------- tiny datasets


def vocoder_data(root: Path, num_clips: int = 8) -> list[str]:
    """``num_clips`` 0.8 s tones at 24 kHz in a folder + a latent cache ``[8, 20]`` per clip.

    Returns:
        The data flags of ``sara train vocoder`` (``--data DIR --latent-cache CACHE --latent-dim 8``).
    """
    audio, cache = root / "audio", root / "latents"
    audio.mkdir(parents=True)
    cache.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(19200) / 24000
    for i in range(num_clips):
        wav = 0.4 * np.sin(2 * np.pi * (150 + 60 * i) * t) + 0.02 * rng.standard_normal(t.shape)
        sf.write(str(audio / f"c{i}.wav"), wav.astype(np.float32), 24000)
        lat = torch.from_numpy(rng.standard_normal((LATENT_DIM, 20)).astype(np.float32))
        save_file({"latents": lat}, str(cache / f"c{i}.safetensors"))
    return ["--data", str(audio), "--latent-cache", str(cache), "--latent-dim", str(LATENT_DIM)]


def t2a_data(root: Path, num_clips: int = 8) -> list[str]:
    """A manifest of ``num_clips`` captioned clips (all in the train split) and their ``[8, 30]`` latents.

    Returns:
        The data flags of ``sara train t2a``.
    """
    cache = root / "latents" / "audio"
    cache.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    rows = []
    for i in range(num_clips):
        sign = 1.0 if i % 2 else -1.0
        lat = sign * torch.ones(LATENT_DIM, 30) + 0.3 * torch.randn(LATENT_DIM, 30, generator=g)
        save_file({"latents": lat}, str(cache / f"c{i}.safetensors"))
        caps = ["a dog barks", "a dog"] if i % 2 else ["rain falls", "heavy rain"]
        rows.append({"path": f"audio/c{i}.wav", "captions": caps, "caption": caps[0], "split": "train"})
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ["--data", str(manifest), "--latent-cache", str(root / "latents"), "--latent-dim", str(LATENT_DIM)]


def encoder_data(root: Path, num_clips: int = 8) -> list[str]:
    """``num_clips`` 2 s amplitude-modulated tones at 16 kHz in two class folders.

    Returns:
        The data flags of ``sara train encoder``.
    """
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    for i in range(num_clips):
        wav = 0.3 * np.sin(2 * np.pi * 200 * 2 ** (i / 4) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * (1 + i % 3) * t))
        wav += 0.01 * rng.standard_normal(len(t))
        folder = root / "audio" / ("low" if i < num_clips // 2 else "high")
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(str(folder / f"{i}.wav"), wav.astype(np.float32), 16000)
    return ["--data", str(root / "audio")]


# ------------------------------------------------------------------------------------------ launching


@dataclass
class RunResult:
    """A finished ``sara train`` process: its run directory and wall time (s)."""

    run_dir: Path
    seconds: float


def child_env(break_mode: str | None = None) -> dict[str, str]:
    """The environment of a training process: one thread, offline, optionally a ``SARA_TEST_BREAK`` mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SARA_TEST_", "ACCELERATE_", "LOCAL_RANK"))}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    if break_mode is not None:
        env["SARA_TEST_BREAK"] = break_mode
    return env


def command(launcher: Launcher, argv: list[str], *, via_runner: bool = False) -> list[str]:
    """The command line that runs ``sara <argv>`` under ``launcher`` (2 processes unless 'single')."""
    target = [str(RUNNER)] if via_runner else ["-m", "sara.cli"]
    if launcher == "single":
        return [sys.executable, *target, *argv]
    if launcher == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                *(target if via_runner else ["-m", "sara.cli"]), *argv]
    # `accelerate launch --cpu --num_processes 2` starts ONE process (accelerate starts several CPU processes
    # only through mpirun); --multi_gpu goes through torch's elastic launcher, and on a machine without CUDA
    # sara's loop then runs gloo processes on the CPU
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(_free_port()), *target, *argv]


def train(launcher: Launcher, task: str, run_dir: Path, data: list[str], *, batch_size: int, steps: int,
          extra: tuple[str, ...] = (), break_mode: str | None = None, timeout: float = 120.0) -> RunResult:
    """Run ``sara train <task>`` to ``steps`` optimizer steps (fp32, no EMA, checkpoint at the end only).

    Raises:
        AssertionError: the process failed (its output is in the message).
    """
    argv = ["train", task, "--run-dir", str(run_dir), "--max-steps", str(steps), "--batch-size", str(batch_size),
            "--ckpt-every", "100000", "--valid-every", "0", "--log-every", "1", "--ema-decay", "0",
            "--seed", "3", *data, *extra]
    start = time.monotonic()
    proc = subprocess.run(command(launcher, argv, via_runner=break_mode is not None), env=child_env(break_mode),
                          capture_output=True, text=True, timeout=timeout, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, f"{launcher} {task} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return RunResult(run_dir, time.monotonic() - start)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------ comparing


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The model weights of the run's newest checkpoint (what ``accelerate.save_state`` wrote)."""
    from sara.train import checkpoint as ckpt

    latest = ckpt.latest_checkpoint(run_dir)
    assert latest is not None, f"{run_dir}: no checkpoint"
    path = ckpt.model_weights_path(latest)
    return load_file(str(path)) if path.suffix == ".safetensors" else torch.load(path, weights_only=True)


def max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference over all floating-point tensors (same keys required)."""
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def initial_weights(task: str, data: list[str]) -> dict[str, torch.Tensor]:
    """The trainable parameters a run of ``sara train <task> <data> --seed 3`` starts from (rebuilt here the
    way the loop does: seed, datasets, model)."""
    from accelerate.utils import set_seed

    from sara.cli.__main__ import build_parser

    args = build_parser().parse_args(["train", task, "--run-dir", "unused", "--seed", "3", *data])
    built = args.task_module.build_task(args)
    set_seed(3)
    built.build_datasets()
    model = built.build_model()
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def relative_l2(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], init: dict[str, torch.Tensor]) -> float:
    """``||a - b|| / ||a - init||`` over the parameters in ``init`` (all concatenated, float64)."""

    def dist(x: dict[str, torch.Tensor], y: dict[str, torch.Tensor]) -> float:
        return sum(float((x[k].double() - y[k].double()).pow(2).sum()) for k in init) ** 0.5

    moved = dist(a, init)
    assert moved > 0, "training did not change the weights"
    return dist(a, b) / moved


def metric_rows(run_dir: Path, key: str) -> list[float]:
    """``key`` of every logged training step (``--log-every 1``)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r[key] for r in rows if key in r]
