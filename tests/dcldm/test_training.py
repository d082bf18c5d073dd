"""DCLDMTask: config checks, joint dropout, a tiny DC-LDM trains (loss falls, acoustics start to matter),
resumes bit-exactly, trains only the new modules on request, LM-token and E'_t2a sources, init and export."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DConditionModel  # noqa: F401 - imported at collection (slow lazy import)

from sara.dcldm.training import DCLDMTask, DCLDMTrainConfig, joint_dropout
from sara.errors import ConfigError
from sara.ldm.config import UNetConfig
from sara.serialization import config_from_dict
from sara.train import TrainConfig, fit, load_run_model, registry


@pytest.fixture(autouse=True)
def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.TASKS, "dcldm", "sara.dcldm.training:DCLDMTask")


def _cfg(cache, t5: Path, audiogen_dir: Path, tokens: Path, **kw) -> DCLDMTrainConfig:  # noqa: ANN001, ANN003
    base = dict(latent_cache=str(cache.root), unet=dataclasses.asdict(UNetConfig.tiny()), lr=2e-3,
                uncondition_prob=0.2, text_encoder={"kind": "t5", "path": str(t5)}, audiogen=str(audiogen_dir),
                token_cache=str(tokens))
    return config_from_dict(DCLDMTrainConfig, {**base, **kw})


@pytest.fixture
def cfg(cache, t5: Path, audiogen_dir: Path, token_cache: Path):  # noqa: ANN001, ANN201
    return lambda **kw: _cfg(cache, t5, audiogen_dir, token_cache, **kw)


def _loop(run_dir: Path, **kw) -> TrainConfig:  # noqa: ANN003
    base = dict(run_dir=str(run_dir), max_steps=6, batch_size=4, log_every=1, ckpt_every=1000, valid_every=1000,
                ema_decay=None, grad_clip=None)
    return TrainConfig(**{**base, **kw})


def test_config_validation(cfg) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="audiogen"):
        config_from_dict(DCLDMTrainConfig, {"latent_cache": "x"})
    with pytest.raises(ConfigError, match="placements"):
        cfg(placements=["down3"])
    with pytest.raises(ConfigError, match="needs placements"):
        cfg(placements=[])
    with pytest.raises(ConfigError, match="mixtures"):
        cfg(mixtures=True)
    with pytest.raises(ConfigError, match="no added modules"):
        cfg(conditioning="acoustic", placements=[], train_modules="acoustic")
    assert cfg().sample_guidance == 4.0 and cfg().lr == 2e-3 and cfg().snr_gamma == 5.0


def test_joint_dropout_replaces_both_conditions() -> None:
    text = (torch.randn(3, 4, 2), torch.ones(3, 4, dtype=torch.bool))
    null = (torch.full((3, 4, 2), 7.0), torch.tensor([[True, False, False, False]] * 3))
    ac = torch.randn(3, 5, 6)
    states, mask, ac_out = joint_dropout(text, null, ac, torch.tensor([False, True, False]))
    assert torch.equal(states[1], null[0][1]) and torch.equal(mask[1], null[1][1])
    assert torch.equal(states[0], text[0][0]) and torch.equal(mask[2], text[1][2])
    assert not ac_out[1].any() and torch.equal(ac_out[0], ac[0]) and torch.equal(ac_out[2], ac[2])


def _valid_loss(task: DCLDMTask, model, batch) -> float:  # noqa: ANN001
    with torch.no_grad():
        return float(task.compute_loss(model.eval(), batch).total)  # t = 500, no dropout


def test_tiny_dcldm_learns_and_the_acoustic_input_comes_to_matter(cfg, tmp_path: Path) -> None:  # noqa: ANN001
    task = DCLDMTask(cfg(lr=5e-3, sample_posterior=False))
    train, _ = task.build_datasets()
    batch = task.collate([train[i] for i in range(4)])
    before = _valid_loss(task, task.build_model(), batch)
    fit(task, _loop(tmp_path / "run", max_steps=25))
    _, trained, _ = load_run_model(tmp_path / "run", use_ema=False)
    assert int(trained.draws) == 25
    after = _valid_loss(task, trained, batch)
    assert after < 0.7 * before, (before, after)
    x, t = torch.randn(2, 8, 16, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([300, 600])
    states, mask = task.encode_captions(["A dog barks", "Birds sing"])
    ac, ac_mask = task.acoustic_batch([train.items[0].paths[0]] * 2, ["", ""], 32)
    with torch.no_grad():
        out, null = trained(x, t, states, mask, ac, ac_mask), trained(x, t, states, mask, 0 * ac, ac_mask)
        at_init = task.build_model()
        assert torch.equal(at_init(x, t, states, mask, ac, ac_mask), at_init(x, t, states, mask, 0 * ac, ac_mask))
    assert (out - null).abs().max() > 1e-3, (out - null).abs().max()  # training made the acoustic input count


def _same_weights(run_a: Path, run_b: Path) -> None:
    _, a, _ = load_run_model(run_a, use_ema=False)
    _, b, _ = load_run_model(run_b, use_ema=False)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka


def test_resume_is_bit_exact(cfg, tmp_path: Path) -> None:  # noqa: ANN001
    c = cfg(lr_schedule="constant", uncondition_prob=0.5)
    fit(DCLDMTask(c), _loop(tmp_path / "a", max_steps=6, ckpt_every=3, ema_decay=0.9))
    fit(DCLDMTask(c), _loop(tmp_path / "b", max_steps=3, ckpt_every=3, ema_decay=0.9))
    fit(DCLDMTask(c), _loop(tmp_path / "b", max_steps=6, ckpt_every=3, ema_decay=0.9))
    _same_weights(tmp_path / "a", tmp_path / "b")
    _, b, _ = load_run_model(tmp_path / "b", use_ema=False)
    assert int(b.draws) == 6 and b.unet.acoustic["up1"][0].proj_out.weight.abs().sum() > 0


def test_train_only_the_acoustic_modules(cfg, tmp_path: Path) -> None:  # noqa: ANN001
    task = DCLDMTask(cfg(train_modules="acoustic"))
    start = task.build_model()
    fit(task, _loop(tmp_path / "run", max_steps=3))
    _, trained, _ = load_run_model(tmp_path / "run", use_ema=False)
    torch.testing.assert_close(trained.unet.unet.state_dict(), start.unet.unet.state_dict(), rtol=0, atol=0)
    assert trained.unet.acoustic["down1"][0].proj_out.weight.abs().sum() > 0


def test_lm_tokens_per_caption(cfg, cache, tmp_path: Path) -> None:  # noqa: ANN001
    from sara.dcldm.tokens import build_lm_token_cache, lm_codes

    task = DCLDMTask(cfg(acoustic_source="lm", token_cache=str(tmp_path / "lm"), mixtures=True))
    captions = [c for item in cache.clips + cache.mixtures for c in item.captions]
    assert build_lm_token_cache(task.acoustic_encoder, captions, tmp_path / "lm", 32, seed=1) == len(set(captions))
    assert build_lm_token_cache(task.acoustic_encoder, captions, tmp_path / "lm", 32, seed=1) == 0  # resumable
    again = tmp_path / "lm2"
    build_lm_token_cache(task.acoustic_encoder, captions[:1], again, 32, seed=1)
    assert torch.equal(lm_codes(again, captions[0], 32), lm_codes(tmp_path / "lm", captions[0], 32))
    with pytest.raises(ConfigError, match="other settings"):
        build_lm_token_cache(task.acoustic_encoder, captions, tmp_path / "lm", 32, seed=2)
    fit(task, _loop(tmp_path / "run", max_steps=2))
    assert json.loads((tmp_path / "run/metrics.jsonl").read_text().splitlines()[-1])["step"] == 2


def test_e_prime_t2a_source(cfg, vae_vocoder, tmp_path: Path) -> None:  # noqa: ANN001
    vae, _ = vae_vocoder
    task = DCLDMTask(cfg(acoustic={"kind": "t2a_mel"}, vae=str(vae), placements=["up1"]))
    assert task.acoustic_encoder.dim == 32  # 8 latent channels x 16 / 4 mel rows
    fit(task, _loop(tmp_path / "run", max_steps=2))
    _, trained, _ = load_run_model(tmp_path / "run", use_ema=False)
    assert trained.unet.acoustic_dim == 32 and trained.unet.placements == ("up1",)


def test_init_from_an_ldm_release_is_the_identity_and_export_loads(cfg, t5: Path, vae_vocoder,  # noqa: ANN001
                                                                   tmp_path: Path) -> None:
    from sara.dcldm.pipeline import DCLDM
    from sara.ldm.unet import build_unet, save_unet_release
    from sara.train import export_run

    torch.manual_seed(3)
    source = build_unet(UNetConfig.tiny())
    save_unet_release(source, tmp_path / "ldm_unet")
    model = DCLDMTask(cfg(init_from=str(tmp_path / "ldm_unet"))).build_model()
    x, t, s = torch.randn(1, 8, 16, 4), torch.tensor([500]), torch.randn(1, 3, 32)
    m = torch.ones(1, 3, dtype=torch.bool)
    with torch.no_grad():
        wrapped = model(x, t, s, m, torch.randn(1, 5, 8), torch.ones(1, 5, dtype=torch.bool))
        assert torch.equal(wrapped, source(x, t, s, encoder_attention_mask=m).sample)
    vae, voc = vae_vocoder
    c = cfg(vae=str(vae), vocoder=str(voc), bundle_audiogen=False)
    fit(DCLDMTask(c), _loop(tmp_path / "run", max_steps=2, ema_decay=0.9))
    out = export_run(tmp_path / "run", tmp_path / "rel")
    assert json.loads((out / "config.json").read_text())["components"]["audiogen"] == c.audiogen
    wav = DCLDM.from_pretrained(out)(["a dog barks"], duration=0.3, steps=2, seed=0)
    assert wav.shape == (1, 4800) and bool(torch.isfinite(wav).all())
    resumed = DCLDMTask(cfg(init_from=str(out)))  # a DCLDM release initialises the whole wrapper
    _, ema, _ = load_run_model(tmp_path / "run")
    torch.testing.assert_close(resumed.build_model().unet.state_dict(), ema.unet.state_dict(), rtol=0, atol=0)


def test_log_samples_writes_audio(cfg, vae_vocoder, tmp_path: Path) -> None:  # noqa: ANN001
    vae, voc = vae_vocoder
    task = DCLDMTask(cfg(vae=str(vae), vocoder=str(voc), sample_steps=2))
    model = task.build_model()
    task.log_samples(model, 0, tmp_path / "s")
    from sara.audio.io import load_audio

    wav, sr = load_audio(tmp_path / "s/0.wav")
    assert sr == 16000 and wav.shape[-1] == 10240 and model.unet.training


def test_acoustic_only_dropout_is_the_null_acoustic_condition(cfg) -> None:  # noqa: ANN001
    from sara.dcldm.pipeline import _null_like

    unet = dataclasses.asdict(dataclasses.replace(UNetConfig.tiny(), cross_attention_dim=8))
    task = DCLDMTask(cfg(conditioning="acoustic", placements=[], unet=unet))
    train, _ = task.build_datasets()  # the UNet reads the 8-d acoustic states itself
    model = task.build_model().eval()
    batch = task.collate([train[i] for i in range(2)])
    states, mask, ac, _ = task.conditions(batch, ["", ""], torch.tensor([True, False]), torch.device("cpu"))
    assert ac is None and not states[0].any() and states[1].any()
    x, t = torch.randn(2, 8, 16, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([400, 400])
    with torch.no_grad():
        dropped = model(x, t, states, mask, None, None)
        null = model(x, t, *_null_like(states), None, None)
    torch.testing.assert_close(dropped[0], null[0], rtol=0, atol=1e-5)
    assert not torch.allclose(dropped[1], null[1], atol=1e-4)
