"""Training: data segments (alignment, cache, silence, loudness), the stage-1 loss, a few steps, fit + export."""

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from sara.vocoder import SemanticVocoder
from sara.vocoder.data import SegmentDataset, collate_segments, list_clips, read_segment
from sara.vocoder.losses import energy_weighted_spectral_loss, multi_resolution_mel_distance
from sara.vocoder.model import VocoderGenerator
from sara.vocoder.training import VocoderTask, VocoderTrainConfig

from .helpers import tiny_config, tiny_encoder, write_tone


@pytest.fixture()
def corpus(tmp_path):  # noqa: ANN001, ANN201
    """Four tonal clips (24 kHz and 16 kHz, 1.2 s) and one silent clip, with a manifest."""
    root = tmp_path / "corpus"
    rows = []
    for i, (freq, sr) in enumerate([(220, 24000), (330, 16000), (440, 24000), (660, 24000)]):
        write_tone(root / "audio" / f"tone{i}.wav", 1.2, sr, freq)
        rows.append({"path": f"audio/tone{i}.wav", "split": "valid" if i == 3 else "train", "caption": "a tone"})
    sf.write(str(root / "audio" / "silence.wav"), np.zeros(24000, dtype=np.float32), 24000)
    rows.append({"path": "audio/silence.wav", "split": "train"})
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root


@pytest.fixture()
def encoder_dir(tmp_path):  # noqa: ANN001, ANN201
    tiny_encoder().save_pretrained(tmp_path / "enc")
    return tmp_path / "enc"


def test_read_segment_resamples_only_the_crop(corpus) -> None:  # noqa: ANN001
    path = corpus / "audio" / "tone1.wav"  # 16 kHz
    seg = read_segment(path, 9600, 9600)
    assert seg.shape == (9600,)
    full, _ = sf.read(str(path), dtype="float32")
    from sara.audio.dsp import resample

    ref = resample(torch.from_numpy(full), 16000, 24000)[9600:19200]
    torch.testing.assert_close(seg[200:-200], ref[200:-200], atol=2e-3, rtol=0)


def test_segments_are_frame_aligned_and_loudness_normalised(corpus, tmp_path) -> None:  # noqa: ANN001
    clips = list_clips((str(corpus / "manifest.jsonl"),), "train")
    assert len(clips) == 4 and clips[-1].path.name == "silence.wav"
    cache = tmp_path / "cache"
    enc = tiny_encoder()
    for c in clips:  # what `sara encode` writes: latents of the whole clip
        wav, sr = sf.read(str(c.path), dtype="float32")
        z = enc.encode(torch.from_numpy(wav)[None], sr)[0]
        (cache / c.cache_rel).parent.mkdir(parents=True, exist_ok=True)
        save_file({"latents": z.contiguous()}, str(cache / c.cache_rel))
    ds = SegmentDataset(clips, 9600, latent_cache=cache, train=True)
    torch.manual_seed(0)
    item = ds[0]
    assert item["audio"].shape == (9600,) and item["latents"].shape == (32, 10)
    start = int(np.argmax(np.all(np.isclose(  # the crop starts on a latent frame of the clip
        np.lib.stride_tricks.sliding_window_view(sf.read(str(clips[0].path), dtype="float32")[0], 100)[::960],
        item["audio"][:100].numpy(), atol=1e-6), axis=1)))
    z_full = enc.encode(torch.from_numpy(sf.read(str(clips[0].path), dtype="float32")[0])[None], 24000)[0]
    torch.testing.assert_close(item["latents"], z_full[:, start : start + 10])  # cache kept the level too
    augmented = SegmentDataset(clips, 9600, train=True)[0]  # on the fly: random peak in -6..-1 dBFS
    peak_db = 20 * np.log10(float(augmented["audio"].abs().max()))
    assert -6.01 <= peak_db <= -0.99
    silent = ds[3]
    assert not bool(silent["loud"])
    batch = collate_segments([ds[i] for i in range(4)])
    assert batch["audio"].shape[0] == 3  # the silent crop is dropped
    with pytest.raises(Exception, match="multiple"):
        SegmentDataset(clips, 1000)


def test_spectral_loss_weighting_and_mask() -> None:
    cfg = tiny_config()
    gen = VocoderGenerator(cfg)
    clean = torch.randn(2, 4800) * torch.tensor([[1.0], [0.01]])
    err = torch.randn(2, 4800) * 0.01
    lengths = torch.tensor([4800, 4800])
    loss = energy_weighted_spectral_loss(gen.loss_spec, err, clean, lengths, cfg)
    e, g = gen.loss_spec(err), gen.loss_spec(clean)
    scale = (g + 1e-7).pow(-0.5).clamp(0.01, 100)
    torch.testing.assert_close(loss, (e * scale).mean())
    short = energy_weighted_spectral_loss(gen.loss_spec, err, clean, torch.tensor([4800, 256]), cfg)
    assert not torch.isclose(short, loss)
    assert float(multi_resolution_mel_distance(clean, clean).abs().max()) == 0.0


