"""``sara train hifigan``: discriminators and losses, deterministic data, gradient separation, loss decrease,
bit-exact resume, export, and the CLI task builder."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sara.errors import ConfigError
from sara.mel.frontend import MelConfig
from sara.mel.hifigan import HiFiGAN, HiFiGANConfig
from sara.mel.hifigan_training import (
    HiFiGANDiscriminatorConfig,
    HiFiGANSegments,
    HiFiGANTask,
    HiFiGANTrainConfig,
    MultiScaleDiscriminator,
    _gan_terms,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from sara.serialization import config_from_dict
from sara.train import TrainConfig, export_run, fit, load_run_model, registry

SEGMENT = 1600  # 10 frames at hop 160


@pytest.fixture(scope="module", autouse=True)
def _import_transformers() -> None:
    """Pay transformers' import (seconds on a loaded machine) once, outside the timed tests."""
    import transformers.models.speecht5.modeling_speecht5  # noqa: F401


@pytest.fixture(autouse=True)
def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.TASKS, "hifigan", "sara.mel.hifigan_training:HiFiGANTask")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 train + 2 valid clips at 24 kHz (chirps in noise, 0.05-1.2 s: some shorter than a segment)."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(10):
        n = int(24000 * (0.05 if i == 3 else 0.3 + 0.1 * i))
        t = np.arange(n) / 24000
        wav = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t * (1 + t)) + 0.02 * rng.standard_normal(n)
        path = root / "audio" / f"c{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, wav.astype(np.float32), 24000)
        rows.append({"path": f"audio/c{i}.wav", "split": "valid" if i >= 8 else "train"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "manifest.jsonl"


def _task(manifest: Path, **kw) -> HiFiGANTask:  # noqa: ANN003
    base = dict(model=HiFiGANConfig.tiny(), mel=MelConfig.tiny(), train_data=(str(manifest),),
                segment_samples=SEGMENT, discriminator=HiFiGANDiscriminatorConfig.tiny(), num_log_samples=1)
    return HiFiGANTask(HiFiGANTrainConfig(**{**base, **kw}))


def _fit(task: HiFiGANTask, run_dir: Path, **kw) -> dict[str, float]:  # noqa: ANN003
    base = dict(run_dir=str(run_dir), max_steps=6, batch_size=2, log_every=1, ckpt_every=3, valid_every=0,
                ema_decay=None, grad_clip=task.default_grad_clip)
    return fit(task, TrainConfig(**{**base, **kw}))


def _metric(run_dir: Path, key: str) -> list[float]:
    rows = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r[key] for r in rows if key in r]


# ----------------------------------------------------------------------------------- config, parts
def test_config_validation() -> None:
    with pytest.raises(ValueError, match="does not fit the front end"):
        HiFiGANTrainConfig(model=HiFiGANConfig.tiny(), mel=MelConfig())
    with pytest.raises(ValueError, match="multiple of the hop"):
        HiFiGANTrainConfig(segment_samples=8192)
    with pytest.raises(ValueError, match="groups 3"):
        HiFiGANDiscriminatorConfig(msd_groups=(1, 3, 16, 16, 16, 16, 1))
    with pytest.raises(ConfigError, match="lr_decay"):
        config_from_dict(HiFiGANTrainConfig, {"lr_decay": 1.5})
    cfg = HiFiGANTrainConfig()  # defaults: small generator, paper front end, HiFi-GAN hyper-parameters
    assert (cfg.lr, cfg.betas, cfg.lr_decay, cfg.mel_weight, cfg.fm_weight) == (2e-4, (0.8, 0.99), 0.999, 45.0, 2.0)
    assert config_from_dict(HiFiGANTrainConfig, HiFiGANTask(cfg).config_dict()) == cfg


def test_msd_shapes_and_lsgan_losses() -> None:
    msd = MultiScaleDiscriminator(HiFiGANDiscriminatorConfig.paper())
    scores, feats = msd(torch.randn(2, 8160))
    assert len(scores) == len(feats) == 3 and [len(f) for f in feats] == [8, 8, 8]
    # ceil(L / 64) over the strides 2, 2, 4, 4 of L = 8160, 4081 and 2041 samples (AvgPool1d(4, 2, padding=2))
    assert [s.shape[-1] for s in scores] == [128, 64, 32]
    # HiFi-GAN V1 MSD: 9,870,209 weights per scale (29.6 M), plus weight norm's g (one per output channel,
    # 4097 per scale) on the two weight-normed scales; spectral norm adds buffers only
    assert sum(p.numel() for p in msd.parameters()) == 3 * 9_870_209 + 2 * 4097
    ones, zeros = [torch.ones(2, 3)], [torch.zeros(2, 3)]
    assert float(lsgan_discriminator_loss(ones, zeros)) == 0.0 and float(lsgan_generator_loss(ones)) == 0.0
    assert float(lsgan_discriminator_loss(zeros, ones)) == 2.0 and float(lsgan_generator_loss(zeros)) == 1.0


# ------------------------------------------------------------------------------------------ data
def test_crops_depend_on_seed_epoch_index_only(corpus: Path) -> None:
    from sara.train.resume import fork_rng

    task = _task(corpus)
    ds = task._dataset(task.config.train_data, "train", True)
    assert len(ds) == 8
    with fork_rng(11):  # without set_epoch: one draw of the global RNG, as the loop seeds it per item
        a = ds[7]["audio"]
        after = torch.randint(0, 2**30, ())
    with fork_rng(11):
        assert torch.equal(ds[7]["audio"], a) and torch.equal(torch.randint(0, 2**30, ()), after)
    with fork_rng(12):
        assert not torch.equal(ds[7]["audio"], a)
    ds.set_epoch(0)  # with an epoch: (seed, epoch, index) alone
    with fork_rng(1):
        b = ds[7]["audio"]
    with fork_rng(2):
        assert torch.equal(ds[7]["audio"], b)
    ds.set_epoch(1)
    assert not torch.equal(ds[7]["audio"], b)
    short = ds[3]["audio"]  # 50 ms clip: Tango-prepared (peak 0.5), zero-padded to the segment
    assert short.shape == (SEGMENT,) and math.isclose(float(short.abs().max()), 0.5, rel_tol=1e-5)
    assert float(short[900:].abs().max()) == 0.0


# ---------------------------------------------------------------------------------------- losses
def test_each_half_gets_only_its_own_gradients(corpus: Path) -> None:
    task = _task(corpus)
    torch.manual_seed(0)
    model = task.build_model().train()
    out = model(torch.stack([task.build_datasets()[0][i]["audio"] for i in range(2)]))
    t = _gan_terms(out)
    mel = torch.nn.functional.l1_loss(out["mel_fake"], out["mel_real"])
    d_loss = t["disc_mpd"] + t["disc_msd"]
    g_loss = t["adv_mpd"] + t["adv_msd"] + 2.0 * (t["fm_mpd"] + t["fm_msd"]) + 45.0 * mel
    gen, disc = list(model.generator.parameters()), [*model.mpd.parameters(), *model.msd.parameters()]
    grads = torch.autograd.grad(d_loss + g_loss, gen + disc, retain_graph=True)
    own_g = torch.autograd.grad(g_loss, gen, retain_graph=True)
    own_d = torch.autograd.grad(d_loss, disc, retain_graph=True)
    for got, want in zip(grads, [*own_g, *own_d]):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-8)
    assert all(g is not None and g.abs().sum() > 0 for g in [*own_g, *own_d])


