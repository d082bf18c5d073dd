"""Stage 2: discriminator contracts, loss conventions, gradient isolation, a few steps, export, CLI."""

import json
import math

import pytest
import torch

from sara.cli.__main__ import main
from sara.vocoder import SemanticVocoder
from sara.vocoder.discriminators import DiscriminatorConfig, Discriminators
from sara.vocoder.gan import (
    VocoderGANTask,
    VocoderGANTrainConfig,
    discriminator_hinge_loss,
    feature_matching_loss,
    generator_hinge_loss,
    multi_scale_mel_loss,
    semantic_consistency_loss,
)
from sara.vocoder.optim import Eden2, ScaledAdam

from .helpers import tiny_config, tiny_encoder, write_tone


@pytest.fixture()
def data(tmp_path):  # noqa: ANN001, ANN201
    """Three tonal clips, a tiny encoder and a tiny stage-1 release (random generator)."""
    for i in range(3):
        write_tone(tmp_path / "data" / f"t{i}.wav", 0.8, 24000, 200.0 + 150 * i)
    tiny_encoder().save_pretrained(tmp_path / "enc")
    SemanticVocoder(tiny_config()).save_pretrained(tmp_path / "stage1")
    return tmp_path


def _task(data, **kw) -> VocoderGANTask:  # noqa: ANN001
    cfg = VocoderGANTrainConfig(model=tiny_config(), train_data=(str(data / "data"),), encoder=str(data / "enc"),
                                segment_seconds=0.4, init=str(data / "stage1"),
                                discriminator=DiscriminatorConfig.tiny(), **kw)
    return VocoderGANTask(cfg)


def test_discriminator_outputs_and_features() -> None:
    cfg = DiscriminatorConfig.tiny()
    d = Discriminators(cfg)
    x = torch.randn(2, 3001) * 0.3  # not a multiple of any period: reflect-padded
    scores, feats = d.mpd(x)
    assert len(scores) == len(cfg.periods) and all(s.shape[0] == 2 and s.shape[1] == 1 for s in scores)
    assert [len(f) for f in feats] == [len(cfg.mpd_channels) + 2] * len(cfg.periods)
    assert [s.shape[-1] for s in scores] == list(cfg.periods)
    scores, feats = d.mrd(x)
    assert len(scores) == len(cfg.mrd_fft_sizes)
    assert [len(f) for f in feats] == [5 * len(cfg.mrd_bands) + 1] * len(cfg.mrd_fft_sizes)
    # the MRD removes DC and normalises the peak: it ignores level and offset, the MPD does not
    louder, _ = d.mrd(3.0 * x + 0.1)
    for a, b in zip(scores, louder):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(d.mpd(x)[0][0], d.mpd(3.0 * x)[0][0])
    assert sum(p.numel() for p in Discriminators(DiscriminatorConfig.paper()).parameters()) > 40e6


def test_loss_conventions() -> None:
    real, fake = [torch.full((2, 1, 4, 3), 1.5)], [torch.full((2, 1, 4, 3), -2.0)]
    assert float(discriminator_hinge_loss(real, fake)) == 0.0  # both beyond the margins
    assert float(discriminator_hinge_loss(fake, real)) == pytest.approx(3.0 + 2.5)
    assert float(generator_hinge_loss(fake)) == pytest.approx(3.0)
    f = [[torch.ones(2, 3), torch.zeros(4)]]
    assert float(feature_matching_loss(f, f)) == 0.0
    assert float(feature_matching_loss(f, [[torch.zeros(2, 3), torch.ones(4)]])) == pytest.approx(2.0)
    x = torch.randn(2, 24000) * 0.3
    assert float(multi_scale_mel_loss(x, x, 24000)) == 0.0
    # a gain a shifts every (unclamped) log-mel by ln a: 7 scales summed
    assert float(multi_scale_mel_loss(2.0 * x, x, 24000)) == pytest.approx(7 * math.log(2.0), rel=1e-4)


def test_mel_floor_decides_what_silence_costs() -> None:
    x = torch.randn(1, 24000) * 0.3
    x[:, 12000:] = 0.0  # digital silence in the reference ...
    y = x.clone()
    y[:, 12000:] = 1e-6 * torch.randn(12000)  # ... and a -120 dBFS hiss in the prediction
    spec, floored = multi_scale_mel_loss(y, x, 24000), multi_scale_mel_loss(y, x, 24000, floor=1e-4)
    assert spec > 10.0 and floored < 0.02 * spec  # at 1e-7 the inaudible hiss dominates; at 1e-4 it costs little
    with pytest.raises(ValueError, match="mel_floor"):
        VocoderGANTrainConfig(model=tiny_config(), train_data=("x",), latent_cache="c", mel_floor=0.0)


