"""EncodecCodec contracts: rates, frame arithmetic, key layout, input validation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sara.codec import CodecConfig, EncodecCodec
from sara.codec.conv import StreamableConv1d, StreamableConvTranspose1d
from sara.errors import AudioError, ConfigError, SaraError
from sara.serialization import config_from_dict


def _tiny() -> EncodecCodec:
    return EncodecCodec(CodecConfig.tiny()).eval()


def test_audiogen_rates_and_sizes() -> None:
    cfg = CodecConfig.audiogen()
    assert (cfg.hop_length, cfg.frame_rate, cfg.num_codebooks, cfg.bins, cfg.dimension) == (320, 50, 4, 2048, 128)
    assert CodecConfig.small().frame_rate == 50 and CodecConfig.small().dimension == 128
    codec = EncodecCodec(CodecConfig.tiny())
    assert (codec.sample_rate, codec.hop_length, codec.frame_rate) == (16000, 8, 2000)
    assert (codec.num_codebooks, codec.cardinality, codec.latent_dim) == (2, 16, 8)


def test_audiogen_key_layout_matches_audiocraft_indices() -> None:
    """Index positions from audiocraft's SEANet with 4 stages, 1 residual layer and an LSTM (DCLDM.md 6.2)."""
    keys = set(EncodecCodec(CodecConfig.audiogen()).state_dict())
    for key in ("encoder.model.0.conv.conv.weight_g", "encoder.model.1.block.1.conv.conv.weight_v",
                "encoder.model.1.block.3.conv.conv.bias", "encoder.model.3.conv.conv.weight_v",
                "encoder.model.13.lstm.weight_ih_l1", "encoder.model.15.conv.conv.weight_g",
                "decoder.model.1.lstm.weight_hh_l0", "decoder.model.3.convtr.convtr.weight_g",
                "decoder.model.4.block.1.conv.conv.weight_v", "decoder.model.15.conv.conv.bias",
                "quantizer.vq.layers.3._codebook.embed_avg", "quantizer.vq.layers.0._codebook.inited"):
        assert key in keys, key
    assert len(keys) == 116 and not any("weight_v" in k and "lstm" in k for k in keys)


@pytest.mark.parametrize("length", [1, 7, 8, 9, 63, 64, 65, 200])
def test_frames_are_ceil_of_length_over_hop(length: int) -> None:
    codec = _tiny()
    codes = codec.encode(torch.randn(1, 1, length))
    frames = math.ceil(length / 8)
    assert codes.shape == (1, 2, frames) and codec.num_frames(length) == frames
    assert codec.decode(codes).shape == (1, 1, frames * 8)
    out = codec(torch.randn(1, 1, length))
    assert out.audio.shape == (1, 1, length) and out.latent.shape == (1, 8, frames)


def test_strided_conv_padding_is_audiocraft_s() -> None:
    """kernel 2s, stride s: total padding s split ceil/floor, plus right zeros so the last window is full."""
    conv = StreamableConv1d(1, 1, 8, 4, weight_norm=False)
    x = torch.randn(1, 1, 13)
    weight, bias = conv.conv.conv.weight, conv.conv.conv.bias
    extra = (math.ceil((13 - 8 + 4) / 4 + 1) - 1) * 4 + (8 - 4) - 13  # audiocraft get_extra_padding_for_conv1d
    expected = F.conv1d(F.pad(x, (2, 2 + extra)), weight, bias, stride=4)
    torch.testing.assert_close(conv(x), expected)
    assert expected.shape[-1] == math.ceil(13 / 4)
    up = StreamableConvTranspose1d(1, 1, 8, 4, weight_norm=False)
    assert up(torch.randn(1, 1, 5)).shape[-1] == 20


def test_bad_audio_raises_audio_error() -> None:
    codec = _tiny()
    for wav, message in ((torch.zeros(1, 1, 0), "empty"), (torch.full((1, 1, 16), float("nan")), "NaN"),
                         (torch.zeros(1, 16), r"\[B, 1, T\]"), (torch.zeros(1, 2, 16), r"\[B, 1, T\]")):
        with pytest.raises(AudioError, match=message):
            codec.encode(wav)
    with pytest.raises(AudioError, match="infinite"):
        codec(torch.full((1, 1, 16), float("inf")))


def test_bad_codes_raise_sara_error() -> None:
    codec = _tiny()
    for codes in (torch.zeros(1, 3, 4, dtype=torch.long), torch.full((1, 2, 4), 16), torch.full((1, 2, 4), -1),
                  torch.zeros(1, 2, 4)):
        with pytest.raises(SaraError):
            codec.decode(codes)


def test_invalid_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ratios"):
        config_from_dict(CodecConfig, {"ratios": [4, 0]})
    with pytest.raises(ConfigError, match="trim_right_ratio"):
        config_from_dict(CodecConfig, {"trim_right_ratio": 0.5})


def test_causal_variant_is_causal() -> None:
    codec = EncodecCodec(CodecConfig(**{**CodecConfig.tiny().__dict__, "causal": True, "lstm": 0})).eval()
    x = torch.randn(1, 1, 64)
    y = x.clone()
    y[..., 40:] = torch.randn(24)
    with torch.no_grad():
        a, b = codec.encoder(x), codec.encoder(y)
    torch.testing.assert_close(a[..., :5], b[..., :5])  # frames 0..4 end at sample 40
    assert not torch.allclose(a[..., 6:], b[..., 6:])
