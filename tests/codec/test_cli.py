"""``sara train codec`` flags: parse, build the task, train two steps through the shared command, export."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sara.cli import train as train_cli
from sara.cli import train_codec
from sara.codec import CodecConfig, EncodecCodec
from sara.errors import ConfigError
from sara.train import registry


@pytest.fixture(autouse=True)
def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.TASKS, "codec", "sara.codec.training:CodecTask")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train_cli.add_common_arguments(parser)
    train_codec.add_arguments(parser)
    args = parser.parse_args(argv)
    args.task_module = train_codec
    return args


def test_train_and_export_through_the_cli(tmp_path: Path) -> None:
    for i in range(3):
        sf.write(tmp_path / f"c{i}.wav", (0.3 * np.sin(np.arange(3000) * 0.07 * (i + 1))).astype(np.float32), 16000)
    (tmp_path / "m.jsonl").write_text("".join(json.dumps({"path": f"c{i}.wav"}) + "\n" for i in range(3)))
    args = _parse(["--run-dir", str(tmp_path / "run"), "--data", str(tmp_path / "m.jsonl"), "--preset", "tiny",
                   "--disc-preset", "tiny", "--segment-seconds", "0.05", "--max-steps", "2", "--batch-size", "2",
                   "--ema-decay", "0", "--export", str(tmp_path / "rel")])
    task = train_codec.build_task(args)
    assert task.config.adversarial and task.config.model == CodecConfig.tiny() and task.default_grad_clip is None
    assert train_cli.run(args) == 0
    assert EncodecCodec.from_pretrained(tmp_path / "rel").config == CodecConfig.tiny()


def test_flags_reach_the_config_and_bad_values_are_config_errors(tmp_path: Path) -> None:
    args = _parse(["--run-dir", "r", "--data", "m.jsonl", "--no-adversarial", "--no-balancer", "--bins", "512",
                   "--dead-code-threshold", "0.5",
                   "--lr", "1e-3"])
    cfg = train_codec.build_task(args).config
    assert (cfg.adversarial, cfg.balance_grads, cfg.model.bins, cfg.lr) == (False, False, 512, 1e-3)
    assert cfg.model.threshold_ema_dead_code == 0.5
    assert cfg.model.n_filters == CodecConfig.small().n_filters
    with pytest.raises(ConfigError, match="codec: "):
        train_codec.build_task(_parse(["--run-dir", "r", "--data", "m.jsonl", "--segment-seconds", "0.001"]))
