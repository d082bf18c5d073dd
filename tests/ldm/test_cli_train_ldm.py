"""``sara train ldm`` flags: --build-cache builds the cache, the task config follows the flags, a run trains."""

import argparse
from pathlib import Path

import pytest

from sara.cli import train_ldm
from sara.errors import ConfigError
from sara.ldm.config import UNetConfig
from tests.ldm.corpus_fixture import tiny_vae


def _parse(argv: list[str]) -> argparse.Namespace:
    from sara.cli.train import add_common_arguments

    p = argparse.ArgumentParser()
    add_common_arguments(p)
    train_ldm.add_arguments(p)
    return p.parse_args(argv)


def test_flags_build_the_cache_and_the_task(corpus: Path, t5_dir: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from sara.train import registry

    monkeypatch.setitem(registry.TASKS, "ldm", "sara.ldm.training:LDMTask")
    tiny_vae().save_pretrained(tmp_path / "vae")
    cache = tmp_path / "cache"
    args = _parse(["--run-dir", str(tmp_path / "run"), "--latent-cache", str(cache), "--build-cache",
                   "--data", str(corpus), "--vae", str(tmp_path / "vae"), "--frames", "64", "--preset", "tiny",
                   "--text-encoder", "t5", "--t5-path", str(t5_dir), "--snr-gamma", "0", "--uncondition-prob",
                   "0.2", "--max-steps", "2", "--batch-size", "2", "--seed", "3", "--mix-fraction", "0.4"])
    task = train_ldm.build_task(args)
    cfg = task.config
    assert cfg.unet == UNetConfig.tiny() and cfg.snr_gamma is None and cfg.seed == 3 and cfg.lr == 3e-5
    assert (cache / "cache.json").is_file()
    train, valid = task.build_datasets()
    assert len(train) == 5 + 2 and len(valid) == 1  # round(0.4 * 5) mixtures
    from sara.cli.train import run

    args.task_module = train_ldm
    assert run(args) == 0
    assert (tmp_path / "run/checkpoints/step-00000002").is_dir()


def test_build_cache_needs_data_and_vae(tmp_path: Path) -> None:
    args = _parse(["--run-dir", str(tmp_path), "--latent-cache", str(tmp_path / "c"), "--build-cache"])
    with pytest.raises(ConfigError, match="--data"):
        train_ldm.build_task(args)
