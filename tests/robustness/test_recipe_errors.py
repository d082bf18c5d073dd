"""The scripts in ``recipes/`` report a missing or unreadable input as one error line and exit status 1 (through
:func:`sara.cli.guard.run_guarded`, like the CLI), never a traceback."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _argv(tmp: Path) -> dict[str, list[str]]:
    """Per recipe: arguments naming inputs that do not exist (or, for one, a corrupt JSON file)."""
    missing = str(tmp / "missing")
    bad_json = tmp / "bad.json"
    bad_json.write_text("{not json")
    return {
        "classifier_robustness": ["--classifier", missing, "--manifest", missing],
        "dcldm_report": ["reference", "--manifest", missing, "--classifier", missing, "--out", str(tmp / "o")],
        "dit_text_gap": [missing],
        "latent_relevance": ["--model", missing, "--manifest", missing, "--latents", missing, "--classes",
                             str(bad_json)],
        "model_cards": ["--runs", missing, "--bundle", missing, "--manifest", missing, "--eval", missing],
        "system_cards": ["ldm-demo", "--bundle", missing, "--runs", missing, "--manifest", missing,
                         "--eval", missing],
        "test_clips": [missing, str(tmp / "clips")],
        "vocoder_relevance": ["--vocoder", missing, "--classifier", missing, "--manifest", missing],
        "everyday_relevance": ["--model", missing, "--classifier", missing, "--out", str(tmp / "o")],
    }


RECIPE_NAMES = ["classifier_robustness", "dcldm_report", "dit_text_gap", "everyday_relevance", "latent_relevance",
                "model_cards", "system_cards", "test_clips", "vocoder_relevance"]


@pytest.mark.parametrize("name", RECIPE_NAMES)
def test_missing_input_is_one_line(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *_argv(tmp_path)[name]])
    monkeypatch.syspath_prepend(str(RECIPES))
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(RECIPES / f"{name}.py"), run_name="__main__")
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 1, err
    assert err.startswith(f"{name}.py: error: ") and "\n" not in err and "Traceback" not in err, err


def test_recipes_all_guarded() -> None:
    """Every recipe with a ``main`` runs it through ``run_guarded``."""
    scripts = sorted(p.stem for p in RECIPES.glob("*.py") if "def main(" in p.read_text())
    assert scripts == RECIPE_NAMES  # a new recipe gets a case above
    for name in scripts:
        assert "run_guarded" in (RECIPES / f"{name}.py").read_text(), name
