"""Encoder architecture contracts: official shapes, chunking, masking, attention, rates, save/load."""

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import sara
from sara.audio.dsp import resample
from sara.encoder import EncoderConfig, SemanticEncoder
from sara.encoder.blocks import Attention

from ._reference import randomize_bn


@pytest.fixture(scope="module")
def tiny() -> SemanticEncoder:
    torch.manual_seed(0)
    enc = SemanticEncoder(EncoderConfig.tiny()).eval()
    randomize_bn(enc)
    return enc


def test_public_exports() -> None:
    assert sara.SemanticEncoder is SemanticEncoder and sara.EncoderConfig is EncoderConfig


def test_true_base_architecture_shapes_and_keys() -> None:
    enc = SemanticEncoder(EncoderConfig.base()).eval()
    assert sum(p.numel() for p in enc.parameters()) == 85_447_808  # spec A.3
    sd = enc.state_dict()
    assert sd["time_pos_embed"].shape == (1, 768, 1, 252) and sd["freq_pos_embed"].shape == (1, 768, 1, 1)
    assert sd["patch_embed.proj.weight"].shape == (768, 1, 64, 4)
    assert sd["blocks.11.attn.qkv.weight"].shape == (2304, 768) and sd["blocks.11.mlp.fc1.weight"].shape == (3072, 768)
    assert "front_end.0.mel_scale.fb" not in sd  # rebuilt from config, never saved
    assert enc.encode(torch.randn(1, 160000) * 0.1, 16000).shape == (1, 768, 250)
    assert (enc.sample_rate, enc.frame_rate, enc.latent_dim) == (16000, 25.0, 768)


@pytest.mark.parametrize(("samples", "frames"), [(16000, 25), (160000, 250), (161280, 252), (200000, 312)])
def test_frame_arithmetic(samples: int, frames: int) -> None:
    assert EncoderConfig.base().num_frames(samples) == frames


def test_chunks_are_independent(tiny: SemanticEncoder) -> None:
    chunk = tiny.config.tokens_per_chunk * 4  # spectrogram frames per chunk
    spec = tiny.normalize_spec(tiny.mel_db(torch.randn(1, 16000 * 6) * 0.2))  # 6 s = 1.5 tiny chunks
    whole = tiny.forward_spectrogram(spec)
    parts = torch.cat([tiny.forward_spectrogram(spec[..., :chunk]), tiny.forward_spectrogram(spec[..., chunk:])], 1)
    assert whole.shape == (1, 150, 32)
    torch.testing.assert_close(whole, parts)


def test_padding_mask_from_lengths(tiny: SemanticEncoder) -> None:
    mask = tiny.padding_mask(torch.tensor([16000, 9000]), 25)
    assert mask.sum(1).tolist() == [0, 25 - 14]  # floor(9000 / 640) = 14 valid tokens


def test_masked_keys_are_ignored(tiny: SemanticEncoder) -> None:
    spec = tiny.normalize_spec(tiny.mel_db(torch.randn(1, 32000) * 0.2))
    mask = tiny.padding_mask(torch.tensor([20000]), 50)
    valid = int((~mask).sum())
    out = tiny.forward_spectrogram(spec, mask)
    changed = spec.clone()
    changed[..., valid * 4 :] = torch.randn_like(changed[..., valid * 4 :]) * 5
    out_changed = tiny.forward_spectrogram(changed, mask)
    torch.testing.assert_close(out[:, :valid], out_changed[:, :valid])
    assert not torch.allclose(tiny.forward_spectrogram(spec)[:, :valid], out[:, :valid])


def test_encode_with_lengths_runs_batched(tiny: SemanticEncoder) -> None:
    z = tiny.encode(torch.randn(2, 24000) * 0.1, 16000, lengths=torch.tensor([24000, 12000]))
    assert z.shape == (2, 32, 37) and torch.isfinite(z).all()
    z = tiny.encode(torch.randn(2, 96000) * 0.1, 16000, lengths=torch.tensor([96000, 16000]))
    assert z.shape == (2, 32, 150) and torch.isfinite(z).all()  # item 1's second chunk is fully padded


def test_attention_matches_explicit_softmax() -> None:
    torch.manual_seed(1)
    attn = Attention(16, 4).eval()
    x = torch.randn(2, 7, 16)
    key_mask = torch.tensor([[False] * 7, [False] * 4 + [True] * 3])
    b, n, d = x.shape
    q, k, v = attn.qkv(x).view(b, n, 3, 4, 4).permute(2, 0, 3, 1, 4)
    scores = (q @ k.transpose(-1, -2)) * 4 ** -0.5
    scores = scores.masked_fill(key_mask[:, None, None, :], torch.finfo(scores.dtype).min)
    ref = attn.proj((scores.softmax(-1).nan_to_num() @ v).transpose(1, 2).reshape(b, n, d))
    torch.testing.assert_close(attn(x, key_mask), ref, rtol=1e-5, atol=1e-6)


def test_24khz_input_equals_manual_resample(tiny: SemanticEncoder) -> None:
    wav24 = torch.randn(2, 2, 24000 * 2) * 0.1  # stereo, 2 s at 24 kHz
    z = tiny.encode(wav24, 24000)
    manual = resample(wav24, 24000, 16000)
    assert manual.shape[-1] == math.ceil(2 * wav24.shape[-1] / 3)
    torch.testing.assert_close(z, tiny.encode(manual.mean(1), 16000))
    assert z.shape == (2, 32, 50)


def test_encode_long_equals_encode(tiny: SemanticEncoder) -> None:
    wav = torch.randn(1, 24000 * 9 + 123) * 0.1
    long = tiny.encode_long(wav, 24000, block_seconds=1.3)
    torch.testing.assert_close(long, tiny.encode(wav, 24000)[0], rtol=1e-4, atol=1e-4)


def test_save_load_round_trip(tiny: SemanticEncoder, tmp_path: Path) -> None:
    tiny.save_pretrained(tmp_path / "enc")
    assert set(load_file(str(tmp_path / "enc" / "model.safetensors"))) == set(tiny.state_dict())
    loaded = SemanticEncoder.from_pretrained(tmp_path / "enc")
    assert loaded.config == tiny.config and not loaded.training
    wav = torch.randn(1, 40000) * 0.1
    assert torch.equal(loaded.encode(wav, 16000), tiny.encode(wav, 16000))


def test_token_pooling_and_layerscale_variant() -> None:
    cfg = EncoderConfig.tiny().replace(pooling="token", init_values=0.1)
    enc = SemanticEncoder(cfg).eval()
    assert {"cls_token", "token_pos_embed", "blocks.0.ls1.gamma", "blocks.1.ls2.gamma"} <= set(enc.state_dict())
    assert enc.encode(torch.randn(1, 16000), 16000).shape == (1, 32, 25)


def test_presets() -> None:
    assert (EncoderConfig.b06().embed_dim, EncoderConfig.b06().depth, EncoderConfig.b06().num_heads) == (1280, 32, 16)
    assert (EncoderConfig.b12().embed_dim, EncoderConfig.b12().depth, EncoderConfig.b12().num_heads) == (1536, 40, 24)
    assert EncoderConfig.preset("0.6B") == EncoderConfig.b06() and EncoderConfig.preset("1.2B") == EncoderConfig.b12()
    with pytest.raises(ValueError):
        EncoderConfig(embed_dim=30, num_heads=4)
