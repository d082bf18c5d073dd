"""TextToAudioTask: data, condition dropout, loss decreases, and a run through the shared loop + export."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sara.dit import DiTConfig
from sara.dit.training import T2ATrainConfig, TextToAudioTask

torch.set_num_threads(1)
LATENT_DIM = 8
PATTERNS = {"dog": 1.0, "rain": -1.0}


def make_corpus(root: Path, clips_per_class: int = 6, frames: int = 30, dim: int = LATENT_DIM) -> tuple[Path, Path]:
    """Two classes whose latents differ in sign; manifest in the corpus format + a latent cache."""
    cache = root / "latents"
    cache.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    records = []
    for cls, sign in PATTERNS.items():
        for i in range(clips_per_class):
            lat = sign * torch.ones(dim, frames) + 0.1 * torch.randn(dim, frames, generator=g)
            (cache / "audio").mkdir(exist_ok=True)
            save_file({"latents": lat}, str(cache / "audio" / f"{cls}{i}.safetensors"))  # the exact relative path
            caps = [f"a {cls} sound", f"{cls}"] if cls == "dog" else ["rain falling", "heavy rain"]
            records.append({"path": f"audio/{cls}{i}.wav", "captions": caps, "caption": caps[0], "class": cls,
                            "split": "valid" if i == 0 else "train"})
    manifest = root / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return manifest, cache


def tiny_config(manifest: Path, cache: Path, **kw) -> T2ATrainConfig:
    model = dataclasses.replace(DiTConfig.tiny(), latent_dim=LATENT_DIM)
    return T2ATrainConfig(manifest=str(manifest), latent_dir=str(cache), model=model, segment_seconds=1.0,
                          warmup_steps=0, lr=3e-3, sample_prompts=("a dog sound",), sample_seconds=1.0,
                          sample_steps=2, **kw)


def test_dataset_crops_pads_and_splits(tmp_path) -> None:
    manifest, cache = make_corpus(tmp_path, frames=20)
    task = TextToAudioTask(tiny_config(manifest, cache))
    train, valid = task.build_datasets()
    assert len(train) == 10 and valid is not None and len(valid) == 2
    item = train[0]
    assert item["latents"].shape == (LATENT_DIM, 25) and item["mask"].sum() == 20
    assert (item["latents"][:, 20:] == 0).all()
    batch = task.collate([train[0], train[1]])
    assert batch["latents"].shape == (2, LATENT_DIM, 25) and len(batch["captions"]) == 2
    assert valid[0]["caption"] in ("a dog sound", "rain falling")


def test_condition_dropout_zeroes_projected_text(tmp_path) -> None:
    manifest, cache = make_corpus(tmp_path)
    task = TextToAudioTask(tiny_config(manifest, cache))
    model = task.build_model().eval()
    x, t = torch.randn(2, LATENT_DIM, 25), torch.tensor([500.0, 500.0])
    states, mask = torch.randn(2, 4, 384), torch.ones(2, 4, dtype=torch.bool)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        dropped = model(x, t, states, mask, torch.tensor([True, True]))
        zero_ctx = model.dit(x, t, torch.zeros(2, 4, 32), mask)
    assert torch.allclose(dropped, zero_ctx, atol=1e-6)


def test_loss_decreases(tmp_path) -> None:
    manifest, cache = make_corpus(tmp_path)
    task = TextToAudioTask(tiny_config(manifest, cache))
    train, _ = task.build_datasets()
    torch.manual_seed(0)
    model = task.build_model()
    opt, sched = task.build_optimizer(model, 40)
    losses = []
    for step in range(40):
        batch = task.collate([train[(step * 4 + j) % len(train)] for j in range(4)])
        out = task.compute_loss(model, batch)
        opt.zero_grad()
        out.total.backward()
        opt.step()
        sched.step()
        losses.append(float(out.total.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-8:]) / 8 < 0.7 * sum(losses[:8]) / 8, losses


def test_fit_export_and_generate(tmp_path) -> None:
    from sara.cli.__main__ import main
    from sara.train import TrainConfig, export_run, fit
    from sara.vocoder import SemanticVocoder, VocoderConfig

    manifest, cache = make_corpus(tmp_path)
    voc_cfg = dataclasses.replace(VocoderConfig.tiny(), latent_dim=LATENT_DIM)
    vocoder_dir = SemanticVocoder(voc_cfg).save_pretrained(tmp_path / "voc")
    task = TextToAudioTask(tiny_config(manifest, cache, vocoder=str(vocoder_dir)))
    run_dir = tmp_path / "run"
    fit(task, TrainConfig(run_dir=str(run_dir), max_steps=4, batch_size=4, ema_decay=0.9, ckpt_every=4,
                          log_every=2, valid_every=4, sample_every=4))
    assert (run_dir / "samples" / "step-00000004" / "0.wav").is_file()
    release = export_run(run_dir, tmp_path / "release")
    wav = tmp_path / "out.wav"
    assert main(["generate", "a dog sound", "-o", str(wav), "--model", str(release), "--duration", "1",
                 "--steps", "2", "--vocoder-steps", "1"]) == 0
    assert wav.is_file()
    # the default guidance chosen at export time is what `sara generate` and the pipeline then use
    assert main(["export", str(run_dir), str(tmp_path / "rel7"), "--default-cfg", "7"]) == 0
    from sara.pipelines.text_to_audio import TextToAudio

    assert TextToAudio.from_pretrained(tmp_path / "rel7").default_guidance == 7.0
    assert TextToAudio.from_pretrained(release).default_guidance == 3.5
    assert main(["export", str(run_dir), str(tmp_path / "bad"), "--default-cfg", "nan"]) == 2
    assert not (tmp_path / "bad").exists()
    # and the sampler: steps and DiT solver
    assert main(["export", str(run_dir), str(tmp_path / "rel_s"), "--default-steps", "12",
                 "--default-sampler", "dpm2m"]) == 0
    sampling = TextToAudio.from_pretrained(tmp_path / "rel_s").sampling
    assert (sampling.steps, sampling.solver) == (12, "dpm2m")
    assert main(["export", str(run_dir), str(tmp_path / "bad"), "--default-sampler", "ddpm"]) == 2
    assert not (tmp_path / "bad").exists()
    # bundling another vocoder release of the same latent space
    other = SemanticVocoder(dataclasses.replace(voc_cfg, default_steps=3)).save_pretrained(tmp_path / "voc3")
    assert main(["export", str(run_dir), str(tmp_path / "rel_v3"), "--vocoder", str(other)]) == 0
    assert TextToAudio.from_pretrained(tmp_path / "rel_v3").vocoder.config.default_steps == 3
    assert main(["export", str(run_dir), str(tmp_path / "bad"), "--vocoder", str(tmp_path / "nope")]) == 2
    wrong = SemanticVocoder(dataclasses.replace(voc_cfg, latent_dim=LATENT_DIM + 1)).save_pretrained(tmp_path / "vw")
    assert main(["export", str(run_dir), str(tmp_path / "bad"), "--vocoder", str(wrong)]) != 0
    assert not (tmp_path / "bad").exists()


def test_finetune_needs_init_and_starts_from_it(tmp_path) -> None:
    from sara.errors import ConfigError
    from sara.serialization import config_from_dict

    manifest, cache = make_corpus(tmp_path)
    with pytest.raises(ConfigError):
        config_from_dict(T2ATrainConfig, {"manifest": str(manifest), "latent_dir": str(cache), "stage": "finetune"})
    base = TextToAudioTask(tiny_config(manifest, cache)).build_model()
    base.dit.save_pretrained(tmp_path / "dit")
    ft = TextToAudioTask(tiny_config(manifest, cache, stage="finetune", init_from=str(tmp_path / "dit")))
    model = ft.build_model()
    assert torch.equal(model.dit.patch_embed.proj.weight, base.dit.patch_embed.proj.weight)
    assert ft.config.learning_rate == 3e-3
    assert dataclasses.replace(ft.config, lr=None).learning_rate == 2e-5


def test_train_cli_t2a(tmp_path, capsys) -> None:
    from sara.cli.__main__ import main

    manifest, cache = make_corpus(tmp_path, clips_per_class=2, frames=10, dim=768)
    code = main(["train", "t2a", "--run-dir", str(tmp_path / "run"), "--data", str(manifest), "--latent-cache",
                 str(cache), "--preset", "tiny", "--max-steps", "2", "--batch-size", "2", "--segment-seconds", "0.4",
                 "--log-every", "1", "--ckpt-every", "2", "--pooled-text", "--class-balance", "0.5",
                 "--timestep-sampling", "uniform", "--timestep-shift", "2"])
    assert code == 0
    assert any((tmp_path / "run" / "checkpoints").iterdir())
    task_config = json.loads((tmp_path / "run" / "run.json").read_text())["task_config"]
    assert task_config["model"]["pooled_text"] is True and task_config["class_balance"] == 0.5
    assert task_config["timestep_shift"] == 2.0
    bad = main(["train", "t2a", "--run-dir", str(tmp_path / "run2"), "--data", str(manifest), "--latent-cache",
                str(cache), "--stage", "finetune"])
    assert bad == 2 and "init_from" in capsys.readouterr().err


def test_class_weights_and_weighted_epoch_sampler(tmp_path) -> None:
    from sara.dit.data import class_weights
    from sara.train.loop import EpochSampler

    assert class_weights(["a", "b"], 0.0) is None
    w = class_weights(["a"] * 9 + ["b"], 1.0)
    assert w is not None and torch.allclose(w.sum(), torch.tensor(10.0, dtype=w.dtype))
    assert torch.allclose(w[:9].sum(), w[9:].sum())  # exponent 1: classes equally likely
    w_half = class_weights(["a"] * 9 + ["b"], 0.5)
    assert torch.allclose(w_half[9] / w_half[0], torch.tensor(3.0, dtype=w_half.dtype))
    with pytest.raises(ValueError):
        class_weights(["a"], -1.0)
    sampler = EpochSampler(10, seed=3, weights=w)
    sampler.set_epoch(2)
    first = list(sampler)
    assert first == list(sampler) and len(first) == 10  # a function of (seed, epoch) only: resumable
    sampler.set_epoch(3)
    assert list(sampler) != first
    draws = []
    for epoch in range(200):
        sampler.set_epoch(epoch)
        draws += list(sampler)
    assert 0.42 < draws.count(9) / len(draws) < 0.58
    manifest, cache = make_corpus(tmp_path, clips_per_class=3)
    train, _ = TextToAudioTask(tiny_config(manifest, cache, class_balance=1.0)).build_datasets()
    assert train.sample_weights is not None and len(train.sample_weights) == len(train)


def test_finetune_can_switch_on_pooled_text(tmp_path) -> None:
    manifest, cache = make_corpus(tmp_path)
    base = TextToAudioTask(tiny_config(manifest, cache)).build_model()
    base.dit.save_pretrained(tmp_path / "dit")
    cfg = tiny_config(manifest, cache, stage="finetune", init_from=str(tmp_path / "dit"))
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, pooled_text=True))
    model = TextToAudioTask(cfg).build_model()
    assert model.dit.config.pooled_text and model.dit.config.dim == base.dit.config.dim
    assert torch.equal(model.dit.patch_embed.proj.weight, base.dit.patch_embed.proj.weight)
