"""AudioGenTask: token cache by exact path, per-item randomness from (seed, epoch, index), the masked CE, the
schedule, loss falling through the shared loop, bit-exact resume, export -> loadable release, CLI wiring."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sara.audiogen.config import LMConfig
from sara.audiogen.model import AudioGen
from sara.audiogen.training import (
    AudioGenTask,
    AudioGenTrainConfig,
    TokenCaptionDataset,
    codebook_cross_entropy,
    inverse_sqrt_lambda,
)
from sara.errors import ConfigError
from sara.text.factory import TextEncoderSpec
from sara.train import TrainConfig, export_run, fit, load_run_model, registry
from tests.audiogen.tiny_text import write_tiny_t5

CAPTIONS = {"dog": ["a dog barks", "dog"], "rain": ["rain falls on the roof", "heavy rain"]}


def make_corpus(root: Path, clips: int = 5, frames: int = 30) -> tuple[Path, Path]:
    """Dog clips count up (codebook k: (t + k) % 16), rain clips hold one code; valid split = clip 0."""
    tokens = root / "tokens"
    records = []
    for cls in CAPTIONS:
        for i in range(clips):
            t = torch.arange(frames)
            codes = torch.stack([(t + k) % 16 if cls == "dog" else torch.full((frames,), 7 + k) for k in range(4)])
            path = tokens / "audio" / cls / f"{i}.safetensors"
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file({"codes": codes.to(torch.int32)}, str(path))
            records.append({"path": f"audio/{cls}/{i}.wav", "captions": CAPTIONS[cls], "caption": CAPTIONS[cls][0],
                            "split": "valid" if i == 0 else "train"})
    manifest = root / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return manifest, tokens


def tiny_task_config(root: Path, **kw) -> AudioGenTrainConfig:  # noqa: ANN003
    manifest, tokens = make_corpus(root)
    t5 = write_tiny_t5(root / "t5")
    return AudioGenTrainConfig(manifest=str(manifest), token_dir=str(tokens), model=LMConfig.tiny(),
                               text_encoder=TextEncoderSpec(kind="t5", path=str(t5)), segment_frames=12, lr=3e-3,
                               warmup_steps=0, **kw)


@pytest.fixture(autouse=True)
def _register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.TASKS, "audiogen", "sara.audiogen.training:AudioGenTask")


def test_dataset_exact_paths_crops_and_determinism(tmp_path: Path) -> None:
    manifest, tokens = make_corpus(tmp_path)
    (tokens / "audio" / "dog" / "3.safetensors").rename(tokens / "3.safetensors")  # same stem, wrong place
    ds = TokenCaptionDataset(manifest, tokens, "train", 12, 4, 16, train=True, cfg_dropout=0.0, seed=1)
    assert len(ds) == 7 and ds.num_missing == 1
    item = ds[0]
    assert item["codes"].shape == (4, 12) and item["mask"].all() and item["caption"] in CAPTIONS["dog"]
    torch.manual_seed(5)  # before set_epoch: one draw of the global RNG (seeded per item by sara's loop)
    first = [ds[i]["codes"][0, 0] for i in range(7)]
    torch.manual_seed(5)
    assert [ds[i]["codes"][0, 0] for i in range(7)] == first
    crops = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        crops.add(int(ds[0]["codes"][0, 0]))
    torch.manual_seed(1)  # after set_epoch the global RNG no longer matters: a function of (seed, epoch, index)
    a = [int(ds[i]["codes"][0, 0]) for i in range(7)]
    torch.manual_seed(2)
    assert [int(ds[i]["codes"][0, 0]) for i in range(7)] == a
    assert len(crops) > 1
    short = TokenCaptionDataset(manifest, tokens, "valid", 40, 4, 16, train=False)
    assert short[0]["mask"].sum() == 30 and (short[0]["codes"][:, 30:] == 16).all()
    assert short[0]["caption"] == CAPTIONS["dog"][0]


def test_condition_dropout_and_bad_files(tmp_path: Path) -> None:
    manifest, tokens = make_corpus(tmp_path)
    dropped = TokenCaptionDataset(manifest, tokens, "train", 12, 4, 16, cfg_dropout=1.0)
    assert all(dropped[i]["caption"] == "" for i in range(len(dropped)))
    some = TokenCaptionDataset(manifest, tokens, "train", 12, 4, 16, cfg_dropout=0.5)
    assert 0 < sum(some[i]["caption"] == "" for i in range(len(some))) < len(some)
    with pytest.raises(ConfigError, match=r"expected \[8, F\]"):
        TokenCaptionDataset(manifest, tokens, "train", 12, 8, 16)
    with pytest.raises(ConfigError, match="no cached tokens"):
        TokenCaptionDataset(manifest, tmp_path, "train", 12, 4, 16)
    (tokens / "codec.json").write_text(json.dumps({"num_codebooks": 4, "cardinality": 2048}))
    with pytest.raises(ConfigError, match="4 codebooks of 2048"):
        TokenCaptionDataset(manifest, tokens, "train", 12, 4, 16)


def test_cross_entropy_uses_valid_positions_only() -> None:
    logits, codes = torch.randn(2, 4, 5, 16), torch.randint(0, 16, (2, 4, 5))
    valid = torch.rand(2, 4, 5) > 0.3
    valid[:, :, 0] = True
    poisoned = logits.masked_fill(~valid[..., None], float("nan"))
    loss, per = codebook_cross_entropy(poisoned, codes, valid)
    manual = [torch.nn.functional.cross_entropy(logits[:, k][valid[:, k]], codes[:, k][valid[:, k]]) for k in range(4)]
    torch.testing.assert_close(loss, torch.stack(manual).mean())
    assert len(per) == 4


def test_inverse_sqrt_schedule() -> None:
    f = inverse_sqrt_lambda(4)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(15) == pytest.approx(math.sqrt(4 / 16))
    assert inverse_sqrt_lambda(0)(0) == 1.0


def _train(cfg: AudioGenTrainConfig, run: Path, steps: int) -> None:
    fit(AudioGenTask(cfg), TrainConfig(run_dir=str(run), max_steps=steps, batch_size=4, log_every=5, ckpt_every=10,
                                       valid_every=1000, ema_decay=0.9, grad_clip=1.0))


def test_loss_falls(tmp_path: Path) -> None:
    cfg = tiny_task_config(tmp_path)
    _train(cfg, tmp_path / "run", 40)
    rows = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss/ce"] for r in rows if "loss/ce" in r]
    assert losses[-1] < 0.6 * losses[0], losses


def test_resume_is_bit_exact_and_export_loads(tmp_path: Path) -> None:
    cfg = tiny_task_config(tmp_path)
    _train(cfg, tmp_path / "a", 20)
    _train(cfg, tmp_path / "b", 10)
    _train(cfg, tmp_path / "b", 20)
    _, a, _ = load_run_model(tmp_path / "a", use_ema=False)
    _, b, step = load_run_model(tmp_path / "b", use_ema=False)
    assert step == 20
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    out = export_run(tmp_path / "a", tmp_path / "release")
    ag = AudioGen.from_pretrained(out)
    _, ema, _ = load_run_model(tmp_path / "a")
    for key, value in ema.state_dict().items():
        assert torch.equal(ag.lm.state_dict()[key], value), key
    assert ag.generate_tokens(["a dog barks"], frames=8, seed=0).shape == (1, 4, 8)


def test_cli_builds_the_task(tmp_path: Path) -> None:
    from sara.cli.train import add_common_arguments
    from sara.cli.train_audiogen import add_arguments, build_task

    cfg = tiny_task_config(tmp_path)
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    add_arguments(parser)
    args = parser.parse_args(["--run-dir", str(tmp_path / "r"), "--data", cfg.manifest, "--token-cache", cfg.token_dir,
                              "--preset", "tiny", "--text-encoder", "t5", "--t5-path", str(cfg.text_encoder.path),
                              "--segment-seconds", "0.5", "--cfg-drop", "0.2", "--seed", "3"])
    task = build_task(args)
    assert isinstance(task, AudioGenTask)
    assert task.config.segment_frames == 25 and task.config.seed == 3
    assert task.config.model == dataclasses.replace(LMConfig.tiny(), cfg_dropout=0.2)
    args.card = 0
    with pytest.raises(ConfigError, match="card"):
        build_task(args)
    args.card = None
    (Path(cfg.token_dir) / "codec.json").write_text(json.dumps({"num_codebooks": 2, "cardinality": 8}))
    model = build_task(args).config.model
    assert (model.n_q, model.card, model.delays) == (2, 8, (0, 1))


def test_log_samples_writes_codes_and_audio(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from tests.codec.audiocraft_layout import TinyEncodec, write_compression_package

    codec = write_compression_package(tmp_path / "codec", TinyEncodec(n_q=4, bins=16))
    cfg = dataclasses.replace(tiny_task_config(tmp_path), codec=str(codec), sample_prompts=("a dog barks",),
                              sample_seconds=0.1)
    task = AudioGenTask(cfg)
    task.log_samples(task.build_model(), 0, tmp_path / "samples")
    assert load_file(str(tmp_path / "samples" / "0.safetensors"))["codes"].shape == (4, 5)
    assert (tmp_path / "samples" / "0.wav").is_file()
    out = task.export(task.build_model(), tmp_path / "release")
    assert (out / "codec" / "compression_state_dict.bin").is_file()
    assert AudioGen.from_pretrained(out).sample_rate == 16000


def test_cli_build_tokens_encodes_the_manifest_through_the_codec(tmp_path: Path) -> None:
    from sara.audio.io import save_audio
    from sara.cli.train import add_common_arguments
    from sara.cli.train_audiogen import add_arguments, build_task
    from sara.codec.config import CodecConfig
    from sara.codec.model import EncodecCodec

    codec = EncodecCodec(CodecConfig.tiny())
    codec.save_pretrained(tmp_path / "codec")
    records = []
    for i in range(3):
        save_audio(tmp_path / "audio" / f"{i}.wav", 0.1 * torch.randn(1, 1600), codec.sample_rate)
        records.append({"path": f"audio/{i}.wav", "captions": ["a dog barks"], "split": "train"})
    (tmp_path / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    add_arguments(parser)
    t5 = write_tiny_t5(tmp_path / "t5")
    argv = ["--run-dir", str(tmp_path / "r"), "--data", str(tmp_path / "manifest.jsonl"), "--token-cache",
            str(tmp_path / "tok"), "--preset", "tiny", "--text-encoder", "t5", "--t5-path", str(t5), "--build-tokens"]
    with pytest.raises(ConfigError, match="--codec"):
        build_task(parser.parse_args(argv))
    task = build_task(parser.parse_args(argv + ["--codec", str(tmp_path / "codec")]))
    assert len(list((tmp_path / "tok" / "audio").glob("*.safetensors"))) == 3
    assert task.config.model.card == codec.config.bins
