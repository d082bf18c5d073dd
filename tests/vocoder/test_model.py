"""Generator layout and formulas: official keys/shapes, STFT channel order, condition upsampling, fusion."""

import math

import numpy as np
import pytest
import torch

from sara.audio.dsp import stft
from sara.vocoder import VocoderConfig
from sara.vocoder.model import (
    AudioConvNeXt,
    VocoderGenerator,
    channels_to_spec,
    spec_to_channels,
    upsample_condition,
)

from .helpers import official_state_dict, randomize, tiny_config


def test_paper_layout_matches_official_keys_and_shapes() -> None:
    state = official_state_dict(VocoderConfig.paper())
    assert len(state) == 433
    expected = {
        "loss_spec.fb": (513, 256), "loss_spec.spectrogram.window": (1024,),
        "cond_encoder.in_proj.weight": (512, 768, 3), "cond_encoder.in_norm.log_scale": (),
        "cond_encoder.blocks.3.residual_scale.scale": (512, 1), "cond_encoder.blocks.0.act.weight": (1536,),
        "estimators.0.fft.window": (960,), "estimators.2.ifft.window": (240,),
        "estimators.0.decoder.in_proj.weight": (768, 962, 1), "estimators.1.decoder.out_proj.weight": (482, 512, 1),
        "estimators.2.decoder.time_mlp.0.weight": (1536, 512), "estimators.2.decoder.time_mlp.2.weight": (512, 1536),
        "estimators.0.decoder.cond_mlp.0.weight": (1536, 512, 1), "estimators.0.decoder.cond_mlp.1.weight": (1536,),
        "estimators.0.decoder.cond_mlp.2.weight": (512, 1536, 1),
        "estimators.1.decoder.blocks.7.cond_proj.weight": (512, 512, 1),
        "estimators.2.decoder.blocks.7.time_embed_proj.weight": (384, 512),
        "estimators.2.decoder.blocks.0.pwconv1.weight": (1152, 384, 1),
        "estimators.2.decoder.blocks.0.dwconv.weight": (384, 1, 7),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    params = sum(p.numel() for p in VocoderGenerator(VocoderConfig.paper()).parameters())
    assert params == pytest.approx(81.0e6, rel=0.01)


def test_persistent_state_has_no_buffers() -> None:
    keys = VocoderGenerator(tiny_config()).state_dict()
    assert not any(k.endswith("window") or k == "loss_spec.fb" for k in keys)


def test_channel_order_real_then_imag_against_hand_dft() -> None:
    n_fft, hop = 8, 4
    x = torch.randn(1, 40, dtype=torch.float64)
    chans = spec_to_channels(stft(x, n_fft, hop))  # [1, 2F, T]
    F = n_fft // 2 + 1
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    frame = 2  # centred at 2 * hop = 8 -> samples 4..11, no reflection involved
    seg = x[0, frame * hop - n_fft // 2: frame * hop + n_fft // 2].numpy() * w
    dft = np.array([np.sum(seg * np.exp(-2j * np.pi * f * np.arange(n_fft) / n_fft)) for f in range(F)])
    np.testing.assert_allclose(chans[0, :F, frame].numpy(), dft.real, atol=1e-9)
    np.testing.assert_allclose(chans[0, F:, frame].numpy(), dft.imag, atol=1e-9)
    torch.testing.assert_close(channels_to_spec(chans.float()), stft(x, n_fft, hop).to(torch.complex64))


def test_branch_feeds_raw_real_imag_spectrum_to_decoder() -> None:
    cfg = tiny_config()
    branch = AudioConvNeXt(cfg, 0)
    seen = {}
    branch.decoder.in_proj.register_forward_pre_hook(lambda m, a: seen.setdefault("spec", a[0]))
    audio = torch.randn(1, 2 * 960)
    cond = branch.prepare(torch.randn(1, cfg.cond_enc_channels, 2), audio.shape[-1])
    out = branch(audio, cond, torch.zeros(1))
    spec = torch.stft(audio, 480, 240, window=torch.hann_window(480), return_complex=True)
    torch.testing.assert_close(seen["spec"], torch.cat([spec.real, spec.imag], dim=1))
    assert out.shape == audio.shape


def test_condition_repeat_upsampling_with_zero_padded_frame() -> None:
    cond = torch.arange(6.0).view(1, 2, 3)
    up = upsample_condition(cond, 2, 7)
    assert up[0, 0].tolist() == [0, 0, 1, 1, 2, 2, 0]
    assert up[0, 1].tolist() == [3, 3, 4, 4, 5, 5, 0]
    assert upsample_condition(cond, 2, 5)[0, 0].tolist() == [0, 0, 1, 1, 2]


def test_branch_condition_reaches_cond_mlp_upsampled() -> None:
    cfg = tiny_config()
    branch = AudioConvNeXt(cfg, 1)  # hop 120 -> factor 8
    seen = {}
    branch.decoder.cond_mlp.register_forward_pre_hook(lambda m, a: seen.setdefault("c", a[0]))
    cond = torch.randn(1, cfg.cond_enc_channels, 3)
    branch.prepare(cond, 3 * 960)
    c = seen["c"]
    assert c.shape[-1] == 1 + 3 * 960 // 120 == 3 * 8 + 1
    torch.testing.assert_close(c[..., 8:16], cond[..., 1:2].expand(-1, -1, 8))
    assert torch.all(c[..., -1] == 0)


@pytest.mark.parametrize("frames", [1, 3])
def test_generator_shapes_and_mean_fusion(frames: int) -> None:
    cfg = tiny_config()
    gen = randomize(VocoderGenerator(cfg)).eval()
    z = torch.randn(2, cfg.latent_dim, frames)
    x = torch.randn(2, frames * 960)
    t = torch.tensor([0.0, 0.5])
    cond = gen.prepare_condition(z, x.shape[-1])
    branches = gen.branch_outputs(x, t, cond)
    assert branches.shape == (2, cfg.num_branches, frames * 960)
    torch.testing.assert_close(gen(x, t, latents=z), branches.mean(dim=1))
    cached = gen.prepare_condition(z, x.shape[-1], project_blocks=True)
    torch.testing.assert_close(gen(x, t, condition=cached), branches.mean(dim=1))


def test_branch_dropout_in_training_only() -> None:
    cfg = tiny_config(branch_dropout=0.999)
    gen = VocoderGenerator(cfg).train()
    branches = torch.randn(16, 2, 10)
    fused = gen.fuse(branches)
    # two branches: dropping one and rescaling by 2 leaves exactly the other branch
    for b in range(16):
        assert torch.allclose(fused[b], branches[b, 0]) or torch.allclose(fused[b], branches[b, 1])
    torch.testing.assert_close(gen.eval().fuse(branches), branches.mean(dim=1))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="does not divide"):
        VocoderConfig(n_ffts=(512, 256, 128), hop_lengths=(256, 128, 64))
    with pytest.raises(ValueError, match="entries"):
        VocoderConfig(channels=(768, 512))
    assert VocoderConfig.paper().frame_rate == 25.0
    assert all(960 % h == 0 for p in (VocoderConfig.paper, VocoderConfig.small, VocoderConfig.tiny)
               for h in p().hop_lengths)
    assert math.isclose(VocoderConfig.tiny().frame_rate, 25.0)
