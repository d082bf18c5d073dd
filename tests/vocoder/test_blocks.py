"""Formula tests for the building blocks: BiasNorm, time embedding, ConvNeXt block, ChannelScale."""

import math

import pytest
import torch

from sara.vocoder.blocks import (
    BiasNorm,
    ChannelScale,
    ConvNeXtBlock,
    limit_param_value,
    sinusoidal_time_embedding,
)


def test_biasnorm_formula_without_epsilon() -> None:
    norm = BiasNorm(4)
    with torch.no_grad():
        norm.bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
        norm.log_scale.fill_(0.5)
    x = torch.randn(2, 4, 5)
    rms = ((x - norm.bias.view(1, 4, 1)) ** 2).mean(dim=1, keepdim=True).sqrt()
    expected = x / rms * math.exp(0.5)  # bias only inside the RMS, not subtracted
    torch.testing.assert_close(norm(x), expected)
    # no epsilon: an input equal to the bias everywhere gives inf/nan, exactly like the original
    same = norm.bias.detach().view(1, 4, 1).expand(1, 4, 3).clone()
    assert not torch.isfinite(norm(same)).any()


def test_biasnorm_init() -> None:
    norm = BiasNorm(512)
    assert float(norm.log_scale.detach()) == 1.0
    assert 0.005 < float(norm.bias.detach().std()) < 0.02


def test_time_embedding_sin_first_times_1000_divisor_half_minus_1() -> None:
    t = torch.tensor([0.0, 0.25, 0.7])
    emb = sinusoidal_time_embedding(t, 8)
    half = 4
    for b, tv in enumerate(t.tolist()):
        for k in range(half):
            arg = 1000.0 * tv * math.exp(-k * math.log(10000.0) / (half - 1))
            assert emb[b, k].item() == pytest.approx(math.sin(arg), abs=1e-4)
            assert emb[b, half + k].item() == pytest.approx(math.cos(arg), abs=1e-4)
    assert emb.shape == (3, 8)


def test_convnext_block_formula() -> None:
    torch.manual_seed(1)
    blk = ConvNeXtBlock(6, 18, 7, cond_channels=5, time_embed_channels=4).eval()
    with torch.no_grad():
        blk.residual_scale.scale.uniform_(0.5, 1.0)
    x, cond, temb = torch.randn(2, 6, 9), torch.randn(2, 5, 9), torch.randn(2, 4)
    h = blk.norm(blk.dwconv(x)) + blk.cond_proj(cond)
    h = h * (1 + blk.time_embed_proj(temb).unsqueeze(-1))
    expected = blk.pwconv2(blk.act(blk.pwconv1(h))) + x * blk.residual_scale.scale
    torch.testing.assert_close(blk(x, blk.project_cond(cond), temb), expected)
    assert float(blk.act.weight[0].detach()) == 0.25
    assert blk.residual_scale.scale.shape == (6, 1)


def test_limit_param_value_reverses_outward_gradients() -> None:
    p = torch.tensor([0.4, 0.7, 1.2], requires_grad=True)
    limit_param_value(p, 0.5, 1.0, prob=1.0).sum().backward()  # grad +1 everywhere: pushes values down
    assert p.grad.tolist() == [-1.0, 1.0, 1.0]
    p.grad = None
    (-limit_param_value(p, 0.5, 1.0, prob=1.0)).sum().backward()  # grad -1: pushes values up
    assert p.grad.tolist() == [-1.0, -1.0, 1.0]


def test_channel_scale_is_identity_at_init() -> None:
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(ChannelScale(3)(x), x)