def test_semantic_consistency_loss() -> None:
    enc = tiny_encoder().requires_grad_(False)
    real = torch.sin(torch.arange(9600) / 24000 * 2 * math.pi * 330.0).repeat(2, 1) * 0.5
    assert float(semantic_consistency_loss(enc, real, real, 24000)) == pytest.approx(0.0, abs=1e-6)
    fake = (real + 0.05 * torch.randn_like(real)).requires_grad_(True)
    loss = semantic_consistency_loss(enc, fake, real, 24000)
    loss.backward()
    assert float(loss.detach()) > 0 and fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in enc.parameters())  # the encoder stays frozen
    with pytest.raises(ValueError, match="encoder"):
        VocoderGANTrainConfig(model=tiny_config(), train_data=("x",), latent_cache="c", semantic_weight=1.0)


def test_semantic_term_is_logged_and_trained(data) -> None:  # noqa: ANN001
    task = _task(data, adversarial=False, gen_steps=1, semantic_weight=10.0, mel_floor=1e-4)
    model = task.build_model().train()
    train, _ = task.build_datasets()
    out = task.compute_loss(model, task.collate([train[i] for i in range(2)]))
    mel = out.terms["loss/mel"] * task.config.mel_weight
    assert "loss/semantic" in out.terms and float(out.total.detach()) == pytest.approx(
        float(mel + 10.0 * out.terms["loss/semantic"]), rel=1e-5)
    out.total.backward()
    assert all(p.grad is not None for p in model.generator.parameters() if p.requires_grad)


def test_each_half_gets_only_its_own_gradients(data) -> None:  # noqa: ANN001
    task = _task(data, gen_start_step=0)
    train, _ = task.build_datasets()
    batch = task.collate([train[i] for i in range(2)])
    model = task.build_model().train()

    def grads(**weights) -> tuple[float, float]:  # noqa: ANN003
        t = _task(data, gen_start_step=0, **weights)
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        t.compute_loss(model, batch).total.backward()
        norm = lambda m: sum(float(p.grad.abs().sum()) for p in m.parameters() if p.grad is not None)  # noqa: E731
        return norm(model.generator), norm(model.discriminators)

    g, d = grads()
    assert g > 0 and d > 0
    g, d = grads(disc_mpd_weight=0.0, disc_mrd_weight=0.0)  # generator terms only
    assert g > 0 and d == 0.0
    g, d = grads(mel_weight=0.0, adv_mpd_weight=0.0, adv_mrd_weight=0.0, fm_mpd_weight=0.0, fm_mrd_weight=0.0)
    assert g == 0.0 and d > 0
    assert all(p.requires_grad for p in model.discriminators.parameters())


def test_discriminator_warm_up_then_generator(data) -> None:  # noqa: ANN001
    task = _task(data, gen_start_step=1)
    model = task.build_model().train()
    train, _ = task.build_datasets()
    batch = task.collate([train[i] for i in range(2)])
    first = task.compute_loss(model, batch)
    assert "loss/mel" not in first.terms and "loss/disc_mpd" in first.terms
    second = task.compute_loss(model, batch)
    assert {"loss/mel", "loss/adv_mpd", "loss/fm_mrd"} <= set(second.terms)
    assert int(model.state_dict()["num_batches"]) == 2  # checkpointed, so resume keeps the schedule


def test_mel_only_fine_tuning_reduces_the_k_step_loss(data) -> None:  # noqa: ANN001
    task = _task(data, adversarial=False, gen_steps=2, lr_gen=0.02, warmup_batches=1)
    model = task.build_model()
    assert model.discriminators is None
    opt, sched = task.build_optimizer(model, 30)
    train, _ = task.build_datasets()
    batch = task.collate([train[i] for i in range(3)])

    def eval_loss() -> float:
        torch.manual_seed(1)
        return float(task.compute_loss(model.eval(), batch).total)

    before = eval_loss()
    model.train()
    for _ in range(25):
        opt.zero_grad()
        task.compute_loss(model, batch).total.backward()
        opt.step()
        sched.step()
    assert eval_loss() < 0.8 * before


