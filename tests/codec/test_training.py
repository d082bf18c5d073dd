"""Codec training on the shared loop: losses, balancer, data determinism, loss falls, bit-exact resume, export."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sara.codec import CodecConfig, EncodecCodec
from sara.codec.balancer import LossBalancer
from sara.codec.data import CodecWindowDataset, collate_windows, random_crops
from sara.codec.discriminator import MSSTFTDConfig
from sara.codec.losses import MultiScaleMelLoss, mel_power_spectrogram
from sara.codec.training import CodecTask, CodecTrainConfig
from sara.train import TrainConfig, export_run, fit, load_run_model, registry
from sara.vocoder.data import list_clips


@pytest.fixture(autouse=True)
def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.TASKS, "codec", "sara.codec.training:CodecTask")


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    """Six 24 kHz clips (tones and noise bursts) with a train/valid manifest, like the open corpus."""
    root = tmp_path / "corpus"
    (root / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        t = np.arange(int(24000 * 0.12)) / 24000
        wav = 0.4 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(root / "audio" / f"clip{i}.wav", wav.astype(np.float32), 24000, subtype="PCM_16")
        rows.append({"path": f"audio/clip{i}.wav", "split": "valid" if i == 5 else "train"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "manifest.jsonl"


def _task(manifest: Path, **kw: object) -> CodecTask:
    base = dict(model=CodecConfig.tiny(), train_data=(str(manifest),), segment_seconds=0.05,
                discriminator=MSSTFTDConfig.tiny(), lr=3e-3)
    return CodecTask(CodecTrainConfig(**{**base, **kw}))  # type: ignore[arg-type]


def _loop(run_dir: Path, **kw: object) -> TrainConfig:
    base = dict(run_dir=str(run_dir), max_steps=4, batch_size=2, log_every=1, ckpt_every=2, valid_every=100,
                ema_decay=None, grad_clip=None)
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_windows_are_fixed_and_crops_depend_only_on_the_generator(corpus: Path) -> None:
    clips = list_clips((str(corpus),), "train")
    ds = CodecWindowDataset(clips, 1000)  # 0.12 s at 16 kHz = 1920 samples -> windows of 1000 + 920
    assert len(ds) == 10 and [w.length for w in ds.windows[:2]] == [1000, 920]
    batch = collate_windows([ds[1], ds[2]])
    assert batch["audio"].shape == (2, 1000) and batch["length"].tolist() == [920, 1000]
    assert not batch["audio"][0, 920:].any()
    first = random_crops(batch["audio"], batch["length"], 400, torch.Generator().manual_seed(3))
    torch.manual_seed(99)  # the global RNG plays no part
    again = random_crops(batch["audio"], batch["length"], 400, torch.Generator().manual_seed(3))
    assert torch.equal(first, again) and first.shape == (2, 400)
    other = random_crops(batch["audio"], batch["length"], 400, torch.Generator().manual_seed(4))
    assert not torch.equal(first, other)
    fixed = random_crops(batch["audio"], batch["length"], 400, None)
    assert torch.equal(fixed, batch["audio"][:, :400])
    long = random_crops(batch["audio"], batch["length"], 1200, torch.Generator().manual_seed(0))
    assert long.shape == (2, 1200) and torch.equal(long[0, :920], batch["audio"][0, :920])


def test_msspec_matches_its_definition() -> None:
    """One scale by hand: reflect pad, full last frame, window-normalised power, HTK mel, L1 + MSE(log10)."""
    x, y = torch.randn(1, 1, 1000), torch.randn(1, 1, 1000)
    loss = MultiScaleMelLoss(16000, range_start=8, range_end=9)
    window, fb = loss.window_256, loss.fb_256
    mel_x, mel_y = (mel_power_spectrogram(v, 256, 64, window, fb) for v in (x, y))
    assert mel_x.shape == (1, 64, math.ceil(1000 / 64))
    spec = torch.stft(torch.nn.functional.pad(x[0], (96, 96), "reflect")[0, :1000 + 192], 256, 64, 256, window,
                      center=False, return_complex=True)
    power = spec.abs().pow(2) / window.pow(2).sum()
    torch.testing.assert_close(mel_x[0, :, : power.shape[-1]], fb.T @ power)
    expected = ((mel_x - mel_y).abs().mean() + (torch.log10(1e-5 + mel_x) - torch.log10(1e-5 + mel_y)).pow(2).mean()) / 2
    torch.testing.assert_close(loss(x, y), expected)
    assert float(loss(x, x)) == 0.0


def test_balancer_sets_gradient_shares() -> None:
    y = torch.randn(3, 1, 50, requires_grad=True)
    losses = {"a": (y * 100).pow(2).mean(), "b": y.abs().mean()}  # wildly different scales
    bal = LossBalancer({"a": 3.0, "b": 1.0}, ema_decay=0.5)
    surrogate, scales = bal.surrogate(losses, y)
    grads = {k: torch.autograd.grad(v, y, retain_graph=True)[0] for k, v in losses.items()}
    norms = {k: g.flatten(1).norm(dim=1).mean() for k, g in grads.items()}
    assert scales["a"] * norms["a"] == pytest.approx(0.75, rel=1e-5)  # first step: the EMA is the norm itself
    assert scales["b"] * norms["b"] == pytest.approx(0.25, rel=1e-5)
    surrogate.backward()
    torch.testing.assert_close(y.grad, scales["a"] * grads["a"] + scales["b"] * grads["b"])
    effective = scales["a"] * float(losses["a"].detach()) + scales["b"] * float(losses["b"].detach())
    assert float(surrogate.detach()) == pytest.approx(effective)
    assert bal.norm_count.tolist() == [1.0, 1.0]
    # second step: flashy's bias-corrected EMA, avg = (beta * n1 + n2) / (beta + 1) with beta 0.5
    y2 = torch.randn(3, 1, 50, requires_grad=True)
    second = {"a": (y2 * 10).pow(2).mean(), "b": y2.abs().mean()}
    _, scales2 = bal.surrogate(second, y2)
    n2 = {k: torch.autograd.grad(v, y2, retain_graph=True)[0].flatten(1).norm(dim=1).mean() for k, v in second.items()}
    for k, share in (("a", 0.75), ("b", 0.25)):
        avg = (0.5 * float(norms[k]) + float(n2[k])) / 1.5
        assert scales2[k] == pytest.approx(share / avg, rel=1e-5)
    fixed = LossBalancer({"a": 3.0, "b": 1.0}, balance_grads=False)
    z = torch.randn(2, 5, requires_grad=True)
    surrogate, scales = fixed.surrogate({"a": z.sum(), "b": z.pow(2).sum()}, z)
    surrogate.backward()
    assert scales == {"a": 3.0, "b": 1.0}
    torch.testing.assert_close(z.grad, 3.0 + 2.0 * z.detach())


def test_adversarial_step_gives_each_half_its_own_gradients(corpus: Path) -> None:
    task = _task(corpus)
    model = task.build_model().train()
    train = task.build_datasets()[0]
    out = task.compute_loss(model, task.collate([train[0], train[1]]))
    assert {"loss/adv", "loss/feat", "loss/disc", "loss/l1", "loss/msspec", "loss/commitment"} <= set(out.terms)
    out.total.backward()
    assert all(p.grad is not None for p in model.codec.parameters())
    assert all(p.grad is not None and p.requires_grad for p in model.discriminator.parameters())
    assert float(model.codec.quantizer.levels[0]._codebook.inited) == 1.0  # k-means ran on this batch
    assert int(model.num_batches) == 1


def test_discriminator_loss_does_not_reach_the_codec(corpus: Path) -> None:
    task = _task(corpus)
    model = task.build_model().train()
    train = task.build_datasets()[0]
    out = model(task.crops(model, task.collate([train[0], train[1]])))
    from sara.codec.losses import discriminator_hinge_loss

    discriminator_hinge_loss(out["real"][0], out["fake_logits"]).backward()
    assert all(p.grad is None for p in model.codec.parameters())


def test_training_reduces_reconstruction_loss(corpus: Path, tmp_path: Path) -> None:
    task = _task(corpus, adversarial=False)
    fit(task, _loop(tmp_path / "run", max_steps=16, ckpt_every=16))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    msspec = [r["loss/msspec"] for r in rows if "loss/msspec" in r]
    assert len(msspec) == 16
    assert np.mean(msspec[-4:]) < 0.6 * np.mean(msspec[:4])


def test_resume_is_bit_exact_including_codebooks(corpus: Path, tmp_path: Path) -> None:
    """6 steps straight vs 3 + resume 3: the resume falls mid-epoch (5 clips, batch 2 -> 2 steps per epoch)."""
    fit(_task(corpus), _loop(tmp_path / "a", max_steps=6, ckpt_every=6))
    fit(_task(corpus), _loop(tmp_path / "b", max_steps=3, ckpt_every=3))
    fit(_task(corpus), _loop(tmp_path / "b", max_steps=6, ckpt_every=6))
    _, model_a, step_a = load_run_model(tmp_path / "a", use_ema=False)
    _, model_b, step_b = load_run_model(tmp_path / "b", use_ema=False)
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert step_a == step_b == 6 and set(state_a) == set(state_b)
    assert any("_codebook.embed_avg" in k for k in state_a) and "balancer.norm_sum" in state_a
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    assert int(state_a["num_batches"]) == 6 and float(state_a["balancer.norm_count"][0]) > 5


def test_export_gives_a_loadable_release(corpus: Path, tmp_path: Path) -> None:
    fit(_task(corpus, adversarial=False), _loop(tmp_path / "run", max_steps=2, ema_decay=0.9))
    out = export_run(tmp_path / "run", tmp_path / "release")
    codec = EncodecCodec.from_pretrained(out)
    assert codec.config == CodecConfig.tiny()
    assert all(float(b) == 1.0 for k, b in codec.state_dict().items() if k.endswith("inited"))
    codes = codec.encode(torch.randn(1, 1, 100))
    assert codes.shape == (1, 2, 13) and codec.decode(codes).shape == (1, 1, 104)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="too short"):
        CodecTrainConfig(model=CodecConfig.tiny(), segment_seconds=0.01)
    with pytest.raises(ValueError, match="weights"):
        CodecTrainConfig(model=CodecConfig.tiny(), l1_weight=0.0, msspec_weight=0.0)
    cfg = dataclasses.replace(CodecTrainConfig(), adversarial=False)
    assert cfg.balancer_weights() == {"l1": 0.1, "msspec": 2.0}



def test_balancer_ignores_non_finite_norms() -> None:
    bal = LossBalancer({"a": 1.0})
    y = torch.ones(2, 3, requires_grad=True)
    bal.surrogate({"a": y.sum()}, y)
    state = bal.norm_sum.clone()
    bal.surrogate({"a": (y * float("nan")).sum()}, y)
    assert torch.equal(bal.norm_sum, state) and bal.norm_count.tolist() == [1.0]


def test_log_samples_writes_reconstructions(corpus: Path, tmp_path: Path) -> None:
    task = _task(corpus, adversarial=False)
    model = task.build_model().train()
    train = task.build_datasets()[0]
    task.compute_loss(model, task.collate([train[0], train[1]]))  # k-means initialises the codebooks
    task.log_samples(model.eval(), 7, tmp_path / "samples")
    metrics = json.loads((tmp_path / "samples" / "metrics.json").read_text())
    assert metrics["step"] == 7 and set(metrics["clip5.wav"]) == {"l1", "msspec"}  # the valid clip
    audio, sr = sf.read(tmp_path / "samples" / "sample-0.wav")
    assert sr == 16000 and audio.shape == (1920,)
    assert (tmp_path / "samples" / "reference-0.wav").is_file()
