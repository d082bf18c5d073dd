"""``sara generate --model DIR`` dispatches on the directory's layout: one command for every system."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from sara.cli.__main__ import main
from tests.pipeline.tango_layout import write_flan_t5_dir, write_tango_dir
from tests.pipeline.test_latent_diffusion_release import tiny_minilm_pipeline


@pytest.fixture(scope="module")
def tango_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tango")
    return write_tango_dir(root / "tango", write_flan_t5_dir(root / "flan-t5"))


@pytest.fixture(scope="module")
def ldm_release(tmp_path_factory) -> Path:
    return tiny_minilm_pipeline().save_pretrained(tmp_path_factory.mktemp("ldm") / "release")


def test_tango_directory_generates_16_khz_audio(tango_dir, tmp_path, capsys) -> None:
    out = tmp_path / "dog.wav"
    code = main(["generate", "a dog barks", "--model", str(tango_dir), "-o", str(out), "--steps", "2",
                 "--duration", "0.32", "--seed", "1"])
    assert code == 0, capsys.readouterr().err
    audio, sr = sf.read(out)
    assert sr == 16000 and audio.shape == (5120,)


def test_sara_ldm_release_is_deterministic_and_takes_a_sampler(ldm_release, tmp_path) -> None:
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for path in paths:
        argv = ["generate", "a bell rings", "--model", str(ldm_release), "-o", str(path), "--steps", "3",
                "--sampler", "dpmsolver++", "--seed", "7"]
        assert main(argv) == 0
    (a, sr), (b, _) = sf.read(paths[0]), sf.read(paths[1])
    assert sr == 16000 and (a == b).all() and abs(a).max() > 0


def test_options_of_other_systems_are_refused_in_one_line(ldm_release, tmp_path, capsys) -> None:
    out = tmp_path / "x.wav"
    assert main(["generate", "a bell", "--model", str(ldm_release), "-o", str(out), "--vocoder-steps", "4"]) == 2
    err = capsys.readouterr().err
    assert "--vocoder-steps does not apply" in err and err.count("\n") == 1 and "Traceback" not in err
    assert main(["generate", "a bell", "-o", str(out), "--sampler", "ddim"]) == 2  # the bundled SARA model
    assert "--sampler does not apply to SARA" in capsys.readouterr().err
    assert not out.exists()


def test_unknown_layout_names_what_was_looked_for(tmp_path, capsys) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"class": "Nope"}')
    assert main(["generate", "a bell", "--model", str(model), "-o", str(tmp_path / "x.wav")]) != 0
    err = capsys.readouterr().err
    assert "unknown model layout" in err and "Tango" in err and "Traceback" not in err


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"class": '])
def test_a_broken_config_json_is_reported_as_broken(tmp_path, capsys, content: str) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(content)
    assert main(["generate", "a bell", "--model", str(model), "-o", str(tmp_path / "x.wav")]) == 1
    err = capsys.readouterr().err
    assert "config.json" in err and ("invalid JSON" in err or "JSON object" in err) and err.count("\n") == 1
    assert not (tmp_path / "x.wav").exists()