def test_export_is_a_k_step_vocoder(data, tmp_path) -> None:  # noqa: ANN001
    task = _task(data, gen_steps=2)
    model = task.build_model()
    stage1 = SemanticVocoder.from_pretrained(data / "stage1")
    for (name, a), b in zip(model.generator.state_dict().items(), stage1.generator.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)  # initialised from --init
    out = task.export(model, tmp_path / "rel")
    voc = SemanticVocoder.from_pretrained(out)
    assert voc.config.default_steps == 2 and (out / "encoder" / "config.json").is_file()
    assert voc.reconstruct(torch.randn(1, 16000) * 0.1, 16000).shape == (1, 24000)


def test_per_group_clipping_and_schedule() -> None:
    a, b = torch.nn.Parameter(torch.ones(4, 4)), torch.nn.Parameter(torch.ones(4, 4))
    opt = ScaledAdam([{"params": [a], "lr": 0.002}, {"params": [b], "lr": 0.02}], clipping_scale=2.0,
                     clip_per_group=True)
    sched = Eden2(opt, (20000, 5000), warmup_batches=0)
    for step in range(12):
        a.grad = torch.full_like(a, 1.0)
        b.grad = torch.full_like(b, 1000.0 if step < 11 else 1e6)  # a huge outlier in one group only
        opt.step()
        sched.step()
    assert len(opt.norm_histories) == 2 and opt.norm_histories[0] != opt.norm_histories[1]
    assert opt.clip_thresholds[0] < opt.clip_thresholds[1]
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs[0] == pytest.approx(0.002 * (1 + (12 / 20000) ** 2) ** -0.5)
    assert lrs[1] == pytest.approx(0.02 * (1 + (12 / 5000) ** 2) ** -0.5)
    state = opt.state_dict()
    again = ScaledAdam([{"params": [a], "lr": 0.002}, {"params": [b], "lr": 0.02}], clipping_scale=2.0,
                       clip_per_group=True)
    again.load_state_dict(state)
    assert again.clip_thresholds == opt.clip_thresholds
    with pytest.raises(ValueError, match="groups"):
        Eden2(opt, (1.0, 2.0, 3.0))


def test_train_vocoder_gan_cli(data, capsys) -> None:  # noqa: ANN001
    common = ["--data", str(data / "data"), "--encoder", str(data / "enc"), "--segment-seconds", "0.4",
              "--max-steps", "2", "--batch-size", "2", "--ckpt-every", "2"]
    gan = ["--stage", "gan", "--disc-preset", "tiny", "--gan-steps", "1", "--gen-start-step", "1"]
    code = main(["train", "vocoder", *gan, "--init", str(data / "stage1"), "--run-dir", str(data / "run"),
                 *common, "--export", str(data / "rel")])
    assert code == 0, capsys.readouterr().err
    run = json.loads((data / "run" / "run.json").read_text())
    assert run["task"] == "vocoder_gan" and run["task_config"]["discriminator"]["periods"] == [2, 3]
    assert SemanticVocoder.from_pretrained(data / "rel").config.default_steps == 1
    assert main(["train", "vocoder", *gan, "--run-dir", str(data / "run2"), *common]) == 2
    assert "--init" in capsys.readouterr().err
    code = main(["train", "vocoder", "--init", str(data / "stage1"), "--run-dir", str(data / "run3"), *common])
    assert code == 2 and "--stage gan" in capsys.readouterr().err
    code = main(["train", "vocoder", "--mel-floor", "1e-4", "--run-dir", str(data / "run5"), *common])
    assert code == 2 and "--stage gan" in capsys.readouterr().err
    code = main(["train", "vocoder", *gan, "--init", str(data / "stage1"), "--lr", "0.1", "--run-dir",
                 str(data / "run4"), *common])
    assert code == 2 and "--lr-gen" in capsys.readouterr().err


def test_network_evaluations_go_through_the_wrapper(data) -> None:  # noqa: ANN001
    """A DDP wrapper only synchronises what runs inside its forward: the task must call the wrapper."""

    class Wrapper(torch.nn.Module):
        def __init__(self, module: torch.nn.Module) -> None:
            super().__init__()
            self.module, self.calls = module, 0

        def forward(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            self.calls += 1
            return self.module(*args, **kwargs)

    task = _task(data, gen_start_step=1)
    assert task.ddp_find_unused_parameters  # the generator idles during the discriminator warm-up
    assert not _task(data, adversarial=False).ddp_find_unused_parameters
    train, _ = task.build_datasets()
    batch = task.collate([train[i] for i in range(2)])
    wrapped = Wrapper(task.build_model().train())
    task.compute_loss(wrapped, batch)
    task.compute_loss(wrapped, batch).total.backward()
    assert wrapped.calls == 2 and any(p.grad is not None for p in wrapped.module.generator.parameters())
