"""``sara train dcldm`` flags (cache + token building, task config, a run that exports a DCLDM release) and the
DC-LDM branch of ``sara generate`` (single prompt, reference-audio acoustics, resumable batch mode)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DConditionModel  # noqa: F401 - imported at collection (slow lazy import)

from sara.cli import _dcldm_generate, train_dcldm
from sara.errors import ConfigError


def _parse(argv: list[str]) -> argparse.Namespace:
    from sara.cli.train import add_common_arguments

    p = argparse.ArgumentParser()
    add_common_arguments(p)
    train_dcldm.add_arguments(p)
    return p.parse_args(argv)


def _common(tmp_path: Path, corpus: Path, t5: Path, audiogen_dir: Path, vae_vocoder: tuple[Path, Path]) -> list[str]:
    vae, voc = vae_vocoder
    return ["--run-dir", str(tmp_path / "run"), "--latent-cache", str(tmp_path / "cache"), "--build-cache",
            "--data", str(corpus), "--vae", str(vae), "--vocoder", str(voc), "--frames", "64", "--preset", "tiny",
            "--text-encoder", "t5", "--t5-path", str(t5), "--audiogen", str(audiogen_dir), "--build-tokens",
            "--max-steps", "2", "--batch-size", "2", "--seed", "3", "--ckpt-every", "2"]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory, corpus: Path, t5: Path, audiogen_dir: Path,
            vae_vocoder: tuple[Path, Path]) -> Path:
    from sara.cli.train import run

    tmp = tmp_path_factory.mktemp("cli")
    args = _parse(_common(tmp, corpus, t5, audiogen_dir, vae_vocoder) + [
        "--token-cache", str(tmp / "tokens"), "--placement", "up1", "--export", str(tmp / "rel")])
    task = train_dcldm.build_task(args)
    cfg = task.config
    assert cfg.placements == ("up1",) and cfg.acoustic_source == "codec" and cfg.sample_guidance == 4.0
    assert (tmp / "tokens/codec.json").is_file() and (tmp / "cache/cache.json").is_file()
    args.task_module = train_dcldm
    assert run(args) == 0
    return tmp / "rel"


def test_train_exports_a_dcldm_release(release: Path) -> None:
    payload = json.loads((release / "config.json").read_text())
    assert payload["class"] == "DCLDM" and payload["config"]["placements"] == ["up1"]


def test_export_stores_sampling_defaults(release: Path, tmp_path: Path) -> None:
    from sara.cli.__main__ import main

    out = tmp_path / "demo"
    assert main(["export", str(release.parent / "run"), str(out), "--half", "--default-sampler", "dpmsolver++",
                 "--default-steps", "25", "--default-cfg", "4", "--default-duration", "0.64"]) == 0
    payload = json.loads((out / "config.json").read_text())
    assert payload["class"] == "DCLDM"
    assert payload["config"]["defaults"] == {"steps": 25, "guidance_scale": 4.0, "duration": 0.64,
                                             "sampler": "dpmsolver++"}


def test_lm_tokens_and_acoustic_only_flags(tmp_path: Path, corpus: Path, t5: Path, audiogen_dir: Path,
                                           vae_vocoder: tuple[Path, Path]) -> None:
    args = _parse(_common(tmp_path, corpus, t5, audiogen_dir, vae_vocoder) + [
        "--token-cache", str(tmp_path / "lm"), "--acoustic-source", "lm", "--conditioning", "acoustic"])
    task = train_dcldm.build_task(args)
    assert task.config.placements == () and task.config.unet.cross_attention_dim == 8  # the codec latent width
    assert (tmp_path / "lm/lm_tokens.json").is_file() and len(list((tmp_path / "lm/codes").iterdir())) == 7
    with pytest.raises(ConfigError, match="--data"):
        bad = _parse(["--run-dir", str(tmp_path / "r"), "--latent-cache", str(tmp_path / "cache"),
                      "--audiogen", str(audiogen_dir), "--token-cache", str(tmp_path / "t2"), "--build-tokens",
                      "--text-encoder", "t5", "--t5-path", str(t5), "--preset", "tiny"])
        train_dcldm.build_task(bad)


def _gen_args(**kw) -> argparse.Namespace:  # noqa: ANN003
    base = dict(prompt="a dog barks", output=None, captions=None, output_dir=None, duration=0.3, steps=2, cfg=None,
                seed=0, sampler=None, acoustic_from=None, vocoder_steps=None, negative_prompt=None)
    return argparse.Namespace(**{**base, **kw})


def test_generate_branch(release: Path, tmp_path: Path) -> None:
    from sara.audio.io import load_audio, save_audio

    assert _dcldm_generate.is_dcldm_dir(release) and not _dcldm_generate.is_dcldm_dir(release / "unet")
    pipe = _dcldm_generate.load_dcldm(release)
    assert _dcldm_generate.run_dcldm(_gen_args(output=str(tmp_path / "a.wav")), pipe) == 0
    wav, sr = load_audio(tmp_path / "a.wav")
    assert sr == 16000 and wav.shape[-1] == 4800
    save_audio(tmp_path / "ref.wav", 0.1 * torch.randn(1, 8000, generator=torch.Generator().manual_seed(0)), 16000)
    args = _gen_args(output=str(tmp_path / "b.wav"), acoustic_from=str(tmp_path / "ref.wav"))
    assert _dcldm_generate.run_dcldm(args, pipe) == 0
    assert not torch.equal(load_audio(tmp_path / "b.wav")[0], wav)
    with pytest.raises(ConfigError, match="acoustic-from"):
        _dcldm_generate.run_dcldm(_gen_args(output=str(tmp_path / "c.wav"), acoustic_from="nowhere.wav"), pipe)
    captions = tmp_path / "caps.jsonl"
    captions.write_text('{"audio_id": "Y1.wav", "caption": "a dog barks"}\n{"audio_id": "Y2.wav", "caption": "rain"}\n')
    batch = _gen_args(prompt=None, captions=str(captions), output_dir=str(tmp_path / "out"))
    assert _dcldm_generate.run_dcldm(batch, pipe) == 0
    files = sorted((tmp_path / "out").rglob("*.wav"))
    assert len(files) == 2 and files[0].parent.name == "guidance_scale-4_steps-2_sampler-ddpm_duration-0.3"
    stamp = files[0].stat().st_mtime_ns
    assert _dcldm_generate.run_dcldm(batch, pipe) == 0 and files[0].stat().st_mtime_ns == stamp  # resumable
