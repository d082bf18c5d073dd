"""recipes/dcldm_report.py: picking the best placement and writing the Table 1 report from evaluation files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "dcldm_report.py"


@pytest.fixture(scope="module")
def report():  # noqa: ANN201 - the recipe module
    spec = importlib.util.spec_from_file_location("dcldm_report", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(root: Path, fad: float, relevance: float) -> None:
    (root / "eval").mkdir(parents=True)
    metrics = {"mel": {"fd": 10 * fad, "fad": 2 * fad}, "classifier:/x": {"fd": fad, "fad": fad, "kl_softmax": 0.5}}
    (root / "eval" / "generation.json").write_text(json.dumps({"metrics": metrics}))
    (root / "relevance.json").write_text(json.dumps({"generated_accuracy": relevance}))


def test_best_and_report(report, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    results = tmp_path / "results"
    fads = {"ldm_text": 5.0, "ldm_acoustic": 6.0, "dcldm_down1": 4.0, "dcldm_up1": 1.0, "dcldm_down1_up1": 2.0}
    for name, fad in fads.items():
        _result(results / name, fad, 0.1)
    for w, fad in ((1.0, 3.0), (4.0, 1.5)):
        _result(results / "dcldm_up1" / f"w{w:g}", fad, 0.2)
    assert report.main(["best", "--results", str(results), "--systems", "dcldm_down1", "dcldm_up1",
                        "dcldm_down1_up1"]) == 0
    assert capsys.readouterr().out.strip() == "dcldm_up1"
    run = tmp_path / "runs" / "dcldm_up1" / "run"
    (run / "checkpoints" / "step-00000700").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"task_config": {"init_from": "ldm", "placements": ["up1"],
                                                              "acoustic": {"kind": "t2a"}},
                                              "train_config": {"batch_size": 8}}))
    (run / "metrics.jsonl").write_text(json.dumps({"step": 700, "loss/diffusion": 0.07}) + "\n")
    assert report.main(["report", "--results", str(results), "--out", str(tmp_path / "out"), "--sweep",
                        "dcldm_up1", "--command", "bash x.sh", "--runs", str(tmp_path / "runs")]) == 0
    text = (tmp_path / "out" / "table1.md").read_text()
    assert "`bash x.sh`" in text and "| dcldm_up1 |" in text and "| w=4 |" in text
    assert ("- dual beats text-only: held on classifier/fad (2 vs 5); ahead on 4 of 5 metrics (classifier/fad, "
            "classifier/fd, mel/fad, mel/fd)") in text
    assert "- down1+up1 beats up1 alone: did not hold on classifier/fad (2 vs 1); ahead on 0 of 5 metrics (none)" in text
    assert "| dcldm_up1 | 700 x 8 | ldm | t2a (up1) | 0.0700 |" in text
    assert (tmp_path / "out" / "table1.png").stat().st_size > 0 and (tmp_path / "out" / "guidance.png").is_file()
