"""Numerical parity with an independent implementation: transformers' ``EncodecModel`` with the same weights.

transformers ports the same SEANet/RVQ (``models/encodec/modeling_encodec.py``): same layer indices under
``layers`` instead of ``model``, one ``conv`` level instead of ``conv.conv`` / ``convtr.convtr``, and modern
weight-norm parametrisations (``original0`` = ``weight_g``, ``original1`` = ``weight_v``) -- the renaming
audiocraft's own ``CompressionSolver.load_from_pretrained`` applies in the other direction.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sara.codec import EncodecCodec
from tests.codec.audiocraft_layout import TinyEncodec, write_compression_package

transformers = pytest.importorskip("transformers")


def _hf_key(key: str) -> str:
    key = key.replace("encoder.model.", "encoder.layers.").replace("decoder.model.", "decoder.layers.")
    key = key.replace(".conv.conv.", ".conv.").replace(".convtr.convtr.", ".conv.")
    return key.replace("weight_g", "parametrizations.weight.original0").replace(
        "weight_v", "parametrizations.weight.original1")


def _hf_model(codec: EncodecCodec, t: TinyEncodec) -> torch.nn.Module:
    frame_rate = t.sample_rate // (t.ratios[0] * t.ratios[1])
    cfg = transformers.EncodecConfig(
        sampling_rate=t.sample_rate, audio_channels=1, num_filters=t.n_filters, upsampling_ratios=list(t.ratios),
        codebook_size=t.bins, hidden_size=t.dimension, num_lstm_layers=t.lstm, num_residual_layers=1,
        use_causal_conv=False, pad_mode="constant", compress=2, use_conv_shortcut=False, norm_type="weight_norm",
        normalize=False, target_bandwidths=[t.n_q * 4 * frame_rate / 1000])
    hf = transformers.EncodecModel(cfg).eval()
    state = {_hf_key(k): v for k, v in codec.state_dict().items() if not k.startswith("quantizer.")}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected and not [k for k in missing if "quantizer" not in k]
    with torch.no_grad():
        for k, layer in enumerate(hf.quantizer.layers):
            layer.codebook.embed.copy_(codec.state_dict()[f"quantizer.vq.layers.{k}._codebook.embed"])
    return hf


def test_encoder_decoder_and_codes_match_transformers(tmp_path: Path) -> None:
    t = TinyEncodec()
    codec = EncodecCodec.from_pretrained(write_compression_package(tmp_path))
    hf = _hf_model(codec, t)
    wav = torch.randn(2, 1, 203)
    with torch.no_grad():
        emb, hf_emb = codec.encoder(wav), hf.encoder(wav)
        torch.testing.assert_close(emb, hf_emb, rtol=1e-4, atol=1e-5)
        codes = codec.encode(wav)
        assert torch.equal(codes, hf.quantizer.encode(hf_emb, hf.config.target_bandwidths[0]).transpose(0, 1))
        latent = codec.decode_latent(codes)
        torch.testing.assert_close(latent, hf.quantizer.decode(codes.transpose(0, 1)))
        torch.testing.assert_close(codec.decode(codes), hf.decoder(latent), rtol=1e-4, atol=1e-5)
