"""Models and configs: malformed config.json / safetensors anywhere in a release -> one-line CheckpointError."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from sara.errors import CheckpointError

from .conftest import run_cli


def _edit_config(path: Path, change: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text())
    change(data)  # in place
    path.write_text(json.dumps(data))


CONFIG_DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "not an object": (lambda p: p.write_text("[1, 2, 3]"), "JSON object"),
    "invalid JSON": (lambda p: p.write_text('{"format_version": 1, "class": '), "invalid JSON"),
    "not UTF-8": (lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), "config.json"),
    "wrong type": (lambda p: _edit_config(p, lambda d: d["config"].update(latent_dim="32")), "latent_dim must be int"),
    "missing key": (lambda p: _edit_config(p, lambda d: d["config"].pop("hop_length")), "missing config keys"),
    "config not an object": (lambda p: _edit_config(p, lambda d: d.update(config=[1])), "'config' must be"),
    "version a string": (lambda p: _edit_config(p, lambda d: d.update(format_version="1")), "format_version"),
    "unknown key": (lambda p: _edit_config(p, lambda d: d["config"].update(colour="blue")), "unknown config keys"),
    "bad value": (lambda p: _edit_config(p, lambda d: d["config"].update(hop_length=-5)), "config.json"),
}


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


@pytest.mark.parametrize("damage", sorted(CONFIG_DAMAGE))
def test_broken_vocoder_config_is_a_checkpoint_error(damage: str, tmp_path: Path, vocoder_release: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from sara.vocoder import SemanticVocoder

    model = shutil.copytree(vocoder_release, tmp_path / "model")
    breaker, why = CONFIG_DAMAGE[damage]
    breaker(model / "config.json")
    with pytest.raises(CheckpointError, match="config.json"):  # never a fall-back to guessing from the weights
        SemanticVocoder.from_pretrained(model)
    latents = tmp_path / "z.safetensors"
    from safetensors.torch import save_file

    save_file({"latents": torch.zeros(32, 2)}, str(latents))
    line = run_cli(capsys, ["decode", latents, "-o", tmp_path / "out", "--model", model], 1, contains="config.json")
    assert why.lower() in line.lower()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["model.safetensors", "encoder/model.safetensors", "encoder/config.json"])
def test_truncated_or_broken_parts_of_a_release(where: str, tmp_path: Path, vocoder_release: Path,
                                                capsys: pytest.CaptureFixture[str], tone: Path) -> None:
    model = shutil.copytree(vocoder_release, tmp_path / "model")
    _truncate(model / where)
    run_cli(capsys, ["reconstruct", tone, "-o", tmp_path / "out", "--model", model, "--steps", 1], 1,
            contains=where.split("/")[-1])
    assert not (tmp_path / "out").exists()


def test_weights_that_do_not_match_the_config(tmp_path: Path, vocoder_release: Path) -> None:
    from sara.vocoder import SemanticVocoder

    model = shutil.copytree(vocoder_release, tmp_path / "model")
    _edit_config(model / "config.json", lambda d: d["config"].update(cond_enc_channels=d["config"]["cond_enc_channels"] * 2))
    with pytest.raises(CheckpointError, match="weights do not fit|unknown checkpoint layout"):
        SemanticVocoder.from_pretrained(model)


@pytest.mark.parametrize("damage", ["dit config", "dit weights", "top config", "text encoder", "no vocoder"])
def test_broken_text_to_audio_release(damage: str, tmp_path: Path, tiny_release: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    model = shutil.copytree(tiny_release, tmp_path / "model")
    if damage == "dit config":
        (model / "dit" / "config.json").write_text('"just a string"')
    elif damage == "dit weights":
        _truncate(model / "dit" / "model.safetensors")
    elif damage == "top config":
        _edit_config(model / "config.json", lambda d: d["config"].update(default_duration="long"))
    elif damage == "text encoder":
        _edit_config(model / "config.json", lambda d: d["config"].update(text_encoder={"kind": 7}))
    else:
        shutil.rmtree(model / "vocoder")
    run_cli(capsys, ["generate", "a dog", "-o", tmp_path / "x.wav", "--model", model, "--steps", 1], 1)
    assert not (tmp_path / "x.wav").exists()


def test_official_vocoder_dir_with_unreadable_config_is_not_guessed(tmp_path: Path) -> None:
    from sara.vocoder import SemanticVocoder
    from tests.vocoder.helpers import tiny_config, write_official

    write_official(tmp_path / "official", tiny_config())
    SemanticVocoder.from_pretrained(tmp_path / "official")  # fine as written
    for text in ("[]", "{not json", '{"model": 5}'):
        (tmp_path / "official" / "config.json").write_text(text)
        with pytest.raises(CheckpointError, match="config.json"):
            SemanticVocoder.from_pretrained(tmp_path / "official")


@pytest.mark.parametrize("content", ["", "[]", '{"task": 3}', '{"task": "vocoder", "task_config": "x"}'])
def test_broken_run_json_is_one_line(content: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(content)
    run_cli(capsys, ["export", run, tmp_path / "rel"], 1, contains="run.json")
    assert not (tmp_path / "rel").exists()
