"""The shared loop on a toy regression task: loss falls, checkpoints resume exactly, export uses the EMA."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from sara.train import LossOutput, TrainConfig, TrainTask, export_run, fit, load_run_model, registry
from sara.train.checkpoint import list_checkpoints


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    dim: int = 4
    lr: float = 0.3


class ToyTask(TrainTask):
    name = "toy"
    config_class = ToyConfig

    def build_model(self) -> nn.Module:
        torch.manual_seed(0)
        return nn.Linear(self.config.dim, 1)

    def build_datasets(self):  # noqa: ANN201
        g = torch.Generator().manual_seed(1)
        x = torch.randn(64, self.config.dim, generator=g)
        y = x @ torch.arange(1.0, self.config.dim + 1).unsqueeze(1)
        return TensorDataset(x, y), TensorDataset(x[:16], y[:16])

    def compute_loss(self, model: nn.Module, batch) -> LossOutput:  # noqa: ANN001
        x, y = batch
        x = x + 0.01 * torch.randn_like(x)  # uses the global RNG, as real tasks do (noise, crops, dropout)
        loss = torch.mean((model(x) - y) ** 2)
        return LossOutput(loss, {"loss/mse": loss})

    def export(self, model: nn.Module, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), out_dir / "weights.pt")
        return out_dir


@pytest.fixture(autouse=True)
def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.TASKS, "toy", f"{__name__}:ToyTask")


def _cfg(run_dir: Path, **kw) -> TrainConfig:  # noqa: ANN003
    base = dict(run_dir=str(run_dir), max_steps=40, batch_size=8, log_every=5, ckpt_every=20, valid_every=20,
                ema_decay=0.9, grad_clip=10.0)
    return TrainConfig(**{**base, **kw})


def _losses(run_dir: Path) -> list[float]:
    rows = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss/mse"] for r in rows if "loss/mse" in r]


def test_loss_decreases_and_checkpoints(tmp_path: Path) -> None:
    fit(ToyTask(ToyConfig()), _cfg(tmp_path / "run"))
    losses = _losses(tmp_path / "run")
    assert losses[-1] < 0.1 * losses[0]
    ckpts = list_checkpoints(tmp_path / "run")
    assert [p.name for p in ckpts] == ["step-00000020", "step-00000040"]
    assert (ckpts[-1] / "ema.safetensors").is_file()
    assert any(json.loads(ln).get("valid/total") is not None for ln in (tmp_path / "run/metrics.jsonl").read_text().splitlines())


def test_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    fit(ToyTask(ToyConfig()), _cfg(tmp_path / "a", max_steps=40))
    fit(ToyTask(ToyConfig()), _cfg(tmp_path / "b", max_steps=20))  # "interrupted" at step 20
    fit(ToyTask(ToyConfig()), _cfg(tmp_path / "b", max_steps=40))  # resumed
    _, model_a, step_a = load_run_model(tmp_path / "a", use_ema=False)
    _, model_b, step_b = load_run_model(tmp_path / "b", use_ema=False)
    assert step_a == step_b == 40
    for (ka, va), (kb, vb) in zip(model_a.state_dict().items(), model_b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka


def test_resume_refuses_different_task_config(tmp_path: Path) -> None:
    from sara.errors import CheckpointError

    fit(ToyTask(ToyConfig()), _cfg(tmp_path / "r", max_steps=5, ckpt_every=5))
    with pytest.raises(CheckpointError, match="different task"):
        fit(ToyTask(ToyConfig(lr=0.5)), _cfg(tmp_path / "r", max_steps=10))


def test_export_uses_ema(tmp_path: Path) -> None:
    fit(ToyTask(ToyConfig()), _cfg(tmp_path / "run", max_steps=10, ckpt_every=10))
    out = export_run(tmp_path / "run", tmp_path / "rel")
    exported = torch.load(out / "weights.pt", weights_only=True)
    _, raw, _ = load_run_model(tmp_path / "run", use_ema=False)
    assert not torch.allclose(exported["weight"], raw.weight)  # EMA lags the raw weights


def test_time_limit_stops_early(tmp_path: Path) -> None:
    fit(ToyTask(ToyConfig()), _cfg(tmp_path / "t", max_steps=10_000, max_minutes=0.0, ckpt_every=10_000))
    ckpts = list_checkpoints(tmp_path / "t")
    assert len(ckpts) == 1 and ckpts[0].name == "step-00000001"
