"""The CLI skeleton: every command is registered, help works, user errors give one line and exit 2."""

import importlib

import pytest

from sara.cli.__main__ import COMMANDS, main


def test_every_command_module_exists() -> None:
    for name in COMMANDS:
        module = importlib.import_module(f"sara.cli.{name}")
        assert callable(module.register), name


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0  # main returns argparse's status instead of raising SystemExit
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_demo_with_missing_model_is_one_line(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    code = main(["demo", "--model", str(tmp_path / "nope"), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "does not exist" in err
    assert not (tmp_path / "out").exists()
