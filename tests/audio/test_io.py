"""Audio loading/saving: formats, validation errors, atomic writes."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sara.audio.io import iter_audio_files, load_audio, save_audio
from sara.errors import AudioError


@pytest.mark.parametrize("ext", [".wav", ".flac", ".ogg"])
def test_roundtrip_formats(tmp_path: Path, ext: str) -> None:
    x = 0.5 * torch.sin(torch.linspace(0, 200, 8000)).unsqueeze(0).repeat(2, 1)
    p = save_audio(tmp_path / f"a{ext}", x, 16000)
    wav, sr = load_audio(p)
    assert sr == 16000 and wav.shape == (2, 8000)
    if ext != ".ogg":  # lossy
        assert torch.allclose(wav, x, atol=1e-3)


def test_mono_and_resample(tmp_path: Path) -> None:
    p = save_audio(tmp_path / "a.wav", torch.zeros(2, 24000) + 0.25, 24000)
    wav, sr = load_audio(p, sample_rate=16000, mono=True)
    assert sr == 16000 and wav.shape == (1, 16000)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "missing.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(AudioError, match="cannot read"):
        load_audio(bad)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="empty"):
        load_audio(empty)
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(16000 * 3, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="longer than"):
        load_audio(long, max_duration=2.0)


def test_nan_rejected_and_no_partial_file(tmp_path: Path) -> None:
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.0, np.nan, 0.1], dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(nan)
    with pytest.raises(AudioError):
        save_audio(tmp_path / "out.wav", torch.tensor([0.0, float("inf")]), 16000)
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".out*"))


def test_iter_audio_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".cache").mkdir()
    for name in ("b.wav", "a.flac", "sub/c.ogg", "notes.txt", ".cache/hidden.wav"):
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_audio_files([tmp_path])]
    assert found == ["a.flac", "b.wav", "sub/c.ogg"]
