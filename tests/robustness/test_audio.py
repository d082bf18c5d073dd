"""Audio inputs: any rate in 1-384 kHz in bounded memory and time; bad files and tensors give one clear error."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sara.audio import dsp
from sara.errors import AudioError, ConfigError, SaraError

from .conftest import run_cli

PEAK_RSS = """
import resource, sys, torch
from sara.audio import dsp
torch.set_num_threads(1)
rate, seconds = int(sys.argv[1]), float(sys.argv[2])
x = torch.randn(int(rate * seconds))
dsp.resample(torch.randn(rate // 10), rate, 16000)  # warm-up: allocator pools, lazy kernels
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
y = dsp.resample(x, rate, 16000)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024.0)
"""


def _peak_mib(rate: int, seconds: float) -> float:
    """Peak-RSS growth (MiB) of resampling ``seconds`` of noise at ``rate`` to 16 kHz, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(rate), str(seconds)], capture_output=True, text=True,
                         check=True, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (16000, 24000), (24000, 16000), (22050, 24000),
                                           (48000, 16000), (1000, 384000), (384000, 16000)])
def test_direct_method_matches_the_polyphase_resampler(orig: int, new: int) -> None:
    x = torch.randn(2, 1500, dtype=torch.float64)
    poly = dsp.resample(x, orig, new, method="polyphase")
    direct = dsp.resample(x, orig, new, method="direct")
    assert poly.shape == direct.shape
    torch.testing.assert_close(direct, poly, atol=1e-12, rtol=0)
    assert torch.equal(dsp.resample(x, orig, new), poly)  # "auto" keeps torchaudio's method where it fits


def test_coprime_rate_uses_bounded_direct_method_and_stays_band_limited() -> None:
    rate = 44101  # shares no factor with 16 kHz: the polyphase kernel would be 16000 x 44135 taps (~5.6 GB)
    assert 16000 * (2 * math.ceil(6 * rate / (16000 * 0.99)) + rate) > dsp.MAX_POLYPHASE_TAPS
    t = torch.arange(rate, dtype=torch.float64) / rate
    start = time.perf_counter()
    y = dsp.resample(torch.sin(2 * math.pi * 440 * t), rate, 16000)
    assert time.perf_counter() - start < 2.0
    assert y.shape == (16000,)
    t16 = torch.arange(16000, dtype=torch.float64) / 16000
    torch.testing.assert_close(y[500:-500], torch.sin(2 * math.pi * 440 * t16)[500:-500], atol=3e-3, rtol=0)


def test_coprime_rate_peak_memory_within_twice_that_of_44k1() -> None:
    coprime, regular = _peak_mib(44101, 20.0), _peak_mib(44100, 20.0)
    assert coprime <= 2.0 * regular + 2.0, (coprime, regular)  # + 2 MiB for RSS granularity


@pytest.mark.parametrize("rate", [1000, 7999, 44101, 96001, 384000])
def test_any_rate_encodes_through_the_cli(rate: int, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          vocoder_release: Path) -> None:
    path = tmp_path / f"r{rate}.wav"
    sf.write(str(path), (0.3 * np.sin(np.arange(rate) * 0.05)).astype(np.float32), rate)
    start = time.perf_counter()
    assert main_ok(["encode", path, "--encoder", vocoder_release / "encoder", "-o", tmp_path / "lat"])
    assert time.perf_counter() - start < 10.0
    assert (tmp_path / "lat" / f"r{rate}.safetensors").is_file()


def main_ok(args: list[object]) -> bool:
    """``sara ARGS`` succeeds."""
    from sara.cli.__main__ import main

    return main([str(a) for a in args]) == 0


def _write_bad_files(root: Path) -> dict[str, Path]:
    """One file per kind of bad audio."""
    root.mkdir(parents=True, exist_ok=True)
    files = {"corrupt": root / "corrupt.wav", "text": root / "notes.wav", "empty": root / "empty.wav",
             "short": root / "short.wav", "nan": root / "nan.flac", "truncated": root / "truncated.wav"}
    files["corrupt"].write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(40)))
    files["text"].write_text("this is not audio")
    sf.write(str(files["empty"]), np.zeros(0, dtype=np.float32), 16000)
    sf.write(str(files["short"]), np.zeros(10, dtype=np.float32), 16000)
    nan = np.zeros(8000, dtype=np.float32)
    nan[100] = np.nan
    sf.write(str(root / "nan.wav"), nan, 16000, subtype="FLOAT")
    files["nan"] = root / "nan.wav"
    sf.write(str(files["truncated"]), np.zeros(16000, dtype=np.float32), 16000)
    data = files["truncated"].read_bytes()
    files["truncated"].write_bytes(data[:30])
    return files


