"""``sara edit`` / ``inpaint`` / ``extend`` and long-form ``sara generate`` through ``main([...])``."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from sara.cli.__main__ import main
from tests.edit.conftest import tone

FAST = ["--steps", "2", "--vocoder-steps", "1", "--seed", "0"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 1.2 s clip at 16 kHz (so the output is resampled to 24 kHz: 28800 samples)."""
    path = tmp_path_factory.mktemp("clips") / "in.wav"
    sf.write(str(path), tone(1.2, 16000)[0].numpy(), 16000)
    return path


def frames_of(path: Path) -> int:
    info = sf.info(str(path))
    assert info.samplerate == 24000 and info.channels == 1
    return info.frames


@pytest.mark.parametrize(("argv", "samples"), [
    (["edit", "--prompt", "rain", "--strength", "0.6"], 28800),
    (["inpaint", "--prompt", "a door", "--start", "0.3", "--end", "0.8"], 28800),
    (["extend", "--seconds", "1.5", "--prompt", "rain"], 28800 + 36000),
    (["extend", "--seconds", "0.7", "--before"], 28800 + 16800),
])
def test_commands_write_exact_lengths(edit_release, clip, tmp_path, capsys, argv, samples) -> None:
    out = tmp_path / "out.wav"
    code = main([argv[0], str(clip), "-o", str(out), "--model", str(edit_release), *argv[1:], *FAST])
    assert code == 0, capsys.readouterr().err
    assert frames_of(out) == samples and "wrote" in capsys.readouterr().out


def test_generate_long_form_with_prompt_schedule(edit_release, tmp_path) -> None:
    out = tmp_path / "long.wav"
    code = main(["generate", "--prompts-at", "0:rain;2.5:a dog barks", "-o", str(out), "--model",
                 str(edit_release), "--duration", "5.3", *FAST])
    assert code == 0 and frames_of(out) == round(5.3 * 24000)


def _bad(tmp_path: Path, clip: Path) -> list[list[str]]:
    text = tmp_path / "notaudio.wav"
    text.write_text("hello")
    return [
        ["edit", str(clip), "--prompt", "rain", "--strength", "1.5"],
        ["edit", str(clip), "--prompt", " ", "--strength", "0.5"],
        ["edit", str(tmp_path / "missing.wav"), "--prompt", "rain"],
        ["edit", str(text), "--prompt", "rain"],
        ["inpaint", str(clip), "--prompt", "rain", "--start", "0.5", "--end", "3"],  # the clip is 1.2 s
        ["inpaint", str(clip), "--prompt", "rain", "--start", "0.8", "--end", "0.5"],
        ["extend", str(clip), "--seconds", "4000"],
        ["extend", str(clip), "--seconds", "0"],
        ["generate", "--prompts-at", "rain"],
        ["generate", "rain", "--prompts-at", "0:rain"],
        ["generate", "rain", "--duration", "3601"],
    ]


def test_bad_input_is_one_line_exit_2_and_no_file(edit_release, clip, tmp_path, capsys) -> None:
    for argv in _bad(tmp_path, clip):
        out = tmp_path / "out.wav"
        code = main([*argv, "-o", str(out), "--model", str(edit_release), *FAST])
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "error" in err, (argv, err)
        assert not out.exists(), argv