def _task(corpus, encoder_dir, **kw) -> VocoderTask:  # noqa: ANN001
    cfg = VocoderTrainConfig(model=tiny_config(branch_dropout=0.0), train_data=(str(corpus / "manifest.jsonl"),),
                             encoder=str(encoder_dir), segment_seconds=0.4, sample_steps=2, sample_seconds=0.4, **kw)
    return VocoderTask(cfg)


def test_few_training_steps_reduce_the_loss(corpus, encoder_dir) -> None:  # noqa: ANN001
    task = _task(corpus, encoder_dir, optimizer="adamw", lr=3e-3, warmup_batches=1)
    model = task.build_model()
    opt, sched = task.build_optimizer(model, 30)
    train, valid = task.build_datasets()
    assert len(train) == 4 and valid is not None and len(valid) == 1
    torch.manual_seed(0)
    batch = task.collate([train[i] for i in range(3)])

    def eval_loss() -> float:
        torch.manual_seed(123)
        with torch.no_grad():
            return float(task.compute_loss(model.eval(), batch).total)

    before = eval_loss()
    model.train()
    for _ in range(25):
        out = task.compute_loss(model, batch)
        opt.zero_grad()
        out.total.backward()
        opt.step()
        sched.step()
    assert eval_loss() < 0.7 * before


def test_fit_export_and_reload(corpus, encoder_dir, tmp_path) -> None:  # noqa: ANN001
    from sara.train import TrainConfig, export_run, fit

    task = _task(corpus, encoder_dir)
    assert task.default_grad_clip is None  # ScaledAdam clips itself
    run = tmp_path / "run"
    fit(task, TrainConfig(run_dir=str(run), max_steps=2, batch_size=2, grad_clip=None, ema_decay=0.9,
                          log_every=1, ckpt_every=2, valid_every=2, sample_every=2))
    samples = run / "samples" / "step-00000002"
    assert (samples / "sample-0.wav").is_file() and (samples / "mel_distance.json").is_file()
    out = export_run(run, tmp_path / "release")
    assert (out / "encoder" / "config.json").is_file()
    voc = SemanticVocoder.from_pretrained(out)
    assert voc.config == task.config.model
    wav = voc.reconstruct(torch.randn(1, 16000), 16000, steps=1)
    assert wav.shape == (1, 24000)


def test_train_config_round_trips_and_validates(encoder_dir) -> None:  # noqa: ANN001
    cfg = VocoderTrainConfig(model=tiny_config(), train_data=("x.jsonl",), encoder=str(encoder_dir))
    assert cfg.segment_samples == 38400
    again = VocoderTask.from_config_dict(json.loads(json.dumps(VocoderTask(cfg).config_dict())))
    assert again.config == cfg
    with pytest.raises(ValueError, match="encoder"):
        VocoderTrainConfig(train_data=("x",))
    with pytest.raises(ValueError):
        dataclasses.replace(cfg, optimizer="sgd")


def test_class_balance_weights_thin_manifest_classes(tmp_path) -> None:  # noqa: ANN001
    root = tmp_path / "corpus"
    rows = []
    for i in range(4):
        write_tone(root / f"t{i}.wav", 1.2, 24000, 220 + 110 * i)
        rows.append({"path": f"t{i}.wav", "split": "train", "class": "drum" if i == 3 else "speech"})
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    clips = list_clips((str(root / "manifest.jsonl"),), "train")
    assert [c.label for c in clips] == ["speech", "speech", "speech", "drum"]
    assert SegmentDataset(clips, 9600, train=True).sample_weights is None  # default: uniform draws
    w = SegmentDataset(clips, 9600, train=True, class_balance=1.0).sample_weights
    assert w is not None and float(w[3]) == pytest.approx(3 * float(w[0]))  # classes equally likely
    base = dict(model=tiny_config(), train_data=(str(root / "manifest.jsonl"),), latent_cache="unused")
    with pytest.raises(ValueError, match="class_balance"):
        VocoderTrainConfig(**base, class_balance=-0.5)
    with pytest.raises(ValueError, match="needs manifests"):
        VocoderTrainConfig(**{**base, "train_data": ()}, shards=str(root), class_balance=0.5)
