"""LatentDiT: shapes, official formulas (timestep embedding, AdaLN-SOLA, (1 - gate), RoPE), masks, skips, io."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from sara.dit import DiTConfig, LatentDiT
from sara.dit.blocks import RotaryEmbedding, TimestepEmbedder

torch.set_num_threads(1)


def tiny(**kw) -> DiTConfig:
    return dataclasses.replace(DiTConfig.tiny(), latent_dim=8, text_dim=12, **kw)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values (zero-init AdaLN would hide most of the computation)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model.eval()


def inputs(cfg: DiTConfig, batch: int = 2, frames: int = 12, tokens: int = 5, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cfg.latent_dim, frames, generator=g)
    ctx = torch.randn(batch, tokens, cfg.context_dim, generator=g)
    mask = torch.ones(batch, tokens, dtype=torch.bool)
    mask[-1, tokens - 2:] = False
    return x, ctx, mask


@pytest.mark.parametrize("fusion", ["ada", "ada_single", "ada_sola", "ada_sola_bias"])
@pytest.mark.parametrize("patch", [1, 2])
def test_shapes_all_variants(fusion: str, patch: int) -> None:
    cfg = tiny(time_fusion=fusion, patch_size=patch, pe="abs", context_pe="sinu", act="gelu")
    model = randomize(LatentDiT(cfg))
    x, ctx, mask = inputs(cfg)
    v = model(x, torch.tensor([10.0, 900.0]), ctx, mask)
    assert v.shape == x.shape and torch.isfinite(v).all()


def test_timestep_embedding_is_cos_first_on_raw_timesteps() -> None:
    t = torch.tensor([0.0, 1.0, 500.0, 1000.0])
    emb = TimestepEmbedder.sinusoid(t, 256)
    k = 7
    freq = math.exp(-math.log(10000.0) * k / 128)
    assert torch.allclose(emb[:, k], torch.cos(t * freq), atol=1e-5)
    assert torch.allclose(emb[:, 128 + k], torch.sin(t * freq), atol=1e-5)
    assert torch.equal(emb[0, :128], torch.ones(128))


def test_zero_dim_timestep_is_expanded_and_truncated() -> None:
    cfg = tiny()
    model = randomize(LatentDiT(cfg))
    x, ctx, mask = inputs(cfg)
    a = model(x, torch.tensor(999.88), ctx, mask)
    b = model(x, torch.tensor([999.0, 999.0]), ctx, mask)
    c = model(x, torch.tensor([999.88, 999.88]), ctx, mask)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_ada_sola_bias_modulation_formula() -> None:
    cfg = tiny(time_fusion="ada_sola_bias", ada_rank=3, ada_alpha=6.0)
    model = randomize(LatentDiT(cfg))
    block = model.in_blocks[0]
    tt = torch.randn(2, cfg.dim)
    shared = model.time_ada(tt)
    got = block.adaln(tt, shared)
    lora = tt @ block.adaln.lora_a.weight.T @ block.adaln.lora_b.weight.T * (6.0 / 3)
    want = shared.view(2, 6, -1) + lora.view(2, 6, -1) + block.adaln.scale_shift_table[None]
    assert block.adaln.lora_a.weight.shape == (6 * 3, cfg.dim)
    assert torch.allclose(got, want, atol=1e-5)


def test_one_minus_gate_residual() -> None:
    """gate == 1 removes the self-attention and MLP branches: block(x) = x + cross_attn(norm2(x))."""
    cfg = tiny(time_fusion="ada_single")
    model = randomize(LatentDiT(cfg))
    block = model.in_blocks[0]
    with torch.no_grad():
        block.adaln.scale_shift_table.zero_()
        block.adaln.scale_shift_table[2] = 1.0  # gate_msa
        block.adaln.scale_shift_table[5] = 1.0  # gate_mlp
    x = torch.randn(2, 6, cfg.dim)
    ctx = torch.randn(2, 4, cfg.dim)
    kv = block.context_kv(ctx)
    out = block(x, torch.randn(2, cfg.dim), torch.zeros(2, 6 * cfg.dim), kv, None)
    want = x + block.cross_attn(block.norm2(x), kv=kv)
    assert torch.allclose(out, want, atol=1e-6)
    # and with gate 0 the attention branch is added in full
    with torch.no_grad():
        block.adaln.scale_shift_table.zero_()
    out0 = block(x, torch.randn(2, cfg.dim), torch.zeros(2, 6 * cfg.dim), kv, None)
    h = x + block.attn(block.norm1(x))
    h = h + block.cross_attn(block.norm2(h), kv=kv)
    assert torch.allclose(out0, h + block.mlp(block.norm3(h)), atol=1e-5)


def test_rope_matches_neox_formula() -> None:
    hd, n = 8, 5
    rope = RotaryEmbedding(hd)
    x = torch.randn(1, 1, n, hd)
    got = rope(x)[0, 0]
    for pos in range(n):
        for i in range(hd // 2):
            ang = pos * 10000 ** (-2 * i / hd)
            a, b = x[0, 0, pos, i], x[0, 0, pos, i + hd // 2]
            assert torch.allclose(got[pos, i], a * math.cos(ang) - b * math.sin(ang), atol=1e-5)
            assert torch.allclose(got[pos, i + hd // 2], b * math.cos(ang) + a * math.sin(ang), atol=1e-5)
    assert "inv_freq" in rope.state_dict()


def test_attention_matches_sdpa_reference() -> None:
    cfg = tiny(qk_norm=None, rope="none")
    attn = randomize(LatentDiT(cfg)).in_blocks[0].attn
    x = torch.randn(2, 6, cfg.dim)
    heads = lambda t: t.view(2, 6, cfg.num_heads, -1).transpose(1, 2)  # noqa: E731
    q, k, v = heads(attn.to_q(x)), heads(attn.to_k(x)), heads(attn.to_v(x))
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(cfg.head_dim), dim=-1)
    want = attn.proj((w @ v).transpose(1, 2).reshape(2, 6, -1))
    assert torch.allclose(attn(x), want, atol=1e-5)


def test_context_key_mask_ignores_padding() -> None:
    cfg = tiny()
    model = randomize(LatentDiT(cfg))
    x, ctx, _ = inputs(cfg, batch=1, tokens=4)
    padded = torch.cat([ctx, 100 * torch.randn(1, 3, cfg.context_dim)], dim=1)
    mask = torch.tensor([[True] * 4 + [False] * 3])
    a = model(x, torch.tensor([300.0]), ctx, torch.ones(1, 4, dtype=torch.bool))
    b = model(x, torch.tensor([300.0]), padded, mask)
    c = model(x, torch.tensor([300.0]), padded, torch.ones(1, 7, dtype=torch.bool))
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-3)


def test_long_skips_are_lifo() -> None:
    cfg = tiny(depth=4)
    model = randomize(LatentDiT(cfg))
    seen: dict[str, torch.Tensor] = {}
    for i, blk in enumerate(model.in_blocks):
        blk.register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(f"in{i}", out))
    for i, blk in enumerate(model.out_blocks):
        blk.register_forward_hook(lambda m, a, kw, out, i=i: seen.__setitem__(f"skip{i}", kw["skip"]),
                                  with_kwargs=True)
    x, ctx, mask = inputs(cfg)
    model(x, torch.tensor([1.0, 2.0]), ctx, mask)
    assert torch.equal(seen["skip0"], seen["in1"]) and torch.equal(seen["skip1"], seen["in0"])


def test_cached_text_equals_uncached() -> None:
    cfg = tiny()
    model = randomize(LatentDiT(cfg))
    x, ctx, mask = inputs(cfg)
    text = model.prepare_context(ctx, mask)
    for t in (1000.0, 500.0, 3.0):
        tt = torch.full((2,), t)
        assert torch.equal(model(x, tt, text=text), model(x, tt, ctx, mask))


def test_init_is_zero_modulated_and_save_load_round_trip(tmp_path) -> None:
    cfg = tiny()
    model = LatentDiT(cfg)
    assert model.time_ada.weight.abs().sum() == 0 and model.in_blocks[0].adaln.lora_b.weight.abs().sum() == 0
    randomize(model)
    model.save_pretrained(tmp_path / "dit")
    loaded = LatentDiT.from_pretrained(tmp_path / "dit")
    assert loaded.config == cfg
    x, ctx, mask = inputs(cfg)
    t = torch.tensor([10.0, 20.0])
    assert torch.equal(model(x, t, ctx, mask), loaded(x, t, ctx, mask))


def test_text_projection_and_presets() -> None:
    cfg = tiny()
    model = randomize(LatentDiT(cfg))
    states = torch.randn(2, 3, 12)
    assert torch.allclose(model.project_text(states), F.linear(states, model.text_proj.weight, model.text_proj.bias))
    assert DiTConfig.paper().dim == 1024 and DiTConfig.paper().depth == 24
    assert DiTConfig.small().text_dim == 384
    with pytest.raises(ValueError):
        DiTConfig(dim=30, num_heads=4)


def test_abs_pe_length_is_enforced() -> None:
    cfg = tiny(pe="abs", max_length=16, patch_size=2)
    model = LatentDiT(cfg)
    assert model.x_pe.abs_pe.shape == (1, 8, cfg.dim)
    x, ctx, mask = inputs(cfg, frames=18)
    with pytest.raises(ValueError, match="positional table"):
        model(x, torch.tensor([1.0, 1.0]), ctx, mask)


def test_context_longer_than_its_table_is_a_clear_error() -> None:
    from sara.errors import SaraError

    cfg = tiny(context_pe="abs", context_max_length=4)
    model = LatentDiT(cfg)
    x, ctx, mask = inputs(cfg, tokens=5)
    with pytest.raises(SaraError, match="prompt too long"):
        model(x, torch.tensor([1.0, 1.0]), ctx, mask)


def test_pooled_text_formula_mask_cache_and_round_trip(tmp_path) -> None:
    """The pooled path adds MLP(masked mean of the context) to the timestep embedding before the SiLU."""
    cfg = tiny(pooled_text=True)
    model = randomize(LatentDiT(cfg))
    x, ctx, mask = inputs(cfg)
    t = torch.tensor([900.0, 40.0])
    pooled_in = torch.stack([ctx[0].mean(0), ctx[1, :3].mean(0)])  # item 1 has 2 padded tokens
    want_token = F.silu(model.time_embed(t) + model.pooled_text_embed(pooled_in))
    seen = {}
    model.mid_block.adaln.register_forward_hook(lambda m, a, out: seen.update(token=a[0]))
    out = model(x, t, ctx, mask)
    torch.testing.assert_close(seen["token"], want_token)
    # padded tokens do not move the pooled vector; the cache carries it
    padded = ctx.clone()
    padded[1, 3:] = 100.0
    torch.testing.assert_close(model(x, t, padded, mask), out)
    assert torch.equal(model(x, t, text=model.prepare_context(ctx, mask)), out)
    model.save_pretrained(tmp_path / "dit")
    loaded = LatentDiT.from_pretrained(tmp_path / "dit")
    assert loaded.config.pooled_text and torch.equal(loaded(x, t, ctx, mask), out)


def test_pooled_text_starts_at_zero_and_upgrade_keeps_the_function() -> None:
    from sara.dit.training import with_pooled_text

    assert LatentDiT(tiny(pooled_text=True)).pooled_text_embed[2].weight.abs().sum() == 0
    base = randomize(LatentDiT(tiny()))
    assert not hasattr(base, "pooled_text_embed") or base.pooled_text_embed is None
    up = with_pooled_text(base).eval()
    x, ctx, mask = inputs(base.config)
    t = torch.tensor([700.0, 100.0])
    assert up.config.pooled_text and torch.equal(up(x, t, ctx, mask), base(x, t, ctx, mask))
    with torch.no_grad():
        up.pooled_text_embed[2].weight.normal_()
    assert not torch.allclose(up(x, t, ctx, mask), base(x, t, ctx, mask), atol=1e-4)
    assert "pooled_text_embed.0.weight" not in base.state_dict()  # official key set unchanged by default


@pytest.mark.parametrize("patch", [1, 2])
def test_drop_unseen_removes_only_what_the_patch_embedding_cannot_see(patch: int) -> None:
    cfg = dataclasses.replace(DiTConfig.tiny(), latent_dim=48, dim=32, patch_size=patch)
    dit = LatentDiT(cfg).eval()
    x = torch.randn(2, 48, 8)
    y = dit.drop_unseen(x)
    assert torch.allclose(dit.patch_embed(y), dit.patch_embed(x), atol=1e-5)  # the network sees the same input
    removed = x - y
    assert float(removed.pow(2).sum()) > 0.1 * float(x.pow(2).sum())  # 48 * p - 32 of 48 * p dims per patch
    assert torch.allclose(dit.drop_unseen(y), y, atol=1e-5)  # a projection
    assert float((removed * y).sum()) == pytest.approx(0.0, abs=1e-3)  # orthogonal split
    wide = LatentDiT(dataclasses.replace(cfg, latent_dim=16)).eval()
    z = torch.randn(2, 16, 8)
    assert wide.drop_unseen(z) is z  # full-rank patch embedding: untouched


def test_sampling_moves_by_exactly_the_removed_noise() -> None:
    """Sampling never changes the unseen directions, so dropping them from the noise shifts the sample by them."""
    from sara.flow.sampling import euler_sample
    from sara.flow.timesteps import make_schedule

    torch.manual_seed(0)
    cfg = dataclasses.replace(DiTConfig.tiny(), latent_dim=48, dim=32, text_dim=None)
    dit = LatentDiT(cfg).eval()
    for p in dit.parameters():  # non-trivial (the init zeroes AdaLN and attention outputs)
        p.data.add_(0.05 * torch.randn_like(p))
    ctx = dit.prepare_context(torch.randn(2, 5, cfg.context_dim))
    noise = torch.randn(2, 48, 8)
    with torch.no_grad():
        a = euler_sample(lambda x, t: dit(x, t, text=ctx), noise, make_schedule("linear", 4))
        b = euler_sample(lambda x, t: dit(x, t, text=ctx), dit.drop_unseen(noise), make_schedule("linear", 4))
    assert torch.allclose(a - b, noise - dit.drop_unseen(noise), atol=1e-4)
