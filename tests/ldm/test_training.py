"""LDMTask: Tango's loss (v target, Min-SNR), per-item randomness, optimiser, training, exact resume, export."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from sara.errors import ConfigError
from sara.ldm.config import UNetConfig
from sara.ldm.schedulers import make_scheduler
from sara.ldm.training import (
    LDMTask,
    LDMTrainConfig,
    draw_batch,
    lr_factor,
    min_snr_weights,
    training_target,
)
from sara.ldm.unet import load_unet_release
from sara.serialization import config_from_dict
from sara.train import TrainConfig, fit, load_run_model, registry


@pytest.fixture(autouse=True)
def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.TASKS, "ldm", "sara.ldm.training:LDMTask")  # until the integrator adds it


def test_min_snr_weights_follow_tangos_formula() -> None:
    ac = make_scheduler("ddpm").alphas_cumprod
    t = torch.arange(0, 1000)
    w = min_snr_weights(ac, t, 5.0)
    snr = ac / (1 - ac)
    torch.testing.assert_close(w, torch.clamp(snr, max=5.0) / snr)  # no "+ 1" even for v-prediction
    assert bool((w <= 1.0).all()) and bool((w > 0).all())
    assert float(w[-1]) == 1.0 and float(w[0]) < 0.01  # noisy steps weight 1, clean steps gamma / SNR
    assert int((w < 1).sum()) == int((snr > 5).sum())


def test_v_target_is_get_velocity() -> None:
    sched = make_scheduler("ddpm")
    x0, noise, t = torch.randn(3, 8, 4, 4), torch.randn(3, 8, 4, 4), torch.tensor([0, 500, 999])
    ac = sched.alphas_cumprod[t].view(3, 1, 1, 1)
    expected = ac.sqrt() * noise - (1 - ac).sqrt() * x0  # v = alpha_t eps - sigma_t x0
    torch.testing.assert_close(training_target(sched, x0, noise, t), expected)
    torch.testing.assert_close(training_target(sched, x0, noise, t), sched.get_velocity(x0, noise, t))
    eps_sched = make_scheduler("ddpm", dataclasses.replace(sched_cfg(), prediction_type="epsilon"))
    assert torch.equal(training_target(eps_sched, x0, noise, t), noise)


def sched_cfg():  # noqa: ANN201
    from sara.ldm.schedulers import SchedulerConfig

    return SchedulerConfig()


def test_draws_are_a_function_of_seed_draw_and_index() -> None:
    caps = [("a",), ("b", "c")] * 2
    a = draw_batch(0, 3, [0, 1, 2, 3], caps, (2, 2, 2), 1000, 0.5, False)
    b = draw_batch(0, 3, [2, 1, 0, 3], [caps[2], caps[1], caps[0], caps[3]], (2, 2, 2), 1000, 0.5, False)
    assert torch.equal(a.noise[0], b.noise[2]) and torch.equal(a.t[1], b.t[1])  # per index, not per position
    c = draw_batch(0, 4, [0, 1, 2, 3], caps, (2, 2, 2), 1000, 0.5, False)
    assert not torch.equal(a.noise, c.noise)  # the next micro-batch draws anew
    v = draw_batch(0, -1, [0, 1], caps[:2], (2, 2, 2), 1000, 0.5, True)
    assert v.t.tolist() == [500, 500] and not v.drop.any()  # validation: Tango's fixed t = 500
    many = draw_batch(1, 0, list(range(4000)), [("a",)] * 4000, (1,), 1000, 0.1, False)
    assert abs(float(many.drop.float().mean()) - 0.1) < 0.02
    assert 0 <= int(many.t.min()) and int(many.t.max()) <= 999 and abs(float(many.t.float().mean()) - 499.5) < 25


def test_optimizer_is_tangos(cache) -> None:  # noqa: ANN001
    task = LDMTask(LDMTrainConfig(latent_cache=str(cache.root), unet=UNetConfig.tiny()), conditioner=object())
    opt, sched = task.build_optimizer(torch.nn.Linear(2, 2), 100)
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.AdamW)
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (3e-5, (0.9, 0.999), 1e-8, 1e-2)
    f = lr_factor("linear", 0, 100)
    assert [f(0), f(50), f(100)] == [1.0, 0.5, 0.0]
    assert lr_factor("linear", 10, 110)(5) == 0.5 and lr_factor("constant", 0, 10)(9) == 1.0


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="uncondition_prob"):
        config_from_dict(LDMTrainConfig, {"latent_cache": "x", "uncondition_prob": 1.5})
    with pytest.raises(ConfigError, match="unknown config keys"):
        config_from_dict(LDMTrainConfig, {"latent_cache": "x", "snr": 5})
    cfg = config_from_dict(LDMTrainConfig, {"latent_cache": "x", "unet": dataclasses.asdict(UNetConfig.tiny())})
    assert cfg.unet == UNetConfig.tiny()


def _task_cfg(cache, t5_dir: Path, **kw) -> LDMTrainConfig:  # noqa: ANN001, ANN003
    base = dict(latent_cache=str(cache.root), unet=UNetConfig.tiny(), lr=2e-3, uncondition_prob=0.2,
                text_encoder={"kind": "t5", "path": str(t5_dir)})
    return config_from_dict(LDMTrainConfig, {**base, **kw})


def _train_cfg(run_dir: Path, **kw) -> TrainConfig:  # noqa: ANN003
    base = dict(run_dir=str(run_dir), max_steps=30, batch_size=4, log_every=1, ckpt_every=1000, valid_every=1000,
                ema_decay=None, grad_clip=None)
    return TrainConfig(**{**base, **kw})


def test_tiny_unet_learns(cache, t5_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    task = LDMTask(_task_cfg(cache, t5_dir, lr=5e-3, sample_posterior=False, mixtures=False))
    train, _ = task.build_datasets()
    batch = task.collate([train[i] for i in range(4)])
    model = task.build_model().eval()
    with torch.no_grad():
        before = float(task.compute_loss(model, batch).total)  # validation mode: t = 500, no dropout
    fit(task, _train_cfg(tmp_path / "run", max_steps=25))
    _, trained, _ = load_run_model(tmp_path / "run", use_ema=False)
    with torch.no_grad():
        after = float(task.compute_loss(trained, batch).total)
    assert int(trained.draws) == 25
    assert after < 0.7 * before, (before, after)


def _same_weights(run_a: Path, run_b: Path) -> None:
    _, a, _ = load_run_model(run_a, use_ema=False)
    _, b, _ = load_run_model(run_b, use_ema=False)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka


def test_resume_is_bit_exact(cache, t5_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    cfg = _task_cfg(cache, t5_dir, lr_schedule="constant")  # N vs N/2 + N/2 (the schedule must not depend on N)
    fit(LDMTask(cfg), _train_cfg(tmp_path / "a", max_steps=6, ckpt_every=3))
    fit(LDMTask(cfg), _train_cfg(tmp_path / "b", max_steps=3, ckpt_every=3))
    fit(LDMTask(cfg), _train_cfg(tmp_path / "b", max_steps=6, ckpt_every=3))
    _same_weights(tmp_path / "a", tmp_path / "b")
    _, b, _ = load_run_model(tmp_path / "b", use_ema=False)
    assert int(b.draws) == 6
    assert not torch.equal(b.unet.conv_in.weight, LDMTask(cfg).build_model().unet.conv_in.weight)


def test_interrupted_linear_schedule_resumes_exactly(cache, t5_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    cfg = _task_cfg(cache, t5_dir)  # Tango's linear decay over max_steps
    fit(LDMTask(cfg), _train_cfg(tmp_path / "a", max_steps=4))
    fit(LDMTask(cfg), _train_cfg(tmp_path / "b", max_steps=4, max_minutes=0.0))  # stops (and saves) at step 1
    fit(LDMTask(cfg), _train_cfg(tmp_path / "b", max_steps=4))
    _same_weights(tmp_path / "a", tmp_path / "b")


def test_dimension_mismatches_are_config_errors(cache, t5_dir: Path) -> None:  # noqa: ANN001
    wide = dataclasses.replace(UNetConfig.tiny(), cross_attention_dim=48)
    with pytest.raises(ConfigError, match="cross_attention_dim"):
        LDMTask(_task_cfg(cache, t5_dir, unet=dataclasses.asdict(wide))).build_datasets()
    four = dataclasses.replace(UNetConfig.tiny(), in_channels=4, out_channels=4)
    with pytest.raises(ConfigError, match="8-channel"):
        LDMTask(_task_cfg(cache, t5_dir, unet=dataclasses.asdict(four))).build_datasets()


def test_export_writes_unet_and_pipeline_releases(cache, t5_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from sara.mel.hifigan import HiFiGAN, HiFiGANConfig
    from sara.pipelines.latent_diffusion import LatentDiffusion
    from sara.train import export_run
    from tests.ldm.corpus_fixture import tiny_vae

    fit(LDMTask(_task_cfg(cache, t5_dir)), _train_cfg(tmp_path / "run", max_steps=2, ema_decay=0.9))
    unet_dir = export_run(tmp_path / "run", tmp_path / "unet")
    assert json.loads((unet_dir / "config.json").read_text())["class"] == "LDMUNet"
    _, model, _ = load_run_model(tmp_path / "run")  # EMA weights
    torch.testing.assert_close(load_unet_release(unet_dir).state_dict(), model.unet.state_dict())
    tiny_vae().save_pretrained(tmp_path / "vae")
    HiFiGAN(HiFiGANConfig.tiny()).save_pretrained(tmp_path / "voc")
    overrides = {"vae": str(tmp_path / "vae"), "vocoder": str(tmp_path / "voc")}
    out = export_run(tmp_path / "run", tmp_path / "ldm", overrides=overrides)
    pipe = LatentDiffusion.from_pretrained(out)
    wav = pipe(["a dog barks"], duration=0.64, steps=2, guidance_scale=3.0, seed=0)
    assert wav.shape == (1, 10240) and torch.isfinite(wav).all()


def test_init_from_a_run_and_a_release(cache, t5_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from sara.ldm.unet import save_unet_release

    fit(LDMTask(_task_cfg(cache, t5_dir)), _train_cfg(tmp_path / "src", max_steps=2, ema_decay=0.9))
    _, src, _ = load_run_model(tmp_path / "src")  # EMA weights: what a fine-tune starts from
    wide = dataclasses.asdict(dataclasses.replace(UNetConfig.tiny(), cross_attention_dim=48))  # ignored: init wins
    task = LDMTask(_task_cfg(cache, t5_dir, init_from=str(tmp_path / "src"), unet=wide))
    task.build_datasets()  # checks the init source's widths, not config.unet's
    torch.testing.assert_close(task.build_model().unet.state_dict(), src.unet.state_dict(), rtol=0, atol=0)
    save_unet_release(src.unet, tmp_path / "rel")
    from_release = LDMTask(_task_cfg(cache, t5_dir, init_from=str(tmp_path / "rel"))).build_model()
    torch.testing.assert_close(from_release.unet.state_dict(), src.unet.state_dict(), rtol=0, atol=0)


def test_log_samples_writes_latents_and_audio(cache, t5_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from sara.mel.hifigan import HiFiGAN, HiFiGANConfig
    from tests.ldm.corpus_fixture import tiny_vae

    tiny_vae().save_pretrained(tmp_path / "vae")
    HiFiGAN(HiFiGANConfig.tiny()).save_pretrained(tmp_path / "voc")
    task = LDMTask(_task_cfg(cache, t5_dir, vae=str(tmp_path / "vae"), vocoder=str(tmp_path / "voc"),
                             sample_steps=2))
    task.log_samples(task.build_model(), 0, tmp_path / "s")
    from safetensors.torch import load_file

    item = load_file(str(tmp_path / "s/0.safetensors"))
    assert item["latents"].shape == (8, 16, 4) and item["mel"].shape == (1, 64, 16)
    assert (tmp_path / "s/1.wav").is_file()


def test_sara_export_cli_stores_the_default_flags_and_assembles_releases(cache, t5_dir: Path,  # noqa: ANN001
                                                                         tmp_path: Path) -> None:
    from sara.cli.__main__ import main
    from sara.mel.hifigan import HiFiGAN, HiFiGANConfig
    from sara.pipelines.latent_diffusion import LatentDiffusion
    from tests.ldm.corpus_fixture import tiny_vae

    tiny_vae().save_pretrained(tmp_path / "vae")
    HiFiGAN(HiFiGANConfig.tiny()).save_pretrained(tmp_path / "voc")
    cfg = _task_cfg(cache, t5_dir, vae=str(tmp_path / "vae"), vocoder=str(tmp_path / "voc"))
    fit(LDMTask(cfg), _train_cfg(tmp_path / "run", max_steps=2, ema_decay=0.9))
    argv = ["export", str(tmp_path / "run"), str(tmp_path / "ldm"), "--default-steps", "7", "--default-cfg", "2.5",
            "--default-sampler", "dpmsolver++", "--default-duration", "0.64"]
    assert main(argv) == 0
    defaults = LatentDiffusion.from_pretrained(tmp_path / "ldm").defaults
    assert (defaults.steps, defaults.guidance_scale, defaults.sampler, defaults.duration) == (7, 2.5, "dpmsolver++",
                                                                                             0.64)
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "ldm2"), "--vae", str(tmp_path / "vae")]) == 2
    assert not (tmp_path / "ldm2" / "config.json").exists()  # --vae without --vocoder: refused before writing


def test_export_half_halves_the_bundle_and_generates_the_same_audio(cache, t5_dir: Path,  # noqa: ANN001
                                                                   tmp_path: Path) -> None:
    from sara.cli.__main__ import main
    from sara.mel.hifigan import HiFiGAN, HiFiGANConfig
    from sara.pipelines.latent_diffusion import LatentDiffusion
    from tests.ldm.corpus_fixture import tiny_vae

    tiny_vae().save_pretrained(tmp_path / "vae")
    HiFiGAN(HiFiGANConfig.tiny()).save_pretrained(tmp_path / "voc")
    cfg = _task_cfg(cache, t5_dir, vae=str(tmp_path / "vae"), vocoder=str(tmp_path / "voc"))
    fit(LDMTask(cfg), _train_cfg(tmp_path / "run", max_steps=2, ema_decay=0.9))
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "full")]) == 0
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "half"), "--half"]) == 0
    sizes = [sum(f.stat().st_size for f in (tmp_path / d).rglob("model.safetensors")) for d in ("full", "half")]
    assert sizes[1] < 0.6 * sizes[0]
    runs = [LatentDiffusion.from_pretrained(tmp_path / d).generate_latents(["a dog"], steps=3, seed=0, duration=0.64)
            for d in ("full", "half")]
    assert runs[1].dtype == torch.float32
    assert torch.allclose(runs[0], runs[1], atol=5e-2 * float(runs[0].abs().max()))
