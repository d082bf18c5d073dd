"""Acoustic encodings: E_t2a = the codec latent (+ positions), E'_t2a through the mel VAE as a sequence, masks,
positions, the null condition's equivalence with zeroed states, reference audio."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from diffusers.models import Transformer2DModel  # imported at collection (slow lazy import)

from sara.dcldm.acoustic import (
    AcousticConfig,
    AcousticEncoder,
    add_positions,
    latents_to_sequence,
    null_acoustic,
    pad_sequences,
    sinusoidal_positions,
)
from sara.errors import ConfigError
from tests.dcldm.fixtures import ACOUSTIC_DIM, tiny_audiogen
from tests.ldm.corpus_fixture import tiny_mel_config, tiny_vae


def test_sinusoidal_positions() -> None:
    pe = sinusoidal_positions(5, 6)
    assert pe.shape == (5, 6)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(pe[3, 0], torch.tensor(math.sin(3.0)))
    torch.testing.assert_close(pe[3, 3], torch.tensor(math.cos(3.0 / 10_000 ** (2 / 6))))
    assert sinusoidal_positions(4, 5).shape == (4, 5)
    x = torch.randn(2, 5, 6)
    assert torch.equal(add_positions(x, AcousticConfig(positions="none")), x)
    torch.testing.assert_close(add_positions(x, AcousticConfig(position_scale=0.5)), x + 0.5 * pe)


def test_pad_and_sequence_layout() -> None:
    states, mask = pad_sequences([torch.ones(3, 2), 2 * torch.ones(1, 2)])
    assert states.shape == (2, 3, 2) and mask.tolist() == [[True] * 3, [True, False, False]]
    assert float(states[1, 1:].abs().sum()) == 0.0
    z = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)  # [B, C, T', F']
    seq = latents_to_sequence(z)
    assert seq.shape == (2, 4, 15)
    assert seq[1, 2, 1 * 5 + 3] == z[1, 1, 2, 3]  # frame t holds channel c's F' bins at c * F' + f


def test_null_condition_equals_zeroed_states() -> None:
    """Zero states give zero keys/values: any number of unmasked zero frames acts like null_acoustic's one."""
    torch.manual_seed(0)
    block = Transformer2DModel(2, 8, in_channels=16, norm_num_groups=4, cross_attention_dim=6,
                               use_linear_projection=True)
    hidden = torch.randn(2, 16, 4, 3)
    null_states, null_mask = null_acoustic(2, 6)
    assert null_states.shape == (2, 1, 6) and null_mask.all()
    a = block(hidden, encoder_hidden_states=null_states, encoder_attention_mask=null_mask, return_dict=False)[0]
    b = block(hidden, encoder_hidden_states=torch.zeros(2, 9, 6),
              encoder_attention_mask=torch.ones(2, 9, dtype=torch.bool), return_dict=False)[0]
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    c = block(hidden, encoder_hidden_states=torch.randn(2, 9, 6), return_dict=False)[0]
    assert not torch.allclose(a, c, atol=1e-4)


@pytest.fixture(scope="module")
def audiogen(t5: Path):  # noqa: ANN201
    return tiny_audiogen(t5)


def test_e_t2a_is_the_codec_latent_with_positions(audiogen) -> None:  # noqa: ANN001
    enc = AcousticEncoder(audiogen)
    assert enc.dim == ACOUSTIC_DIM and enc.token_frames(0.64) == 32 and enc.token_frames(0.5) == 25
    codes = torch.randint(0, 16, (2, 4, 6))
    states, mask = enc.from_codes(codes)
    latent = audiogen.codec.decode_latent(codes).transpose(1, 2)
    assert states.shape == (2, 6, ACOUSTIC_DIM) and mask.all()
    torch.testing.assert_close(states, latent + sinusoidal_positions(6, ACOUSTIC_DIM))
    raw = AcousticEncoder(audiogen, AcousticConfig(positions="none")).from_codes(codes)[0]
    torch.testing.assert_close(raw, latent)
    gen = enc.generate_codes(["a dog barks"], 0.2, seed=3)
    assert gen.shape == (1, 4, 10) and torch.equal(gen, enc.generate_codes(["a dog barks"], 0.2, seed=3))
    torch.testing.assert_close(enc.from_prompts(["a dog barks"], 0.2, seed=3)[0], enc.from_codes(gen)[0])


def test_e_prime_t2a_goes_through_the_mel_vae(audiogen) -> None:  # noqa: ANN001
    from sara.mel.frontend import tango_log_mel

    vae, mel_cfg = tiny_vae(), tiny_mel_config()
    with pytest.raises(ConfigError, match="mel VAE"):
        AcousticEncoder(audiogen, AcousticConfig(kind="t2a_mel"))
    enc = AcousticEncoder(audiogen, AcousticConfig(kind="t2a_mel", positions="none"), vae=vae, mel_config=mel_cfg)
    assert enc.dim == vae.latent_channels * 16 // 4
    codes = torch.randint(0, 16, (1, 4, 10))  # 0.2 s -> 3200 samples -> 20 mel frames -> 5 latent rows
    states, mask = enc.from_codes(codes)
    wav = audiogen.codec.decode(codes)[:, 0]
    z = vae.encode_latents(tango_log_mel(wav, 16000, 20, mel_cfg)[:, None], sample=False)
    assert states.shape == (1, 5, enc.dim) and mask.all()
    torch.testing.assert_close(states, latents_to_sequence(z))


def test_reference_audio_uses_its_codec_tokens(audiogen) -> None:  # noqa: ANN001
    enc = AcousticEncoder(audiogen)
    wav = 0.1 * torch.randn(1, 8000, generator=torch.Generator().manual_seed(0))
    states, _ = enc.from_audio(wav, 16000)
    expected = enc.from_codes(audiogen.codec.encode(wav[:, None]))[0]
    torch.testing.assert_close(states, expected)
    assert states.shape == (1, 25, ACOUSTIC_DIM)
    assert enc.from_audio(torch.randn(16000) * 0.1, 32000)[0].shape == (1, 25, ACOUSTIC_DIM)  # resampled


def test_config_validation() -> None:
    from sara.serialization import config_from_dict

    with pytest.raises(ConfigError, match="kind"):
        config_from_dict(AcousticConfig, {"kind": "mel"})
    with pytest.raises(ConfigError, match="positions"):
        config_from_dict(AcousticConfig, {"positions": "learned"})