# -------------------------------------------------------------------------------------- training
def test_mel_only_training_reduces_the_mel_loss(corpus: Path, tmp_path: Path) -> None:
    task = _task(corpus, adversarial=False, lr=5e-3)
    _fit(task, tmp_path / "run", max_steps=24, ckpt_every=24)
    mel = _metric(tmp_path / "run", "loss/mel")
    assert len(mel) == 24 and np.mean(mel[-4:]) < 0.8 * np.mean(mel[:4])


def test_adversarial_steps_log_every_term(corpus: Path, tmp_path: Path) -> None:
    _fit(_task(corpus, lr=2e-3), tmp_path / "run", max_steps=8, ckpt_every=8, valid_every=4)
    for key in ("mel", "disc_mpd", "disc_msd", "adv_mpd", "adv_msd", "fm_mpd", "fm_msd"):
        values = _metric(tmp_path / "run", f"loss/{key}")
        assert len(values) == 8 and all(math.isfinite(v) for v in values), key
    assert _metric(tmp_path / "run", "valid/mel")  # validation: the mel L1 of the valid split
    lrs = _metric(tmp_path / "run", "lr")
    assert math.isclose(lrs[-1], 2e-3 * 0.999 ** (8 / 1000), rel_tol=1e-6)  # per-step exponential decay


