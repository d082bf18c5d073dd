"""Training inputs: malformed manifests stop before the run directory exists; missing or unreadable audio is
skipped with a per-file report and a count; latents are matched by exact relative path, never by stem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from sara.encoder.cache import find_cached_latents
from sara.errors import ConfigError

from .conftest import run_cli


def _manifest(root: Path, lines: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "manifest.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.mark.parametrize(("line", "why"), [("[1, 2]", "not a JSON object"), ('"a string"', "not a JSON object"),
                                           ("{broken", "not a JSON line"), ('{"split": "train"}', "missing key"),
                                           ('{"path": 5}', "'path' must be")])
def test_malformed_manifest_lines_stop_before_the_run_dir(line: str, why: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          vocoder_release: Path) -> None:
    good = json.dumps({"path": "a.wav", "split": "train", "caption": "x"})
    manifest = _manifest(tmp_path / "corpus", [good, line])
    run = tmp_path / "run"
    for cmd in (["train", "vocoder", "--data", manifest, "--encoder", vocoder_release / "encoder"],
                ["train", "encoder", "--manifest", manifest, "--preset", "tiny"],
                ["train", "t2a", "--data", manifest, "--latent-cache", tmp_path]):
        run_cli(capsys, [*cmd, "--run-dir", run, "--max-steps", 1], 2, contains=f"{manifest}:2")
        assert not run.exists()


def test_missing_and_unreadable_audio_is_skipped_with_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               vocoder_release: Path) -> None:
    from sara.vocoder.data import SegmentDataset, list_clips
    from tests.vocoder.helpers import write_tone

    root = tmp_path / "corpus"
    for i in range(3):
        write_tone(root / "audio" / f"t{i}.wav", 0.5, 24000)
    (root / "audio" / "broken.wav").write_text("not audio")
    rows = [{"path": f"audio/t{i}.wav"} for i in range(3)] + [{"path": "audio/broken.wav"}, {"path": "gone.wav"}]
    manifest = _manifest(root, [json.dumps(r) for r in rows])
    ds = SegmentDataset(list_clips((str(manifest),)), 9600)
    err = capsys.readouterr().err
    assert len(ds) == 3 and "broken.wav" in err and "gone.wav: no such file" in err
    assert "skipped 2 of 5 clips" in err
    run = tmp_path / "run"
    run_cli(capsys, ["train", "vocoder", "--data", root / "nothing.jsonl", "--encoder", vocoder_release / "encoder",
                     "--run-dir", run], 2, contains="nothing.jsonl")
    assert not run.exists()


def test_latents_are_found_by_exact_relative_path_never_by_stem(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "a").mkdir(parents=True)
    save_file({"latents": torch.zeros(2, 3)}, str(cache / "a" / "x.safetensors"))
    save_file({"latents": torch.zeros(2, 3)}, str(cache / "y.safetensors"), metadata={"source": str(tmp_path / "b/y.wav")})
    save_file({"latents": torch.zeros(2, 3)}, str(cache / "z.safetensors"), metadata={"source": "/other/z.wav"})
    assert find_cached_latents(cache, Path("a/x.wav")) == cache / "a" / "x.safetensors"
    assert find_cached_latents(cache, Path("b/x.wav"), tmp_path / "b/x.wav") is None  # same stem, other clip
    # `sara encode b/ -o cache` dropped the b/ prefix: accepted because the recorded source is this very file
    assert find_cached_latents(cache, Path("b/y.wav"), tmp_path / "b/y.wav") == cache / "y.safetensors"
    assert find_cached_latents(cache, Path("b/z.wav"), tmp_path / "b/z.wav") is None  # another file's latents


def test_t2a_manifest_with_nonexistent_paths_does_not_borrow_other_latents(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from sara.dit.data import LatentCaptionDataset

    cache = tmp_path / "latents"
    cache.mkdir()
    for name in ("dog", "rain"):  # latents of real clips, encoded from another directory
        save_file({"latents": torch.zeros(8, 30)}, str(cache / f"{name}.safetensors"),
                  metadata={"source": f"/data/corpus/{name}.wav"})
    rows = [{"path": f"elsewhere/{n}.wav", "caption": f"a {n}", "split": "train"} for n in ("dog", "rain")]
    manifest = _manifest(tmp_path / "c", [json.dumps(r) for r in rows])
    with pytest.raises(ConfigError, match="no cached latents"):
        LatentCaptionDataset(manifest, cache, "train", 25)
    assert "skipped 2 of 2" in capsys.readouterr().err


def test_run_files_are_written_atomically(tmp_path: Path) -> None:
    from sara.train.checkpoint import read_run, truncate_metrics, write_run

    run = tmp_path / "run"
    write_run(run, "toy", {"a": 1}, {"b": 2})
    assert read_run(run)["task_config"] == {"a": 1}
    assert [p.name for p in run.iterdir()] == ["run.json"]  # no temporary left behind
    metrics = run / "metrics.jsonl"
    metrics.write_text('{"step": 1, "l": 1}\n{"step": 2, "l": 2}\n{"step": 3, "l"')  # torn last line
    truncate_metrics(metrics, 1)
    assert metrics.read_text() == '{"step": 1, "l": 1}\n'


@pytest.mark.parametrize("workers", [0, 2])
def test_audio_that_disappears_mid_training_is_one_line_and_keeps_the_steps_done(
        workers: int, tmp_path: Path, capsys: pytest.CaptureFixture[str], vocoder_release: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sara.train import loop
    from sara.train.checkpoint import latest_checkpoint
    from tests.vocoder.helpers import write_tone

    root = tmp_path / "corpus"
    for i in range(4):
        write_tone(root / "audio" / f"t{i}.wav", 0.5, 24000, 200.0 + 100 * i)
    real, calls = loop._optimizer_step, {"n": 0}

    def step(run: object, finite: bool) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == 3:  # the disk goes away after two optimizer steps
            for f in (root / "audio").iterdir():
                f.unlink()
        return real(run, finite)

    monkeypatch.setattr(loop, "_optimizer_step", step)
    run = tmp_path / "run"
    run_cli(capsys, ["train", "vocoder", "--run-dir", run, "--data", root / "audio", "--encoder",
                     vocoder_release / "encoder", "--preset", "tiny", "--latent-dim", "32", "--segment-seconds",
                     "0.4", "--batch-size", "2", "--max-steps", "50", "--ckpt-every", "100", "--log-every", "1",
                     "--num-workers", workers], 1, contains="cannot read audio")
    latest = latest_checkpoint(run)
    assert latest is not None and int(latest.name.split("-")[1]) >= 3  # saved where it stopped, not lost
    import multiprocessing

    assert multiprocessing.active_children() == []  # the loader's workers were shut down, not leaked
