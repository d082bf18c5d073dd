"""``sara encode`` end to end through ``main([...])``."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open

from sara.audio.io import load_audio
from sara.cli.__main__ import main
from sara.encoder import EncoderConfig, SemanticEncoder

from ._reference import randomize_bn


@pytest.fixture()
def encoder_dir(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    enc = SemanticEncoder(EncoderConfig.tiny()).eval()
    randomize_bn(enc)
    return enc.save_pretrained(tmp_path / "encoder")


def _write_corpus(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    files = {
        "a.wav": (16000, rng.standard_normal(16000) * 0.1),
        "b.flac": (24000, rng.standard_normal((36000, 2)) * 0.1),  # stereo 1.5 s
        "sub/c.ogg": (22050, rng.standard_normal(22050) * 0.1),
        "sub/d.wav": (16000, rng.standard_normal(16000) * 0.1),  # same length as a.wav -> batched together
    }
    out = {}
    for rel, (sr, data) in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, data.astype(np.float32), sr)
        out[rel] = path
    (root / "sub" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00garbage" * 10)
    return out


@pytest.mark.parametrize("long_seconds", ["60", "1.2"])  # 1.2: the 1.5 s flac takes the block-wise path
def test_encode_directory_mixed_formats_with_a_bad_file(tmp_path: Path, encoder_dir: Path, long_seconds: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    files = _write_corpus(tmp_path / "audio")
    code = main(["encode", str(tmp_path / "audio"), "--encoder", str(encoder_dir), "--output",
                 str(tmp_path / "lat"), "--batch-size", "4", "--long-seconds", long_seconds])
    err = capsys.readouterr().err
    assert code == 1
    assert "broken.wav" in err and sum("broken.wav" in line for line in err.splitlines()) == 1
    enc = SemanticEncoder.from_pretrained(encoder_dir)
    for rel, path in files.items():
        out = tmp_path / "lat" / Path(rel).with_suffix(".safetensors")
        with safe_open(str(out), "pt") as f:
            z, meta = f.get_tensor("latents"), f.metadata()
        wav, sr = load_audio(path)
        expected = enc.encode(wav[None], sr)[0]
        assert z.shape == expected.shape and z.dtype == torch.float32
        torch.testing.assert_close(z, expected, rtol=1e-4, atol=1e-4)
        assert meta["sample_rate"] == "16000" and float(meta["frame_rate"]) == 25.0 and meta["source"] == str(path)
    assert not (tmp_path / "lat" / "sub" / "broken.safetensors").exists()
    assert not list((tmp_path / "lat").rglob("*.tmp"))


def test_encode_single_file_success_and_name_clash(tmp_path: Path, encoder_dir: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    files = _write_corpus(tmp_path / "audio")
    assert main(["encode", str(files["a.wav"]), "--encoder", str(encoder_dir), "-o", str(tmp_path / "one")]) == 0
    assert (tmp_path / "one" / "a.safetensors").is_file()
    (tmp_path / "x").mkdir()
    sf.write(tmp_path / "x" / "a.flac", np.zeros(8000, np.float32) + 0.01, 16000)
    code = main(["encode", str(files["a.wav"]), str(tmp_path / "x" / "a.flac"), "--encoder", str(encoder_dir),
                 "-o", str(tmp_path / "two")])
    assert code == 1 and "already used by" in capsys.readouterr().err


def test_bad_encoder_path_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encode", str(tmp_path), "--encoder", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_pad_seconds_appends_silence_before_encoding(tmp_path: Path, encoder_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    files = _write_corpus(tmp_path / "audio")
    (tmp_path / "audio" / "sub" / "broken.wav").unlink()
    assert main(["encode", str(tmp_path / "audio"), "--encoder", str(encoder_dir), "-o", str(tmp_path / "lat"),
                 "--pad-seconds", "1.2"]) == 0
    enc = SemanticEncoder.from_pretrained(encoder_dir)
    for rel in ("a.wav", "b.flac"):  # 1.0 s is padded to 1.2 s; 1.5 s is left alone
        wav, sr = load_audio(files[rel])
        target = max(wav.shape[-1], int(np.ceil(1.2 * sr)))
        padded = torch.nn.functional.pad(wav, (0, target - wav.shape[-1]))
        with safe_open(str(tmp_path / "lat" / Path(rel).with_suffix(".safetensors")), "pt") as f:
            z, meta = f.get_tensor("latents"), f.metadata()
        torch.testing.assert_close(z, enc.encode(padded[None], sr)[0], rtol=1e-4, atol=1e-4)
        assert meta["num_samples"] == str(wav.shape[-1])
        assert meta.get("padded_samples") == (str(target) if target > wav.shape[-1] else None)
    with safe_open(str(tmp_path / "lat" / "a.safetensors"), "pt") as f:
        assert f.get_slice("latents").get_shape()[-1] == 30  # 1.2 s at 25 Hz
    assert main(["encode", str(files["a.wav"]), "--encoder", str(encoder_dir), "-o", str(tmp_path / "x"),
                 "--pad-seconds", "-1"]) == 2
    assert "--pad-seconds" in capsys.readouterr().err
