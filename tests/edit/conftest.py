"""Tiny editing pipeline: MiniLM + tiny DiT / vocoder / semantic encoder sharing 32-d latents, and its release."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from sara.dit import DiTConfig, LatentDiT
from tests.pipeline.t2a_fixtures import randomize

torch.set_num_threads(1)

LATENT_DIM = 32
WINDOW_SECONDS = 2.0  # the tiny pipeline's default duration = long-form window (50 frames)


@pytest.fixture(scope="session")
def edit_pipe():
    """Random tiny models; default duration 2 s, so anything longer is windowed."""
    from sara.encoder import EncoderConfig, SemanticEncoder
    from sara.pipelines.text_to_audio import TextToAudio
    from sara.text import MiniLMTextEncoder, TextEncoderSpec
    from sara.vocoder import SemanticVocoder, VocoderConfig

    torch.manual_seed(0)
    dit = randomize(LatentDiT(dataclasses.replace(DiTConfig.tiny(), latent_dim=LATENT_DIM)), seed=1, scale=0.05)
    encoder = SemanticEncoder(EncoderConfig.tiny()).eval()
    vocoder = SemanticVocoder(dataclasses.replace(VocoderConfig.tiny(), latent_dim=LATENT_DIM, default_steps=2))
    vocoder.set_encoder(encoder)
    return TextToAudio(dit, MiniLMTextEncoder(), vocoder, encoder, text_encoder_spec=TextEncoderSpec(),
                       default_duration=WINDOW_SECONDS)


@pytest.fixture(scope="session")
def edit_release(edit_pipe, tmp_path_factory) -> Path:
    return edit_pipe.save_pretrained(tmp_path_factory.mktemp("edit") / "t2a")


def tone(seconds: float, sample_rate: int = 24000, freq: float = 440.0) -> torch.Tensor:
    """``[1, T]`` decaying sine with a little noise (deterministic)."""
    t = torch.arange(round(seconds * sample_rate)) / sample_rate
    gen = torch.Generator().manual_seed(3)
    wav = 0.5 * torch.sin(2 * math.pi * freq * t) * torch.exp(-t) + 0.01 * torch.randn(t.shape, generator=gen)
    return wav[None]
