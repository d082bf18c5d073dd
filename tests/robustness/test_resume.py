"""Resume is bit-exact for every trainer: a clean stop (SIGINT) or a SIGKILL at any moment -- mid-step, while
``run.json`` or a checkpoint is being written -- then a rerun of the same command gives the same weights
(raw and EMA) as an uninterrupted run, with or without DataLoader worker processes.

The trainers are the tiny ones of :mod:`tests.robustness.trainers` (6 clips, batch 2, so epochs roll over;
checkpoints every 2 steps).  These tests fail without the fixes in :mod:`sara.train.resume` (items drawn
from the global RNG while the loader prefetches; a save from inside an interrupted step) and without the
lazy encoder / text-encoder construction being kept off the training RNG.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sara.train import fit, loop

from .trainers import TRAINERS, build_task, final_weights, make_data, train_config

STEPS = 5
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, torch.Tensor]]:
    """Final weights of an uninterrupted run, per trainer (computed on first use)."""
    cache: dict[str, dict[str, torch.Tensor]] = {}

    class Lazy(dict):
        def __missing__(self, name: str) -> dict[str, torch.Tensor]:
            run = tmp_path_factory.mktemp(f"ref-{name}") / "run"
            fit(build_task(name, data), train_config(run, STEPS))
            cache[name] = final_weights(run)
            return cache[name]

    return Lazy()


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, f"{len(differing)} of {len(a)} tensors differ, e.g. {differing[:3]}"


def _stop_at_step(n: int) -> object:
    """Patch the loop so that a SIGINT arrives during optimizer step ``n`` (as a Ctrl-C would)."""
    real = loop._optimizer_step
    calls = {"n": 0}

    def step(run: object, finite: bool) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == n:
            os.kill(os.getpid(), signal.SIGINT)
        return real(run, finite)

    return step


@pytest.mark.parametrize(("name", "stop", "workers"), [("encoder", 2, 0), ("vocoder", 2, 2), ("vocoder_gan", 3, 0),
                                                        ("t2a", 2, 0)])
def test_clean_stop_and_resume_is_bit_exact(name: str, stop: int, workers: int, data: Path, reference: dict,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(loop, "_optimizer_step", _stop_at_step(stop))
        with pytest.raises(KeyboardInterrupt):
            fit(build_task(name, data), train_config(run, STEPS, workers))
    assert final_weights(run) is not None and (run / "checkpoints" / f"step-{stop:08d}").is_dir()
    fit(build_task(name, data), train_config(run, STEPS, workers))  # "run the same command again"
    _assert_same(final_weights(run), reference[name])


@pytest.mark.parametrize(("kill_at", "workers"), [("fsync:1", 0), ("step:4", 2), ("finalize:2", 0)])
def test_sigkill_at_any_moment_then_resume_is_bit_exact(kill_at: str, workers: int, data: Path, reference: dict,
                                                        tmp_path: Path) -> None:
    """fsync:1 = inside the run.json write; step:4 = mid-step, with two loader workers prefetching;
    finalize:2 = the step-4 checkpoint fully written to its .tmp directory but not yet renamed."""
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tests.robustness.trainers", str(data), str(run), "vocoder",
                           str(STEPS), str(workers), kill_at], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    fit(build_task("vocoder", data), train_config(run, STEPS))  # resumed here, without worker processes
    _assert_same(final_weights(run), reference["vocoder"])


def test_sigterm_to_the_process_group_stops_cleanly(data: Path, reference: dict, tmp_path: Path) -> None:
    """As when a scheduler stops a job: every process, loader workers included, gets SIGTERM at some moment."""
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.robustness.trainers", str(data), str(run), "vocoder",
                             str(STEPS), "2", "-"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = run / "checkpoints" / "step-00000002" / "trainer.json"
    deadline = time.monotonic() + 240
    while not first.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode in (0, 130), err[-2000:]  # 0: it finished before the signal arrived
    assert "Traceback" not in err
    fit(build_task("vocoder", data), train_config(run, STEPS))
    _assert_same(final_weights(run), reference["vocoder"])


def test_trainers_cover_every_task() -> None:
    from sara.train.registry import TASKS

    assert {"encoder", "vocoder", "t2a"} <= set(TASKS) and set(TRAINERS) >= {"encoder", "vocoder", "t2a"}
