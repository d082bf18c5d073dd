"""Slow: a tiny DiT trained on a toy captioned latent set follows the text (unseen phrasings)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "t2a_toy_conditioning.py"


@pytest.mark.slow
def test_tiny_dit_learns_the_conditioning(tmp_path) -> None:
    spec = importlib.util.spec_from_file_location("t2a_toy_conditioning", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.run_experiment(tmp_path / "toy", steps=400, samples_per_prompt=2)
    assert results["accuracy_cfg3.5"] >= 2 * results["chance"], results
