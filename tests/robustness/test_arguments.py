"""Arguments: every numeric flag of every command is range-checked; seeds, devices; bundled-model defaults."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sara.cli.__main__ import build_parser

from .conftest import run_cli


def _numeric_flags(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """``(command path, option)`` for every flag with a range-checked numeric type, in every sub-parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _numeric_flags(sub, (*path, name))
        elif action.option_strings and getattr(action.type, "__name__", "") in ("integer", "number"):
            yield path, action.option_strings[-1]


FLAGS = sorted(set(_numeric_flags(build_parser())))


def test_the_walk_finds_the_flags_of_every_command() -> None:
    commands = {path[0] for path, _ in FLAGS}
    assert {"generate", "encode", "reconstruct", "decode", "demo", "train", "export", "eval", "data"} <= commands
    assert len(FLAGS) > 60
    assert all(getattr(a.type, "__name__", "") != "int" for a in build_parser()._actions)


def test_every_numeric_flag_rejects_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()  # what main() parses with; built once because there are hundreds of cases
    for path, flag in FLAGS:
        for value in ("nan", "inf", "-1", "1e30", "seven"):
            with pytest.raises(SystemExit) as exc:
                parser.parse_args([*path, flag, value])
            err = capsys.readouterr().err
            assert exc.value.code == 2 and err.count("\n") == 1 and f"argument {flag}" in err, (path, flag, err)
            assert "Traceback" not in err


@pytest.mark.parametrize(("args", "why"), [
    (["generate", "a dog", "-o", "x.wav", "--seed", "-1"], "--seed"),
    (["generate", "a dog", "-o", "x.wav", "--seed", str(2**40)], "--seed"),
    (["generate", "a dog", "-o", "x.wav", "--device", "toaster"], "unknown device"),
    (["generate", "a dog", "-o", "x.wav", "--device", "cuda:7"], "not available"),
    (["encode", "x.wav", "-o", "o", "--device", "cuda:99"], "not available"),
    (["reconstruct", "x.wav", "-o", "o", "--seed", "1.5"], "--seed"),
    (["decode", "x.safetensors", "-o", "o", "--steps", "0"], "--steps"),
    (["generate", "a dog", "-o", "x.wav", "--steps", "0"], "--steps"),
    (["generate", "a dog", "-o", "x.wav", "--duration", "0"], "--duration"),
    (["encode", "x.wav", "-o", "o", "--batch-size", "0"], "--batch-size"),
    (["demo", "--duration", "0"], "--duration"),
])
def test_seeds_devices_and_zero_where_invalid(args: list[str], why: str, capsys: pytest.CaptureFixture[str]) -> None:
    if "cuda" in " ".join(args) and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that many GPUs")
    run_cli(capsys, args, 2, contains=why)


@pytest.mark.parametrize(("flag", "value", "why"), [("--max-steps", "0", "max_steps"), ("--batch-size", "0", "batch_size"),
                                                    ("--ema-decay", "1.5", "ema_decay"), ("--ckpt-every", "0", "ckpt_every")])
def test_train_flags_are_checked_before_the_run_directory_exists(
        flag: str, value: str, why: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], tone: Path,
        vocoder_release: Path) -> None:
    run = tmp_path / "run"
    run_cli(capsys, ["train", "vocoder", "--run-dir", run, "--data", tone.parent, "--encoder",
                     vocoder_release / "encoder", flag, value], 2, contains=why)
    assert not run.exists()


def test_decode_and_reconstruct_default_to_the_bundled_model(tmp_path: Path, tone: Path) -> None:
    from sara.cli.__main__ import main
    from sara.pretrained import DEFAULT_MODEL
    from sara.vocoder import SemanticVocoder

    if not (DEFAULT_MODEL / "vocoder" / "encoder").is_dir():
        pytest.skip("the bundled model is not installed")
    assert main(["reconstruct", str(tone), "-o", str(tmp_path / "rec"), "--steps", "1"]) == 0
    assert (tmp_path / "rec" / "tone.wav").is_file()
    dim = SemanticVocoder.from_pretrained(DEFAULT_MODEL / "vocoder").latent_dim
    save_file({"latents": torch.zeros(dim, 2)}, str(tmp_path / "z.safetensors"))
    assert main(["decode", str(tmp_path / "z.safetensors"), "-o", str(tmp_path / "dec"), "--steps", "1"]) == 0
    assert (tmp_path / "dec" / "z.wav").is_file()


def test_missing_model_paths_are_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str], tone: Path) -> None:
    for cmd in (["reconstruct", tone, "-o", tmp_path / "o"], ["decode", tone, "-o", tmp_path / "o"],
                ["generate", "a dog", "-o", tmp_path / "x.wav"]):
        run_cli(capsys, [*cmd, "--model", tmp_path / "nope"], 2, contains="nope")
    run_cli(capsys, ["encode", tone, "-o", tmp_path / "o", "--encoder", tmp_path / "nope"], 2, contains="nope")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("exc", "code", "why"), [
    (MemoryError(), 1, "out of memory"),
    (RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB"), 1, "out of memory on the device"),
    (PermissionError(13, "Permission denied", "/root/x.wav"), 1, "/root/x.wav: Permission denied"),
    (OSError(28, "No space left on device"), 1, "No space left on device"),
])
def test_environment_failures_are_one_line(exc: BaseException, code: int, why: str,
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import sara.cli.generate

    def fail(args: object) -> int:
        raise exc

    monkeypatch.setattr(sara.cli.generate, "run", fail)
    run_cli(capsys, ["generate", "a dog", "-o", "x.wav"], code, contains=why)


def test_programming_errors_still_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    import sara.cli.generate
    from sara.cli.__main__ import main

    def bug(args: object) -> int:
        raise RuntimeError("shape mismatch in a matmul")

    monkeypatch.setattr(sara.cli.generate, "run", bug)
    with pytest.raises(RuntimeError, match="shape mismatch"):  # not hidden: that would hide bugs
        main(["generate", "a dog", "-o", "x.wav"])
