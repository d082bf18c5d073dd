"""Model-directory detection and ``load_pipeline``: one entry point for every system sara runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sara.errors import CheckpointError, SaraError
from sara.pipelines.detect import MODEL_KINDS, detect_model_kind, load_pipeline


def _dir(tmp_path: Path, files: dict[str, str]) -> Path:
    """A directory holding ``files`` (name -> text)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def _release(cls: str) -> str:
    return json.dumps({"format_version": 1, "class": cls, "config": {}})


@pytest.mark.parametrize("files, kind", [
    ({"main_config.json": "{}", "pytorch_model_main.bin": ""}, "tango"),
    ({"main_config.json": "{}"}, "tango"),  # partial: the Tango loader names what is missing
    ({"state_dict.bin": "", "compression_state_dict.bin": ""}, "audiogen"),
    ({"config.json": json.dumps({"model_type": "semantic_vocoder"})}, "sara-official"),
    ({"config.json": _release("TextToAudio")}, "sara-t2a"),
    ({"config.json": _release("LatentDiffusion")}, "sara-ldm"),
    ({"config.json": _release("AudioGen")}, "sara-audiogen"),
    ({"config.json": _release("DCLDM")}, "sara-dcldm"),
])
def test_each_layout_is_detected(tmp_path, files, kind) -> None:
    assert kind in MODEL_KINDS
    assert detect_model_kind(_dir(tmp_path / "m", files)) == kind


@pytest.mark.parametrize("files, shown", [
    ({}, "none of these"),
    ({"config.json": _release("SemanticVocoder")}, "'SemanticVocoder'"), ({"model.ckpt": ""}, "none of these"),
])
def test_unknown_layouts_list_what_was_looked_for(tmp_path, files, shown) -> None:
    with pytest.raises(CheckpointError) as info:
        detect_model_kind(_dir(tmp_path / "m", files))
    msg = str(info.value)
    assert "\n" not in msg and shown in msg
    for marker in ("main_config.json", "state_dict.bin", "semantic_vocoder", "LatentDiffusion"):
        assert marker in msg
    with pytest.raises(CheckpointError, match="no such model directory"):
        detect_model_kind(tmp_path / "absent")


def test_load_pipeline_returns_each_systems_pipeline(tmp_path, tiny_release) -> None:
    from sara.pipelines.latent_diffusion import LatentDiffusion
    from sara.pipelines.text_to_audio import TextToAudio
    from tests.pipeline.test_latent_diffusion_release import tiny_minilm_pipeline

    ldm_dir = tiny_minilm_pipeline().save_pretrained(tmp_path / "ldm")
    assert isinstance(load_pipeline(ldm_dir), LatentDiffusion)
    assert isinstance(load_pipeline(tiny_release), TextToAudio)  # tests/pipeline/conftest.py's SARA release


def test_audiogen_without_the_package_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sara.audiogen.model", None)  # import fails as if not installed
    path = _dir(tmp_path / "ag", {"state_dict.bin": "", "compression_state_dict.bin": ""})
    with pytest.raises(SaraError, match="not yet supported") as info:
        load_pipeline(path)
    assert "\n" not in str(info.value)


def test_dcldm_without_the_package_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sara.dcldm.pipeline", None)
    path = _dir(tmp_path / "dc", {"config.json": _release("DCLDM")})
    with pytest.raises(SaraError, match="sara-dcldm models are not yet supported"):
        load_pipeline(path)


def test_dcldm_releases_go_to_the_dcldm_loader(tmp_path) -> None:
    pytest.importorskip("sara.dcldm.pipeline")
    path = _dir(tmp_path / "dc", {"config.json": _release("DCLDM")})
    with pytest.raises(CheckpointError):  # DCLDM's own strict loader answered (no components)
        load_pipeline(path)


def test_audiogen_directories_go_to_the_audiogen_loader(tmp_path) -> None:
    pytest.importorskip("sara.audiogen.model")
    path = _dir(tmp_path / "ag", {"state_dict.bin": "not a checkpoint", "compression_state_dict.bin": ""})
    with pytest.raises(CheckpointError, match="state_dict.bin"):  # AudioGen's own strict loader answered
        load_pipeline(path)
