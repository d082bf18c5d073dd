"""An official-format model directory (hydra config, prefixed weights, tiny sizes) loads and runs."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from sara.dit import LatentDiT
from sara.pipelines.text_to_audio import TextToAudio
from sara.serialization import load_torch_checkpoint
from tests.pipeline.t2a_fixtures import OFFICIAL_BACKBONE, make_official_dir


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_official_dir_loads_and_generates(tmp_path, tiny_t5_dir, weights: str) -> None:
    path = make_official_dir(tmp_path / "official", tiny_t5_dir, weights=weights)
    pipe = TextToAudio.from_pretrained(path)
    state = load_file(path / weights) if weights.endswith("safetensors") else load_torch_checkpoint(path / weights)
    # pipe.dit is exactly the official backbone + projection
    direct = LatentDiT.from_official(OFFICIAL_BACKBONE, state)
    assert torch.equal(pipe.dit.in_blocks[0].adaln.lora_b.weight,
                       state["model.backbone.in_blocks.0.adaln.lora_b.weight"])
    x = torch.randn(1, 768, 25)
    states, mask = pipe.text_encoder.encode(["a dog barks"])
    ctx = pipe.dit.project_text(states)
    assert torch.equal(pipe.dit(x, torch.tensor(999.5), ctx, mask), direct(x, torch.tensor(999.5), ctx, mask))
    assert pipe.text_encoder.dim == 16 and pipe.encoder is None
    wav = pipe("a dog barks", duration=1.0, steps=2, vocoder_steps=2, seed=0)
    assert wav.shape == (1, 24000) and torch.isfinite(wav).all()


def test_official_dir_missing_text_encoder(tmp_path, tiny_t5_dir) -> None:
    from sara.errors import SaraError

    path = make_official_dir(tmp_path / "official", tiny_t5_dir)
    (path / "flan-t5-tiny").unlink()
    with pytest.raises(SaraError, match="not found locally"):
        TextToAudio.from_pretrained(path)


def test_official_pipeline_saves_as_release(tmp_path, tiny_t5_dir) -> None:
    pipe = TextToAudio.from_pretrained(make_official_dir(tmp_path / "official", tiny_t5_dir))
    out = pipe.save_pretrained(tmp_path / "release")
    again = TextToAudio.from_pretrained(out)
    a = pipe("rain on a roof", duration=1.0, steps=2, vocoder_steps=2, seed=1)
    b = again("rain on a roof", duration=1.0, steps=2, vocoder_steps=2, seed=1)
    assert torch.equal(a, b)
