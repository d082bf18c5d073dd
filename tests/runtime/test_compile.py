"""``compile=True`` / ``--compile``: torch.compile'd networks give finite audio of the right length, equal to eager."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.filterwarnings("ignore")


def _tiny_pipe():
    from sara.dit import DiTConfig, LatentDiT
    from sara.pipelines.text_to_audio import TextToAudio
    from sara.text import MiniLMTextEncoder, TextEncoderSpec
    from sara.vocoder import SemanticVocoder, VocoderConfig
    from tests.pipeline.t2a_fixtures import randomize

    torch.manual_seed(0)
    dit = randomize(LatentDiT(DiTConfig.tiny()), seed=1, scale=0.05)
    return TextToAudio(dit, MiniLMTextEncoder(), SemanticVocoder(VocoderConfig.tiny()), text_encoder_spec=TextEncoderSpec())


def test_compiled_pipeline_makes_finite_audio_of_the_right_length() -> None:
    pipe = _tiny_pipe()
    eager = pipe(["rain on a roof"], duration=0.4, steps=2, vocoder_steps=2, seed=0)
    pipe.set_inference(compile=True)
    assert pipe.inference_settings["compile"] is True
    for duration in (0.4, 0.6):  # a second length reuses the dynamic-shape graph
        wav = pipe(["rain on a roof"], duration=duration, steps=2, vocoder_steps=2, seed=0)
        assert wav.shape == (1, round(duration * 25) * 960) and torch.isfinite(wav).all()
    again = pipe(["rain on a roof"], duration=0.4, steps=2, vocoder_steps=2, seed=0)
    torch.testing.assert_close(again, eager, atol=1e-4, rtol=1e-3)
    pipe.set_inference(compile=False)
    assert torch.equal(pipe(["rain on a roof"], duration=0.4, steps=2, vocoder_steps=2, seed=0), eager)
