"""Token LM: audiocraft key names and shapes, attention/position semantics against independent formulas,
causality, cross-attention without a padding mask, KV-cache equivalence, teacher-forced predictions."""

from __future__ import annotations

import math

import pytest
import torch

from sara.audiogen.config import LMConfig
from sara.audiogen.lm import TokenLM
from sara.audiogen.patterns import build_delay_sequence
from sara.audiogen.transformer import MultiheadAttention, sin_embedding
from sara.errors import ConfigError
from sara.serialization import config_from_dict


def _lm(**kw) -> TokenLM:  # noqa: ANN003
    torch.manual_seed(0)
    return TokenLM(LMConfig(**{**vars(LMConfig.tiny()), **kw})).eval()


def expected_keys(c: LMConfig) -> dict[str, tuple[int, ...]]:
    """The LM best_state of DCLDM.md 6.2 (no biases), written out by hand."""
    d, f = c.dim, c.ffn_dim
    keys = {"condition_provider.conditioners.description.output_proj.weight": (d, c.text_dim),
            "condition_provider.conditioners.description.output_proj.bias": (d,),
            "out_norm.weight": (d,), "out_norm.bias": (d,)}
    for k in range(c.n_q):
        keys[f"emb.{k}.weight"] = (c.card + 1, d)
        keys[f"linears.{k}.weight"] = (c.card, d)
    for i in range(c.num_layers):
        p = f"transformer.layers.{i}."
        keys.update({p + "self_attn.in_proj_weight": (3 * d, d), p + "self_attn.out_proj.weight": (d, d),
                     p + "cross_attention.in_proj_weight": (3 * d, d), p + "cross_attention.out_proj.weight": (d, d),
                     p + "linear1.weight": (f, d), p + "linear2.weight": (d, f)})
        for n in ("norm1", "norm_cross", "norm2"):
            keys[p + n + ".weight"], keys[p + n + ".bias"] = (d,), (d,)
    return keys


def test_state_dict_has_audiocraft_names_and_shapes() -> None:
    lm = _lm()
    assert {k: tuple(v.shape) for k, v in lm.state_dict().items()} == expected_keys(lm.config)


def test_medium_parameter_count() -> None:
    cfg = LMConfig.audiogen_medium()
    with torch.device("meta"):
        lm = TokenLM(cfg)
    count = sum(p.numel() for p in lm.parameters())
    assert count == sum(math.prod(s) for s in expected_keys(cfg).values())
    # 48 layers x 16 D^2 (self, cross, 4x FF) + 4 x (2049 + 2048) x D tables/heads + norms + output_proj 1024 -> D:
    # 1.84 B (audiocraft's "~1.5B" comment counts a GPT-2-like stack without the cross-attention)
    assert count == 48 * 16 * 1536**2 + 4 * 4097 * 1536 + 2 * 1536 + 48 * 6 * 1536 + 1536 * 1024 + 1536


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="num_heads"):
        config_from_dict(LMConfig, {"dim": 30, "num_heads": 4})
    with pytest.raises(ConfigError, match="delays"):
        config_from_dict(LMConfig, {"n_q": 2, "delays": [1, 0]})