def test_bad_audio_files_are_reported_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    vocoder_release: Path, tone: Path) -> None:
    from sara.cli.__main__ import main

    bad = _write_bad_files(tmp_path / "bad")
    code = main(["encode", *map(str, bad.values()), str(tone), "--encoder", str(vocoder_release / "encoder"),
                 "-o", str(tmp_path / "lat")])
    out = capsys.readouterr()
    assert code == 1 and "Traceback" not in out.err
    lines = out.err.strip().splitlines()
    for path in bad.values():
        assert sum(str(path) in ln for ln in lines) == 1, (path, lines)
    assert sorted(p.name for p in (tmp_path / "lat").iterdir()) == ["tone.safetensors"]  # nothing half-written
    assert "encoded 1 file(s)" in out.out


def test_reconstruct_of_a_bad_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                vocoder_release: Path) -> None:
    bad = _write_bad_files(tmp_path / "bad")
    for path in bad.values():
        run_cli(capsys, ["reconstruct", path, "-o", tmp_path / "out", "--model", vocoder_release, "--steps", 1],
                1, contains=path.name)
    run_cli(capsys, ["reconstruct", tmp_path / "missing.wav", "-o", tmp_path / "out", "--model", vocoder_release],
            1, contains="no such file")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_api_rejects_non_finite_audio(bad: float, vocoder_release: Path) -> None:
    from sara.vocoder import SemanticVocoder

    voc = SemanticVocoder.from_pretrained(vocoder_release)
    wav = torch.zeros(1, 16000)
    wav[0, 5] = bad
    with pytest.raises(AudioError, match="NaN or infinite"):
        voc.get_encoder().encode(wav, 16000)
    with pytest.raises(AudioError, match="NaN or infinite"):
        voc.reconstruct(wav, 16000, steps=1)


@pytest.mark.parametrize("rate", [0, -16000, 16000.5, float("nan"), True, "16000", 10**9])
def test_api_rejects_bad_sample_rates(rate: object, vocoder_release: Path) -> None:
    from sara.vocoder import SemanticVocoder

    voc = SemanticVocoder.from_pretrained(vocoder_release)
    with pytest.raises(AudioError, match="sample rate"):
        voc.get_encoder().encode(torch.zeros(1, 16000), rate)
    with pytest.raises(AudioError, match="sample rate"):
        voc.reconstruct(torch.zeros(1, 16000), rate, steps=1)


def test_api_rejects_empty_too_short_and_bad_steps(vocoder_release: Path) -> None:
    from sara.vocoder import SemanticVocoder

    voc = SemanticVocoder.from_pretrained(vocoder_release)
    enc = voc.get_encoder()
    with pytest.raises(AudioError, match="empty"):
        enc.encode(torch.zeros(1, 0), 16000)
    with pytest.raises(AudioError, match="too short"):
        enc.encode(torch.zeros(1, 10), 16000)
    with pytest.raises(AudioError):
        enc.encode("not a tensor", 16000)  # type: ignore[arg-type]
    for steps in (0, -3, 2.5, True, 10**9):
        with pytest.raises(ConfigError, match="steps"):
            voc.reconstruct(torch.zeros(1, 16000), 16000, steps=steps)
    with pytest.raises(ConfigError, match="seed"):
        voc.decode(torch.zeros(1, voc.latent_dim, 2), steps=1, seed=-1)
    with pytest.raises(SaraError):  # a SaraError, never a bare ValueError
        dsp_user_error()


def dsp_user_error() -> None:
    """What a user reaching the resampler through sara's audio API gets for a bad rate."""
    from sara.audio.io import prepare_waveform

    prepare_waveform(torch.zeros(1, 100), 0, 16000)


def test_headers_that_would_size_a_huge_read_are_refused(tmp_path: Path) -> None:
    from sara.audio.io import load_audio

    many = tmp_path / "many.wav"
    sf.write(str(many), np.zeros((10, 100), dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="100 channels"):
        load_audio(many)
    fast = tmp_path / "fast.wav"
    sf.write(str(fast), np.zeros(10, dtype=np.float32), 16000)
    data = bytearray(fast.read_bytes())
    data[24:28] = (50_000_000).to_bytes(4, "little")  # the WAV header's sample rate field
    fast.write_bytes(bytes(data))
    with pytest.raises(AudioError, match="invalid sample rate"):
        load_audio(fast)


def test_encode_of_an_empty_directory_is_a_bad_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    run_cli(capsys, ["encode", tmp_path / "empty", "-o", tmp_path / "lat"], 2, contains="no audio files")
    assert not (tmp_path / "lat").exists()


@pytest.mark.parametrize("rate", [0, -1, 1.5, float("nan"), True])
def test_public_resampler_rejects_bad_rates_with_a_sara_error(rate: object) -> None:
    import sara

    with pytest.raises(AudioError, match="positive integers"):
        sara.resample(torch.zeros(10), rate, 16000)
