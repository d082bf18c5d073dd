"""``sara train vae``: losses, the adversarial schedule, deterministic data, exact resume, export, CLI."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from diffusers import AutoencoderKL  # noqa: F401 - imported at collection: its import (seconds) is no test's cost

from sara.errors import ConfigError
from sara.mel.discriminator import PatchDiscriminator, PatchDiscriminatorConfig, hinge_discriminator_loss
from sara.mel.frontend import MelConfig
from sara.mel.vae import MelVAE, MelVAEConfig
from sara.mel.vae_training import VAETask, VAETrainConfig, adaptive_disc_weight, estimate_scale_factor
from sara.train import TrainConfig, export_run, fit, load_run_model, registry


@pytest.fixture(autouse=True)
def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.TASKS, "vae", "sara.mel.vae_training:VAETask")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight 1 s clips (tones + noise bursts; one at 24 kHz) in a corpus manifest: 6 train, 2 valid."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        sr = 24000 if i == 0 else 16000
        t = np.arange(sr) / sr
        wav = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) * (t < 0.3 + 0.08 * i)
        wav = wav + 0.05 * rng.standard_normal(sr) * (t > 0.5)
        sf.write(root / f"clip{i}.wav", wav.astype(np.float32), sr)
        rows.append({"path": f"clip{i}.wav", "split": "valid" if i >= 6 else "train"})
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root / "manifest.jsonl"


def _task(manifest: Path, **kw: object) -> VAETask:
    base = dict(train_data=(str(manifest),), model=MelVAEConfig.tiny(), mel=MelConfig.tiny(),
                discriminator=PatchDiscriminatorConfig.tiny(), crop_frames=32, lr=2e-3, disc_start=1000,
                scale_items=4)
    return VAETask(VAETrainConfig(**{**base, **kw}))  # type: ignore[arg-type]


def _train_cfg(run_dir: Path, **kw: object) -> TrainConfig:
    base = dict(run_dir=str(run_dir), max_steps=4, batch_size=3, log_every=1, ckpt_every=100, valid_every=0,
                ema_decay=None, grad_clip=None)
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def _metric(run_dir: Path, key: str) -> list[float]:
    rows = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r[key] for r in rows if key in r]


# ------------------------------------------------------------------ pieces


def test_crops_depend_on_seed_epoch_and_index_only(manifest: Path) -> None:
    train, valid = _task(manifest).build_datasets()
    assert len(train) == 6 and valid is not None and len(valid) == 2
    first = train[2]["mel"]
    assert first.shape == (32, 16)
    again, _ = _task(manifest).build_datasets()
    assert torch.equal(again[2]["mel"], first)
    again.set_epoch(1)
    assert not torch.equal(again[2]["mel"], first)
    other, _ = _task(manifest, seed=1).build_datasets()
    assert not torch.equal(other[2]["mel"], first)


def test_adaptive_weight_is_the_gradient_norm_ratio() -> None:
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    nll, g = (3.0 * w).sum(), (w**2).sum()  # gradients [3, 3] and [2, 4]
    expected = 0.5 * math.sqrt(18) / (math.sqrt(20) + 1e-4)
    assert math.isclose(float(adaptive_disc_weight(nll, g, w, 0.5)), expected, rel_tol=1e-6)


def test_hinge_loss_values() -> None:
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert math.isclose(float(hinge_discriminator_loss(real, fake)), 0.5 * (0.25 + 0.5))


def test_patch_discriminator_shape_and_init() -> None:
    torch.manual_seed(0)
    d = PatchDiscriminator(PatchDiscriminatorConfig.paper())
    assert d(torch.zeros(2, 1, 256, 64)).shape == (2, 1, 30, 6)
    assert 2.7e6 < sum(p.numel() for p in d.parameters()) < 2.8e6
    assert abs(float(d.main[0].weight.detach().std()) - 0.02) < 2e-3


def test_discriminator_is_idle_before_disc_start_and_trains_after(manifest: Path) -> None:
    task = _task(manifest, disc_start=1)
    torch.manual_seed(0)
    model = task.build_model().train()
    train, _ = task.build_datasets()
    batch = {"mel": torch.stack([train[i]["mel"] for i in range(3)])}
    out = task.compute_loss(model, batch)  # batch 0 < disc_start
    out.total.backward()
    assert "loss/d" not in out.terms and all(p.grad is None for p in model.discriminator.parameters())
    model.zero_grad(set_to_none=True)
    out = task.compute_loss(model, batch)  # batch 1 >= disc_start
    out.total.backward()
    assert {"loss/g", "loss/d", "disc/weight"} <= set(out.terms)
    assert all(p.grad is not None for p in model.discriminator.parameters())
    assert int(model.num_batches) == 2


def test_kl_reduction_and_weight_enter_the_total(manifest: Path) -> None:
    task = _task(manifest, kl_weight=0.5, kl_reduction="mean", adversarial=False)
    model = task.build_model().eval()
    train, _ = task.build_datasets()
    out = task.compute_loss(model, {"mel": torch.stack([train[0]["mel"], train[1]["mel"]])})
    assert math.isclose(float(out.total), float(out.terms["loss/nll"] + 0.5 * out.terms["loss/kl"]), rel_tol=1e-6)
    assert math.isclose(float(out.terms["loss/nll"]), float(out.terms["loss/rec_l1"]) * 32 * 16, rel_tol=1e-5)


def test_estimate_scale_factor_is_one_over_the_latent_std() -> None:
    torch.manual_seed(0)
    vae = MelVAE(MelVAEConfig.tiny()).eval()
    mels = [torch.randn(2, 1, 16, 16) * 3, torch.randn(3, 1, 16, 16) * 3]
    factor = estimate_scale_factor(vae, mels, torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        z = torch.cat([vae.encode(m).sample(gen).flatten() for m in mels]).double()
    assert math.isclose(factor, float(1 / z.std()), rel_tol=1e-9)
    with pytest.raises(ConfigError):
        estimate_scale_factor(vae, [])


def test_log_samples_writes_reconstructions_of_validation_clips(tmp_path: Path, manifest: Path) -> None:
    from safetensors.torch import load_file

    task = _task(manifest, num_log_samples=2)
    model = task.build_model().eval()
    task.log_samples(model, 10, tmp_path / "samples")
    tensors = load_file(str(tmp_path / "samples" / "recon.safetensors"))
    _, valid = task.build_datasets()
    assert tensors["mel"].shape == tensors["recon"].shape == (2, 32, 16)
    assert torch.equal(tensors["mel"][1], valid[1]["mel"])  # the validation clips' first crops


def test_config_validation(manifest: Path) -> None:
    with pytest.raises(ValueError, match="multiple of the VAE's downsample factor 4"):
        _task(manifest, crop_frames=30)
    with pytest.raises(ValueError, match="n_mels"):
        _task(manifest, mel=MelConfig.paper())
    with pytest.raises(ConfigError, match="no training data"):
        _task(manifest, train_data=()).build_datasets()


# ------------------------------------------------------------------ on the shared loop


def test_training_reduces_the_reconstruction_loss(tmp_path: Path, manifest: Path) -> None:
    from accelerate.utils import set_seed

    task = _task(manifest, disc_start=12)
    train, _ = task.build_datasets()
    batch = {"mel": torch.stack([train[i]["mel"] for i in range(len(train))])}
    set_seed(0)  # what fit does before build_model: the same initial weights
    initial = task.build_model().eval()
    fit(task, _train_cfg(tmp_path / "run", max_steps=16))
    _, trained, _ = load_run_model(tmp_path / "run", use_ema=False)
    with torch.no_grad():
        before = float(task.compute_loss(initial, batch).terms["loss/rec_l1"])
        after = float(task.compute_loss(trained, batch).terms["loss/rec_l1"])
    assert after < 0.7 * before
    assert len(_metric(tmp_path / "run", "loss/d")) == 4  # steps 13..16 are adversarial


def test_resume_is_bit_exact(tmp_path: Path, manifest: Path) -> None:
    task = _task(manifest, disc_start=2, learn_logvar=True)
    fit(task, _train_cfg(tmp_path / "a", max_steps=6))
    fit(task, _train_cfg(tmp_path / "b", max_steps=3, ckpt_every=3))
    fit(task, _train_cfg(tmp_path / "b", max_steps=6, ckpt_every=3))
    _, a, _ = load_run_model(tmp_path / "a", use_ema=False)
    _, b, step = load_run_model(tmp_path / "b", use_ema=False)
    assert step == 6 and int(b.num_batches) == 6
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert float(a.logvar) != 0.0  # the learned log-variance moved


def test_export_writes_a_loadable_release_with_its_scale_factor(tmp_path: Path, manifest: Path) -> None:
    task = _task(manifest)
    fit(task, _train_cfg(tmp_path / "run", max_steps=2))
    out = export_run(tmp_path / "run", tmp_path / "release")
    vae = MelVAE.from_pretrained(out)
    _, model, _ = load_run_model(tmp_path / "run")
    for key, value in model.vae.state_dict().items():
        assert torch.equal(vae.state_dict()[key], value), key
    expected = estimate_scale_factor(vae, task.scale_mels(), torch.Generator().manual_seed(0))
    assert vae.scale_factor == expected and vae.scale_factor != 1.0
    assert vae.encode_latents(torch.zeros(1, 1, 32, 16)).shape == (1, 8, 8, 4)


def test_cli_flags_build_the_task_and_train(tmp_path: Path, manifest: Path) -> None:
    from sara.cli import train as train_cli
    from sara.cli import train_vae

    parser = argparse.ArgumentParser()
    train_cli.add_common_arguments(parser)
    train_vae.add_arguments(parser)
    argv = ["--run-dir", str(tmp_path / "run"), "--data", str(manifest), "--preset", "tiny", "--disc-preset", "tiny",
            "--crop-frames", "32", "--lr", "1e-3", "--disc-start", "1", "--max-steps", "2", "--batch-size", "2",
            "--ema-decay", "0", "--export", str(tmp_path / "rel"), "--scale-items", "3"]
    args = parser.parse_args(argv)
    task = train_vae.build_task(args)
    assert isinstance(task, VAETask) and task.config.disc_start == 1 and task.config.model == MelVAEConfig.tiny()
    assert task.config.lr == 1e-3 and task.config.crop_frames == 32 and task.config.adversarial
    args.task_module = train_vae
    assert train_cli.run(args) == 0
    assert MelVAE.from_pretrained(tmp_path / "rel").config.n_mels == 16
    with pytest.raises(ConfigError, match="vae: crop_frames 30"):
        train_vae.build_task(parser.parse_args([*argv, "--crop-frames", "30"]))
