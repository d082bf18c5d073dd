"""``sara encode --codec`` / ``sara decode --codec`` through ``main([...])``: token files, audio, bad inputs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from sara.audio.io import load_audio
from sara.cli.__main__ import main
from sara.codec import CodecConfig, EncodecCodec
from sara.codec.tokens import codec_fingerprint
from tests.codec.audiocraft_layout import write_compression_package


def _tiny_codec(seed: int = 0) -> EncodecCodec:
    """A tiny codec whose codebooks were k-means initialised by one training-mode forward."""
    torch.manual_seed(seed)
    codec = EncodecCodec(CodecConfig.tiny()).train()
    codec(0.3 * torch.randn(2, 1, 800), torch.Generator().manual_seed(seed))
    return codec.eval()


@pytest.fixture(scope="module")
def codec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_codec().save_pretrained(tmp_path_factory.mktemp("codec") / "codec")


@pytest.fixture()
def audio(tmp_path: Path) -> dict[str, Path]:
    """A 16 kHz mono file of a length that is not a multiple of the hop, and a 24 kHz stereo one."""
    rng = np.random.default_rng(0)
    files = {"a.wav": (16000, 0.2 * rng.standard_normal(1203)), "b.flac": (24000, 0.2 * rng.standard_normal((900, 2)))}
    out = {}
    for name, (sr, data) in files.items():
        sf.write(tmp_path / name, data.astype(np.float32), sr)
        out[name] = tmp_path / name
    return out


def _stderr_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [ln for ln in re.split(r"[\r\n]", err) if ln.strip() and "it/s" not in ln and "%|" not in ln]


def _encode(codec_dir: Path, inputs: list[Path], out: Path) -> int:
    return main(["encode", *map(str, inputs), "-o", str(out), "--codec", str(codec_dir)])


def test_encode_writes_token_files_in_the_cache_format(codec_dir: Path, audio: dict[str, Path], tmp_path: Path) -> None:
    codec = EncodecCodec.from_pretrained(codec_dir).eval()
    assert _encode(codec_dir, list(audio.values()), tmp_path / "tok") == 0
    for name, path in audio.items():
        wav, _ = load_audio(path, sample_rate=16000, mono=True)
        out = tmp_path / "tok" / Path(name).with_suffix(".safetensors")
        codes = load_file(str(out))["codes"]
        assert codes.dtype == torch.int16 and codes.shape == (2, -(-wav.shape[-1] // 8))
        assert torch.equal(codes.long(), codec.encode(wav.unsqueeze(0))[0])
        with safe_open(str(out), framework="pt") as f:
            meta = f.metadata()
        assert meta == {"path": name, "num_samples": str(wav.shape[-1]), "sample_rate": "16000",
                        "codec_fingerprint": codec_fingerprint(codec)}
    assert len(set(load_file(str(tmp_path / "tok" / "a.safetensors"))["codes"].flatten().tolist())) > 1
    assert not list((tmp_path / "tok").glob(".*"))


def test_decode_restores_the_length_at_16_khz(codec_dir: Path, audio: dict[str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    codec = EncodecCodec.from_pretrained(codec_dir).eval()
    assert _encode(codec_dir, list(audio.values()), tmp_path / "tok") == 0
    assert main(["decode", str(tmp_path / "tok"), "-o", str(tmp_path / "wav"), "--codec", str(codec_dir)]) == 0
    assert _stderr_lines(capsys) == []  # same codec: no fingerprint warning
    for stem, num_samples in (("a", 1203), ("b", 600)):  # b: 900 samples at 24 kHz -> 600 at 16 kHz
        data, sr = sf.read(tmp_path / "wav" / f"{stem}.wav", dtype="float32")
        codes = load_file(str(tmp_path / "tok" / f"{stem}.safetensors"))["codes"].long()
        expected = codec.decode(codes.unsqueeze(0))[0, 0, :num_samples].clamp(-1, 1).numpy()
        assert sr == 16000 and data.shape == (num_samples,)
        np.testing.assert_allclose(data, expected, atol=1.5 / 32768)


def test_decode_accepts_token_cache_files(codec_dir: Path, tmp_path: Path) -> None:
    codes = torch.tensor([[0, 3, 15], [1, 2, 4]], dtype=torch.int16)
    save_file({"codes": codes}, str(tmp_path / "c.safetensors"), metadata={"path": "x.wav", "num_samples": "20",
                                                                             "sample_rate": "16000"})
    assert main(["decode", str(tmp_path / "c.safetensors"), "-o", str(tmp_path / "o"), "--codec", str(codec_dir)]) == 0
    assert sf.info(str(tmp_path / "o" / "c.wav")).frames == 20


def test_kind_mismatches_are_bad_arguments(codec_dir: Path, audio: dict[str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _encode(codec_dir, [audio["a.wav"]], tmp_path / "tok")
    capsys.readouterr()
    assert main(["decode", str(tmp_path / "tok" / "a.safetensors"), "-o", str(tmp_path / "o")]) == 2
    (line,) = _stderr_lines(capsys)
    assert "pass --codec" in line and "a.safetensors" in line
    save_file({"latents": torch.zeros(4, 3)}, str(tmp_path / "z.safetensors"))
    assert main(["decode", str(tmp_path / "z.safetensors"), "-o", str(tmp_path / "o"), "--codec", str(codec_dir)]) == 2
    (line,) = _stderr_lines(capsys)
    assert "latents" in line and "without --codec" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("argv", "why"), [
    (["encode", "{a}", "-o", "{o}", "--codec", "{c}", "--encoder", "{c}"], "not allowed with"),
    (["encode", "{a}", "-o", "{o}", "--codec", "{t}/nope"], "nope"),
    (["encode", "{a}", "-o", "{o}", "--codec", "{c}", "--pad-seconds", "1"], "--pad-seconds"),
    (["encode", "{t}/none.wav", "-o", "{o}", "--codec", "{t}/nope"], "nope"),
    (["decode", "{t}/x.safetensors", "-o", "{o}", "--codec", "{c}", "--model", "{c}"], "not allowed with"),
    (["decode", "{t}/x.safetensors", "-o", "{o}", "--codec", "{c}", "--steps", "3"], "--steps"),
    (["decode", "{t}/x.safetensors", "-o", "{o}", "--codec", "{t}/nope"], "nope"),
])
def test_bad_arguments(argv: list[str], why: str, codec_dir: Path, audio: dict[str, Path], tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    save_file({"codes": torch.zeros(2, 3, dtype=torch.int16)}, str(tmp_path / "x.safetensors"))
    fill = {"a": audio["a.wav"], "o": tmp_path / "o", "c": codec_dir, "t": tmp_path}
    assert main([a.format(**fill) for a in argv]) == 2
    (line,) = _stderr_lines(capsys)
    assert why in line
    assert not (tmp_path / "o").exists()


def _bad_token_files(root: Path) -> dict[str, tuple[Path, str]]:
    """Token files the tiny codec (K 2, 16 entries, hop 8) cannot decode, with the word each report names."""
    cases = {
        "shape": ({"codes": torch.zeros(3, 4, dtype=torch.int16)}, {}, "[2, F]"),
        "empty": ({"codes": torch.zeros(2, 0, dtype=torch.int16)}, {}, "F > 0"),
        "float": ({"codes": torch.zeros(2, 4)}, {}, "integer"),
        "range": ({"codes": torch.full((2, 4), 16, dtype=torch.int16)}, {}, "[0, 16)"),
        "rate": ({"codes": torch.zeros(2, 4, dtype=torch.int16)}, {"sample_rate": "24000"}, "24000 Hz"),
        "length": ({"codes": torch.zeros(2, 4, dtype=torch.int16)}, {"num_samples": "40"}, "num_samples=40"),
        "meta": ({"codes": torch.zeros(2, 4, dtype=torch.int16)}, {"num_samples": "x"}, "positive integer"),
    }
    out = {}
    for name, (tensors, meta, why) in cases.items():
        save_file(tensors, str(root / f"{name}.safetensors"), metadata=meta or None)
        out[name] = (root / f"{name}.safetensors", why)
    (root / "junk.safetensors").write_bytes(b"not a safetensors file")
    out["junk"] = (root / "junk.safetensors", "not a readable")
    return out


def test_bad_token_files_fail_one_line_each(codec_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad").mkdir()
    bad = _bad_token_files(tmp_path / "bad")
    save_file({"codes": torch.ones(2, 4, dtype=torch.int16)}, str(tmp_path / "good.safetensors"))
    argv = [str(p) for p, _ in bad.values()] + [str(tmp_path / "good.safetensors"), str(tmp_path / "missing.safetensors")]
    assert main(["decode", *argv, "-o", str(tmp_path / "o"), "--codec", str(codec_dir)]) == 1
    lines = _stderr_lines(capsys)
    assert len(lines) == len(bad) + 1
    for (path, why), line in zip(bad.values(), lines):
        assert str(path) in line and why in line, (why, line)
    assert "missing.safetensors: no such file" in lines[-1]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["good.wav"]
    assert sf.info(str(tmp_path / "o" / "good.wav")).frames == 32


def test_unreadable_audio_fails_alone(codec_dir: Path, audio: dict[str, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00garbage" * 10)
    assert _encode(codec_dir, [tmp_path / "broken.wav", audio["a.wav"]], tmp_path / "tok") == 1
    (line,) = _stderr_lines(capsys)
    assert "broken.wav" in line
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == ["a.safetensors"]


def test_tokens_of_another_codec_decode_with_a_warning(codec_dir: Path, audio: dict[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    other = _tiny_codec(seed=1).save_pretrained(tmp_path / "other")
    _encode(other, [audio["a.wav"]], tmp_path / "tok")
    capsys.readouterr()
    assert main(["decode", str(tmp_path / "tok"), "-o", str(tmp_path / "o"), "--codec", str(codec_dir)]) == 0
    (line,) = _stderr_lines(capsys)
    fingerprints = (codec_fingerprint(EncodecCodec.from_pretrained(other)),
                    codec_fingerprint(EncodecCodec.from_pretrained(codec_dir)))
    assert "warning" in line and "a.safetensors" in line and all(fp in line for fp in fingerprints)
    assert sf.info(str(tmp_path / "o" / "a.wav")).frames == 1203


def test_an_audiocraft_codec_round_trips(audio: dict[str, Path], tmp_path: Path) -> None:
    package = write_compression_package(tmp_path / "audiocraft")
    assert _encode(package, [audio["a.wav"]], tmp_path / "tok") == 0
    assert load_file(str(tmp_path / "tok" / "a.safetensors"))["codes"].shape == (2, 151)
    assert main(["decode", str(tmp_path / "tok"), "-o", str(tmp_path / "o"), "--codec", str(package)]) == 0
    assert sf.info(str(tmp_path / "o" / "a.wav")).frames == 1203
