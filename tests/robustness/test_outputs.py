"""Outputs: refused when unusable, never half-written (disk full / file-size limit), safe and distinct names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sara.audio.io import save_audio
from sara.cli._output import UniqueNames, safe_file_name
from sara.errors import OutputError
from sara.serialization import write_output_atomically

from .conftest import run_cli


def _gen(model: Path, out: object) -> list[object]:
    return ["generate", "a dog", "-o", out, "--model", model, "--duration", "0.4", "--steps", "1",
            "--vocoder-steps", "1"]


def test_generate_refuses_directories_devices_fifos_and_unknown_extensions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_release: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    (tmp_path / "adir.wav").mkdir()
    cases = {tmp_path / "adir.wav": "is a directory", Path("/dev/null"): "not a regular file",
             fifo: "not a regular file", tmp_path / "x.xyz": "unsupported extension",
             tmp_path / "noext": "unsupported extension", tmp_path / "file.txt" / "x.wav": "not a directory"}
    (tmp_path / "file.txt").write_text("a file where a directory should be")
    for out, why in cases.items():
        run_cli(capsys, _gen(tiny_release, out), 2, contains=why)  # a bad -o is a bad argument
    assert Path("/dev/null").is_char_device() and fifo.is_fifo()  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.wav", "file.txt", "pipe.wav"]


def test_directory_outputs_refuse_a_file_in_their_place(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        vocoder_release: Path, tone: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("x")
    run_cli(capsys, ["reconstruct", tone, "-o", taken, "--model", vocoder_release], 2, contains="not a directory")
    run_cli(capsys, ["encode", tone, "-o", taken, "--encoder", vocoder_release / "encoder"], 2,
            contains="not a directory")
    run_cli(capsys, ["decode", tone, "-o", "/dev/null", "--model", vocoder_release], 2, contains="not a directory")
    run_cli(capsys, ["demo", "-o", taken, "--model", vocoder_release], 2, contains="not a directory")
    run_cli(capsys, ["export", tone.parent, taken], 2, contains="not a directory")
    assert taken.read_text() == "x"


def test_existing_file_survives_a_failed_write(tmp_path: Path) -> None:
    target = tmp_path / "keep.wav"
    save_audio(target, torch.zeros(100), 16000)
    before = target.read_bytes()

    def broken(f: object) -> None:
        f.write(b"partial")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match="No space left on device"):
        write_output_atomically(target, broken)
    assert target.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["keep.wav"]


FSIZE = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
from sara.cli.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_file_size_limit_gives_one_line_and_no_partial_file(tmp_path: Path, vocoder_release: Path) -> None:
    from tests.vocoder.helpers import write_tone

    tone = write_tone(tmp_path / "tone.wav", 1.0, 16000)  # 32 kB in; out: 1 s at 24 kHz PCM16 = 48 kB > 20 kB
    out = tmp_path / "out"
    args = ["reconstruct", str(tone), "-o", str(out), "--model", str(vocoder_release), "--steps", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", FSIZE, *args], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[2], timeout=120)
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and len(err) == 1 and "File too large" in err[0], err
    assert not out.exists() or list(out.iterdir()) == []  # neither the file nor a temporary one


def test_caption_names_are_sanitised() -> None:
    assert safe_file_name("a\x00b\x1fc\nd") == "a b c d.wav"
    assert safe_file_name("../../etc/passwd") == "_.._etc_passwd.wav"
    assert safe_file_name("...") == "clip.wav" and safe_file_name("  ") == "clip.wav"
    long = safe_file_name("ü" * 300)
    assert len(long.encode()) <= 200 and long.endswith(".wav") and long.startswith("üü")
    names = UniqueNames("test")
    assert [names.claim(n) for n in ("a.wav", "A.wav", "a.wav", "b.wav")] == ["a.wav", "A-2.wav", "a-3.wav", "b.wav"]


def test_batch_generation_keeps_colliding_captions_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         tiny_release: Path) -> None:
    from sara.cli.__main__ import main

    rows = [{"audio_id": "Yx.wav", "caption": "dog/bark"}, {"audio_id": "Yx.wav", "caption": "dog:bark"},
            {"audio_id": "Yy.wav", "caption": "evil\x00name\x07" + "é" * 300}]
    captions = tmp_path / "caption.jsonl"
    captions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["generate", "--captions", captions, "--output-dir", tmp_path / "out", "--model", tiny_release,
            "--duration", "0.4", "--steps", "1", "--vocoder-steps", "1"]
    assert main([str(a) for a in args]) == 0
    err = capsys.readouterr().err
    assert "Yx_dog_bark.wav is already used by another input; writing (line 2) as Yx_dog_bark-2.wav" in err
    files = sorted(p.name for p in next((tmp_path / "out").iterdir()).iterdir())
    assert files[:2] == ["Yx_dog_bark-2.wav", "Yx_dog_bark.wav"] and len(files) == 3
    assert "\x00" not in files[2] and "\x07" not in files[2] and len(files[2].encode()) <= 200
    assert main([str(a) for a in args]) == 0  # resuming maps the captions to the same names
    assert "wrote 0 files, skipped 3" in capsys.readouterr().out
