"""CLI smoke tests through ``sara.cli.__main__.main``: reconstruct, decode, train vocoder."""

import json

import numpy as np
import soundfile as sf
import torch
from safetensors.torch import save_file

from sara.cli.__main__ import main

from .helpers import tiny_config, tiny_encoder, write_official, write_tone


def _official_with_encoder(tmp_path):  # noqa: ANN001, ANN202
    model = tmp_path / "model"
    write_official(model, tiny_config())
    tiny_encoder().save_pretrained(model / "dasheng_base")
    return model


def test_reconstruct_any_rate_keeps_duration(tmp_path, capsys) -> None:  # noqa: ANN001
    model = _official_with_encoder(tmp_path)
    a = write_tone(tmp_path / "in" / "a.flac", 1.3, 44100, channels=2)
    b = write_tone(tmp_path / "in" / "b.wav", 0.7, 16000)
    code = main(["reconstruct", str(a), str(b), "-o", str(tmp_path / "out"), "--model", str(model), "--steps", "2"])
    assert code == 0
    for name, seconds_samples in (("a", round(int(1.3 * 44100) * 24000 / 44100)), ("b", round(int(0.7 * 16000) * 1.5))):
        info = sf.info(str(tmp_path / "out" / f"{name}.wav"))
        assert info.samplerate == 24000 and info.frames == seconds_samples and info.channels == 1


def test_reconstruct_errors_are_one_line(tmp_path, capsys) -> None:  # noqa: ANN001
    model = tmp_path / "model"
    write_official(model, tiny_config())  # no encoder weights next to it
    good = write_tone(tmp_path / "good.wav", 0.5, 24000)
    code = main(["reconstruct", str(good), "-o", str(tmp_path / "out"), "--model", str(model)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "dasheng_base" in err and len(err.splitlines()) == 1  # bad data: no encoder in the model
    assert not (tmp_path / "out").exists()

    tiny_encoder().save_pretrained(tmp_path / "enc")
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    code = main(["reconstruct", str(bad), str(good), "-o", str(tmp_path / "out"), "--model", str(model),
                 "--encoder", str(tmp_path / "enc"), "--steps", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "bad.wav" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.wav"]
    assert main(["reconstruct", str(good), "-o", str(tmp_path / "o2"), "--model", str(tmp_path / "nope")]) == 2


def test_decode_latent_files(tmp_path, capsys) -> None:  # noqa: ANN001
    model = tmp_path / "model"
    write_official(model, tiny_config())
    lat = tmp_path / "lat"
    lat.mkdir()
    save_file({"latents": torch.randn(32, 7)}, str(lat / "x.safetensors"), metadata={"frame_rate": "25.0"})
    save_file({"other": torch.randn(32, 7)}, str(lat / "y.safetensors"))
    code = main(["decode", str(lat), "-o", str(tmp_path / "out"), "--model", str(model), "--steps", "2", "--seed", "3"])
    err = capsys.readouterr().err
    assert code == 1 and "y.safetensors" in err and "latents" in err
    assert sf.info(str(tmp_path / "out" / "x.wav")).frames == 7 * 960
    assert not (tmp_path / "out" / "y.wav").exists()


def test_decode_with_another_solver_and_grid(tmp_path) -> None:  # noqa: ANN001
    model = tmp_path / "model"
    write_official(model, tiny_config())
    lat = tmp_path / "lat"
    lat.mkdir()
    save_file({"latents": torch.randn(32, 7)}, str(lat / "x.safetensors"), metadata={"frame_rate": "25.0"})
    args = ["decode", str(lat), "--model", str(model), "--steps", "2", "--seed", "3"]
    assert main([*args, "-o", str(tmp_path / "euler")]) == 0
    assert main([*args, "-o", str(tmp_path / "heun"), "--vocoder-solver", "heun", "--vocoder-grid", "sway"]) == 0
    euler, _ = sf.read(str(tmp_path / "euler" / "x.wav"))
    heun, _ = sf.read(str(tmp_path / "heun" / "x.wav"))
    assert euler.shape == heun.shape == (7 * 960,) and not np.array_equal(euler, heun)


def test_train_vocoder_cli(tmp_path, capsys) -> None:  # noqa: ANN001
    for i in range(3):
        write_tone(tmp_path / "data" / f"t{i}.wav", 0.8, 24000, 200.0 + 100 * i)
    tiny_encoder().save_pretrained(tmp_path / "enc")
    code = main(["train", "vocoder", "--run-dir", str(tmp_path / "run"), "--data", str(tmp_path / "data"),
                 "--encoder", str(tmp_path / "enc"), "--preset", "tiny", "--segment-seconds", "0.4",
                 "--max-steps", "2", "--batch-size", "2", "--ckpt-every", "2", "--export", str(tmp_path / "rel"),
                 "--class-balance", "0.5"])
    assert code == 0, capsys.readouterr().err
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["task"] == "vocoder" and run["task_config"]["optimizer"] == "scaled_adam"
    assert run["task_config"]["class_balance"] == 0.5
    assert (tmp_path / "rel" / "model.safetensors").is_file()
    code = main(["train", "vocoder", "--run-dir", str(tmp_path / "run2"), "--data", str(tmp_path / "data"),
                 "--preset", "tiny"])
    assert code == 2 and "encoder" in capsys.readouterr().err