def test_resume_is_bit_exact_with_new_crops_each_epoch(corpus: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    starts: dict[int, set[int]] = {}
    original = HiFiGANSegments.__getitem__

    def recording(self: HiFiGANSegments, index: int) -> dict[str, torch.Tensor]:
        item = original(self, index)
        starts.setdefault(index, set()).add(hash(item["audio"].numpy().tobytes()))
        return item

    monkeypatch.setattr(HiFiGANSegments, "__getitem__", recording)
    _fit(_task(corpus), tmp_path / "a", max_steps=6)  # 4 steps per epoch: crosses into epoch 1
    assert any(len(crops) > 1 for crops in starts.values())  # a clip seen in both epochs got a new crop
    _fit(_task(corpus), tmp_path / "b", max_steps=3)  # "interrupted" mid-epoch
    _fit(_task(corpus), tmp_path / "b", max_steps=6)  # resumed
    _, a, step_a = load_run_model(tmp_path / "a", use_ema=False)
    _, b, step_b = load_run_model(tmp_path / "b", use_ema=False)
    assert step_a == step_b == 6
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and any(k.startswith("msd.") for k in sa)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_export_writes_a_loadable_release(corpus: Path, tmp_path: Path) -> None:
    task = _task(corpus, adversarial=False)
    _fit(task, tmp_path / "run", max_steps=2, ckpt_every=2, sample_every=2)
    assert (tmp_path / "run" / "samples" / "step-00000002" / "sample-0.wav").is_file()
    out = export_run(tmp_path / "run", tmp_path / "rel")
    vocoder = HiFiGAN.from_pretrained(out)
    assert vocoder.config == HiFiGANConfig.tiny()
    assert not any("parametrizations" in k for k in vocoder.state_dict())  # weight norm folded
    _, model, _ = load_run_model(tmp_path / "run", use_ema=False)
    mel = torch.randn(1, 12, 16) - 4.0
    with torch.no_grad():
        torch.testing.assert_close(vocoder(mel), model.generator(mel), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------- CLI
def _args(*argv: str) -> argparse.Namespace:
    from sara.cli.train import add_common_arguments
    from sara.cli.train_hifigan import add_arguments

    p = argparse.ArgumentParser()
    add_common_arguments(p)
    add_arguments(p)
    return p.parse_args(["--run-dir", "r", *argv])


def test_cli_builds_the_task(corpus: Path, tmp_path: Path) -> None:
    from sara.cli.train_hifigan import build_task

    task = build_task(_args("--data", str(corpus), "--preset", "tiny", "--no-adversarial", "--segment-samples",
                            "1600", "--seed", "3"))
    cfg = task.config
    assert cfg.model == HiFiGANConfig.tiny() and cfg.mel.n_mels == 16 and not cfg.adversarial and cfg.seed == 3
    HiFiGAN(HiFiGANConfig.tiny()).save_pretrained(tmp_path / "init")
    task = build_task(_args("--data", str(corpus), "--init", str(tmp_path / "init"), "--segment-samples", "1600"))
    assert task.config.model == HiFiGANConfig.tiny() and task.config.init == str(tmp_path / "init")
    with pytest.raises(ConfigError, match="--preset does not apply"):
        build_task(_args("--data", str(corpus), "--init", str(tmp_path / "init"), "--preset", "tiny"))
    with pytest.raises(ConfigError, match="multiple of the hop"):
        build_task(_args("--data", str(corpus), "--segment-samples", "1000"))
