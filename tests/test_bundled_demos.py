"""The bundled demo models of every system load and generate through ``sara generate`` (their model cards are
in each folder); the whole bundle stays under the 150 MB budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from sara.cli.__main__ import main
from sara.pretrained import BUNDLED_DIR, bundled_models

BUDGET_BYTES = 150 * 10**6


def test_every_bundled_demo_has_a_card_and_the_bundle_fits_the_budget() -> None:
    models = bundled_models()
    assert [m.name for m in models] == ["sara-demo", "ldm-demo", "audiogen-demo", "dcldm-demo"]
    for model in models:
        assert (model / "README.md").is_file(), f"{model.name} has no model card"
    total = sum(f.stat().st_size for f in BUNDLED_DIR.rglob("*") if f.is_file())
    assert total < BUDGET_BYTES


@pytest.mark.parametrize(("name", "extra", "rate"), [
    ("ldm-demo", ["--steps", "2"], 16000),
    ("audiogen-demo", [], 16000),
    ("dcldm-demo", ["--steps", "2"], 16000),  # AudioGen tokens -> E_t2a -> UNet -> VAE -> HiFi-GAN
])
def test_generate_with_a_bundled_demo_writes_audio(name: str, extra: list[str], rate: int, tmp_path: Path) -> None:
    out = tmp_path / f"{name}.wav"
    assert main(["generate", "--model", str(BUNDLED_DIR / name), "a dog barking", "-o", str(out),
                 "--duration", "1", *extra]) == 0
    info = sf.info(str(out))
    assert info.samplerate == rate and info.frames == rate