def test_sin_embedding_formula() -> None:
    dim, pos = 8, torch.tensor([0, 3, 7])
    emb = sin_embedding(pos, dim, 10_000.0)
    for r, p in enumerate(pos.tolist()):
        for i in range(dim // 2):
            phase = p / 10_000 ** (i / (dim // 2 - 1))
            assert emb[r, i].item() == pytest.approx(math.cos(phase), abs=1e-6)
            assert emb[r, dim // 2 + i].item() == pytest.approx(math.sin(phase), abs=1e-6)


def naive_attention(x: torch.Tensor, memory: torch.Tensor | None, attn: MultiheadAttention, causal: bool) -> torch.Tensor:
    """softmax(q k^T / sqrt(dh)) v per head with an explicit triangular mask."""
    d, h = x.shape[-1], attn.num_heads
    w = attn.in_proj_weight
    src = x if memory is None else memory
    q, k, v = x @ w[:d].T, src @ w[d:2 * d].T, src @ w[2 * d:].T
    split = lambda t: t.view(t.shape[0], t.shape[1], h, d // h).transpose(1, 2)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // h)
    if causal:
        scores = scores.masked_fill(torch.ones(x.shape[1], src.shape[1]).triu(1).bool(), float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(x.shape)
    return attn.out_proj(out)


def test_attention_matches_naive_formula() -> None:
    torch.manual_seed(0)
    attn = MultiheadAttention(16, 4)
    x, mem = torch.randn(2, 5, 16), torch.randn(2, 3, 16)
    torch.testing.assert_close(attn.causal(x), naive_attention(x, None, attn, True), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attn.cross(x, attn.memory_kv(mem)), naive_attention(x, mem, attn, False),
                               atol=1e-5, rtol=1e-5)


def test_cross_attention_has_no_padding_mask() -> None:
    """Zero (padded / null) memory positions take part in the softmax: appending one changes the output."""
    torch.manual_seed(0)
    attn = MultiheadAttention(16, 4)
    x, mem = torch.randn(1, 2, 16), torch.randn(1, 3, 16)
    padded = torch.cat([mem, torch.zeros(1, 2, 16)], dim=1)
    assert not torch.allclose(attn.cross(x, attn.memory_kv(mem)), attn.cross(x, attn.memory_kv(padded)), atol=1e-4)


def test_lm_is_causal_and_conditioned() -> None:
    lm = _lm()
    seq = torch.randint(0, 17, (1, 4, 9))
    states, mask = torch.randn(1, 3, 16), torch.ones(1, 3)
    base = lm(seq, states, mask)
    changed = seq.clone()
    changed[..., 6:] = (changed[..., 6:] + 1) % 17
    torch.testing.assert_close(lm(changed, states, mask)[:, :, :6], base[:, :, :6])
    assert not torch.allclose(lm(seq, states + 1.0, mask), base)
    # a masked (null) text row equals all-zero projected memory, whatever the states
    torch.testing.assert_close(lm(seq, states, torch.zeros(1, 3)), lm(seq, torch.randn(1, 3, 16), torch.zeros(1, 3)))


def test_kv_cache_equals_full_forward() -> None:
    lm = _lm()
    seq = torch.randint(0, 17, (2, 4, 10))
    memory_kv = lm.transformer.memory_kv(lm.condition(torch.randn(2, 3, 16), torch.ones(2, 3)))
    full = lm.step(seq, memory_kv)
    cache = lm.transformer.new_cache(2, 10, seq.device, torch.float32)
    parts = [lm.step(seq[..., :4], memory_kv, cache)] + [lm.step(seq[..., s:s + 1], memory_kv, cache) for s in range(4, 10)]
    torch.testing.assert_close(torch.cat(parts, dim=2), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 10
    with pytest.raises(ValueError, match="cache"):
        lm.step(seq[..., :1], memory_kv, cache)


def test_compute_predictions_aligns_and_masks() -> None:
    lm = _lm()
    codes = torch.randint(0, 16, (2, 4, 6))
    states, mask = torch.randn(2, 3, 16), torch.ones(2, 3)
    logits, valid = lm.compute_predictions(codes, states, mask)
    assert logits.shape == (2, 4, 6, 16) and valid.shape == (2, 4, 6)
    raw = lm(build_delay_sequence(codes, lm.config.delays, 16, 7)[0], states, mask)
    for k, d in enumerate(lm.config.delays):
        assert valid[0, k].tolist() == [t + d < 6 for t in range(6)]
        torch.testing.assert_close(logits[:, k, : 6 - d], raw[:, k, d:6])
        assert torch.isnan(logits[:, k, 6 - d:]).all()


def test_layer_matches_torch_pre_norm_encoder_layer() -> None:
    """With the cross-attention output zeroed, a layer is PyTorch's TransformerEncoderLayer(norm_first=True, gelu,
    no biases) under a causal mask, the class audiocraft's StreamingTransformerLayer derives from."""
    from torch import nn

    from sara.audiogen.transformer import TransformerLayer

    torch.manual_seed(0)
    ours = TransformerLayer(16, 4, 64).eval()
    ref = nn.TransformerEncoderLayer(16, 4, 64, dropout=0.0, activation="gelu", batch_first=True, norm_first=True,
                                     bias=False).eval()
    with torch.no_grad():
        ours.cross_attention.out_proj.weight.zero_()
        ref.self_attn.in_proj_weight.copy_(ours.self_attn.in_proj_weight)
        ref.self_attn.out_proj.weight.copy_(ours.self_attn.out_proj.weight)
        ref.linear1.weight.copy_(ours.linear1.weight)
        ref.linear2.weight.copy_(ours.linear2.weight)
        for name in ("norm1", "norm2"):
            getattr(ref, name).weight.copy_(getattr(ours, name).weight)
            getattr(ours, name).bias.zero_()  # the reference's norms have no bias with bias=False
    x = torch.randn(2, 6, 16)
    memory = ours.cross_attention.memory_kv(torch.randn(2, 3, 16))
    causal = nn.Transformer.generate_square_subsequent_mask(6)
    torch.testing.assert_close(ours(x, memory), ref(x, src_mask=causal, is_causal=True), atol=1e-5, rtol=1e-5)


def test_lm_release_round_trip(tmp_path) -> None:  # noqa: ANN001
    lm = _lm()
    lm.save_pretrained(tmp_path / "lm")
    back = TokenLM.from_release(tmp_path / "lm")
    assert back.config == lm.config
    for key, value in lm.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
