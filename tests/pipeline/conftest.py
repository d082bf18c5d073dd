"""Session fixtures: a tiny T5 directory, a tiny TextToAudio pipeline (MiniLM) and its release directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sara.dit import DiTConfig, LatentDiT
from tests.pipeline.t2a_fixtures import make_tiny_t5_dir, randomize

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory) -> Path:
    return make_tiny_t5_dir(tmp_path_factory.mktemp("t5") / "tiny-t5")


@pytest.fixture(scope="session")
def minilm():
    from sara.text import MiniLMTextEncoder

    return MiniLMTextEncoder()


@pytest.fixture(scope="session")
def tiny_pipe(minilm):
    """MiniLM + tiny DiT (random, non-zero AdaLN) + tiny vocoder."""
    from sara.pipelines.text_to_audio import TextToAudio
    from sara.text import TextEncoderSpec
    from sara.vocoder import SemanticVocoder, VocoderConfig

    torch.manual_seed(0)
    dit = randomize(LatentDiT(DiTConfig.tiny()), seed=1, scale=0.05)
    return TextToAudio(dit, minilm, SemanticVocoder(VocoderConfig.tiny()), text_encoder_spec=TextEncoderSpec())


@pytest.fixture(scope="session")
def tiny_release(tiny_pipe, tmp_path_factory) -> Path:
    return tiny_pipe.save_pretrained(tmp_path_factory.mktemp("release") / "t2a")
