"""Encoder training through the shared loop: MAE loss falls, resume, export, supervised head, CLI."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sara.cli.__main__ import main
from sara.encoder import EncoderConfig, SemanticEncoder
from sara.encoder.mae import MaskedAutoencoder, patchify, random_masking
from sara.encoder.training import EncoderTask, EncoderTaskConfig
from sara.errors import ConfigError
from sara.train import TrainConfig, export_run, fit, load_run_model


def _synthetic(root: Path, n: int = 16) -> Path:
    """Amplitude-modulated tones + a little noise, 2 s at 16 kHz, in two class folders."""
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    for i in range(n):
        wav = 0.3 * np.sin(2 * np.pi * 200 * 2 ** (i / 4) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * (1 + i % 3) * t))
        wav += 0.01 * rng.standard_normal(len(t))
        folder = root / ("low" if i < n // 2 else "high")
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{i}.wav", wav.astype(np.float32), 16000)
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _synthetic(tmp_path_factory.mktemp("synth"))


def _task(data_dir: Path, **kw) -> EncoderTask:  # noqa: ANN003
    base = dict(encoder=EncoderConfig.tiny(), data_dir=str(data_dir), crop_seconds=1.5, lr=2e-3)
    return EncoderTask(EncoderTaskConfig(**{**base, **kw}))


def _train_cfg(run_dir: Path, max_steps: int) -> TrainConfig:
    return TrainConfig(run_dir=str(run_dir), max_steps=max_steps, batch_size=4, log_every=5, ckpt_every=20,
                       valid_every=1000, ema_decay=0.9)


def _losses(run_dir: Path, key: str) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r[key] for r in rows if key in r]


def test_random_masking_keeps_a_quarter_per_sample() -> None:
    x = torch.arange(2 * 8 * 3, dtype=torch.float32).view(2, 8, 3)
    kept, mask, ids_restore = random_masking(x, 0.75)
    assert kept.shape == (2, 2, 3) and mask.sum(1).tolist() == [6.0, 6.0]
    for b in range(2):  # the kept tokens are exactly the unmasked positions
        assert sorted(kept[b, :, 0].tolist()) == sorted(x[b, mask[b] == 0, 0].tolist())
    assert torch.equal(ids_restore.sort(1).values, torch.arange(8).expand(2, 8))


def test_patchify_groups_64_bins_by_4_frames() -> None:
    db = torch.arange(64 * 9, dtype=torch.float32).view(1, 64, 9)
    patches = patchify(db, 4)
    assert patches.shape == (1, 2, 256)
    assert torch.equal(patches[0, 1].view(64, 4), db[0, :, 4:8])


def test_mae_loss_only_counts_masked_patches() -> None:
    mae = MaskedAutoencoder(SemanticEncoder(EncoderConfig.tiny()), 16, 1, 1, norm_pix_loss=False)
    target = torch.randn(1, 4, 256)
    mask = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    pred = target.clone()
    pred[0, 1:3] += 100.0  # errors on visible patches only
    assert mae.loss(pred, target, mask) == 0.0
    pred[0, 0] += 1.0
    torch.testing.assert_close(mae.loss(pred, target, mask), torch.tensor(0.5))


@pytest.fixture(scope="module")
def resumed_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A 40-step MAE run, then "killed" right after its step-20 checkpoint and resumed to step 40."""
    run = tmp_path_factory.mktemp("mae") / "run"
    fit(_task(data_dir), _train_cfg(run, 40))
    _, uninterrupted, _ = load_run_model(run, use_ema=False)
    shutil.copy(run / "metrics.jsonl", run.parent / "uninterrupted.jsonl")
    shutil.rmtree(run / "checkpoints" / "step-00000040")
    fit(_task(data_dir), _train_cfg(run, 40))
    return run, uninterrupted


def test_mae_loss_falls(resumed_run: tuple[Path, torch.nn.Module]) -> None:
    losses = [json.loads(line)["loss/mae"] for line in (resumed_run[0].parent / "uninterrupted.jsonl").open()]
    assert len(losses) == 8 and losses[-1] < 0.85 * losses[0], losses


def test_resume_continues_from_checkpoint(resumed_run: tuple[Path, torch.nn.Module], tmp_path: Path) -> None:
    run, _ = resumed_run
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows]
    # resumed at 20, not from scratch; the rows the stopped process logged after step 20 were replaced
    assert steps == [5, 10, 15, 20, 25, 30, 35, 40]
    first = [json.loads(line) for line in (run.parent / "uninterrupted.jsonl").read_text().splitlines()]
    assert [r["step"] for r in first] == steps
    def losses(rs: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rs]

    assert losses(rows) == losses(first)  # bit-exact resume: the same losses, row for row
    _, model, step = load_run_model(run, use_ema=False)
    assert step == 40
    encoder = SemanticEncoder.from_pretrained(export_run(run, tmp_path / "release"))
    assert encoder.config == EncoderConfig.tiny()
    assert encoder.encode(torch.randn(1, 32000) * 0.1, 16000).shape == (1, 32, 50)


def test_resume_is_bit_exact(resumed_run: tuple[Path, torch.nn.Module]) -> None:
    run, uninterrupted = resumed_run
    _, resumed, _ = load_run_model(run, use_ema=False)
    for (name, a), b in zip(uninterrupted.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_supervised_fine_tuning_from_init(data_dir: Path, tmp_path: Path) -> None:
    init = SemanticEncoder(EncoderConfig.tiny()).save_pretrained(tmp_path / "init")
    task = _task(data_dir, objective="supervised", class_names=("high", "low"), init=str(init), lr=3e-3)
    fit(task, _train_cfg(tmp_path / "sup", 30))
    ce = _losses(tmp_path / "sup", "loss/ce")
    assert ce[-1] < ce[0], ce
    with pytest.raises(ValueError, match="class_names"):
        EncoderTaskConfig(data_dir=str(data_dir), objective="supervised")


def test_config_validation(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="more than one encoder chunk"):
        EncoderTaskConfig(data_dir=str(data_dir), crop_seconds=10.0)  # tiny chunks are 4 s
    with pytest.raises(ValueError, match="exactly one"):
        EncoderTaskConfig()
    task = _task(data_dir)
    assert EncoderTask.from_config_dict(task.config_dict()).config == task.config


def test_train_encoder_cli_on_a_manifest(tmp_path: Path, data_dir: Path) -> None:
    rows = [{"path": str(p.relative_to(data_dir)), "split": "valid" if i % 4 == 0 else "train", "class": p.parent.name}
            for i, p in enumerate(sorted(data_dir.rglob("*.wav")))]
    (data_dir / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["train", "encoder", "--run-dir", str(tmp_path / "run"), "--manifest", str(data_dir / "manifest.jsonl"),
                 "--preset", "tiny", "--crop-seconds", "1", "--max-steps", "4", "--batch-size", "4",
                 "--valid-every", "2", "--ckpt-every", "4", "--export", str(tmp_path / "out")])
    assert code == 0
    assert SemanticEncoder.from_pretrained(tmp_path / "out").latent_dim == 32
    assert any("valid/mae" in line for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
    assert main(["train", "encoder", "--run-dir", str(tmp_path / "r2"), "--data", str(tmp_path / "nope")]) == 2


def test_bad_data_dir_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        _task(tmp_path / "missing").build_datasets()
