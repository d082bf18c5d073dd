"""Fixtures for the robustness tests: tiny releases (vocoder + encoder, text-to-audio) and a CLI runner.

Every bad input is built on the fly in ``tmp_path``; the CLI runs through ``main([...])`` (in-process) or a
subprocess, and :func:`run_cli` checks the contract: the expected exit status, exactly one line on stderr,
no traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from sara.cli.__main__ import main
from tests.pipeline.conftest import minilm, tiny_pipe, tiny_release  # noqa: F401 - shared session fixtures

torch.set_num_threads(1)


def run_cli(capsys: pytest.CaptureFixture[str], args: list[str], code: int, *, contains: str = "") -> str:
    """Run ``sara ARGS``; assert exit status ``code``, one stderr line (containing ``contains``), no traceback.

    Returns:
        The stderr line.
    """
    got = main([str(a) for a in args])
    err = capsys.readouterr().err
    # progress bars redraw with "\r": split on it too, then drop their frames
    lines = [ln for ln in re.split(r"[\r\n]", err) if ln.strip() and "it/s" not in ln and "%|" not in ln]
    assert "Traceback" not in err, err
    assert got == code, f"exit {got} != {code}: {err}"
    assert len(lines) == 1, f"expected one stderr line, got {lines}"
    assert contains.lower() in lines[0].lower(), lines[0]
    return lines[0]


@pytest.fixture(scope="session")
def vocoder_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SemanticVocoder release with its tiny encoder bundled in ``encoder/``."""
    from sara.vocoder import SemanticVocoder
    from tests.vocoder.helpers import tiny_config, tiny_encoder

    root = tmp_path_factory.mktemp("voc")
    tiny_encoder().save_pretrained(root / "enc")
    voc = SemanticVocoder(tiny_config())
    voc.encoder_path = root / "enc"
    return voc.save_pretrained(root / "release")


@pytest.fixture()
def tone(tmp_path: Path) -> Path:
    """A 0.5 s 24 kHz tone."""
    from tests.vocoder.helpers import write_tone

    return write_tone(tmp_path / "in" / "tone.wav", 0.5, 24000)
