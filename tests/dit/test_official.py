"""LatentDiT.from_official: official UDiT arguments + official key names load strictly."""

from __future__ import annotations

import pytest
import torch

from sara.dit import LatentDiT
from sara.dit.official import official_to_config
from sara.errors import CheckpointError, ConfigError

# official UDiT constructor arguments (hydra node), tiny sizes
BACKBONE = {
    "_target_": "models.dit.mask_dit.UDiT",
    "img_size": 500, "patch_size": 1, "in_chans": 16, "input_type": "1d", "embed_dim": 32, "depth": 2,
    "num_heads": 2, "mlp_ratio": 4, "qkv_bias": False, "qk_norm": "layernorm", "act_layer": "geglu",
    "norm_layer": "layernorm", "context_norm": True, "time_fusion": "ada_sola_bias", "ada_sola_rank": 4,
    "ada_sola_alpha": 4, "context_dim": 24, "context_fusion": "cross", "context_max_length": 64,
    "context_pe_method": "none", "pe_method": "none", "rope_mode": "shared", "use_conv": True,
    "skip": True, "skip_norm": True,
}

SPEC_KEYS = [
    "patch_embed.proj.weight", "time_embed.mlp.0.weight", "time_embed.mlp.2.bias", "time_ada_final.weight",
    "time_ada.weight", "context_embed.0.weight", "context_embed.2.weight", "in_blocks.0.norm1.weight",
    "in_blocks.0.attn.to_q.weight", "in_blocks.0.attn.norm_q.bias", "in_blocks.0.attn.proj.bias",
    "in_blocks.0.attn.rotary.inv_freq", "in_blocks.0.cross_attn.to_k.weight", "in_blocks.0.norm_context.weight",
    "in_blocks.0.mlp.net.0.proj.weight", "in_blocks.0.mlp.net.2.weight", "in_blocks.0.adaln.scale_shift_table",
    "in_blocks.0.adaln.lora_a.weight", "in_blocks.0.adaln.lora_b.weight", "mid_block.norm3.bias",
    "out_blocks.0.skip_norm.weight", "out_blocks.0.skip_linear.weight", "final_block.norm.weight",
    "final_block.linear.weight", "final_block.final_layer.weight",
]


def official_state(seed: int = 0) -> dict[str, torch.Tensor]:
    model = LatentDiT(official_to_config(BACKBONE))
    g = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(v.shape, generator=g) * 0.1 for k, v in model.state_dict().items()}
    state = {f"model.backbone.{k}": v for k, v in state.items()}
    state["model.content_encoder.text_encoder.proj.weight"] = torch.randn(24, 40, generator=g) * 0.1
    state["model.content_encoder.text_encoder.proj.bias"] = torch.zeros(24)
    state["model.dummy_param"] = torch.zeros(0)
    return state


def test_official_key_names_and_shapes() -> None:
    keys = LatentDiT(official_to_config(BACKBONE)).state_dict()
    for k in SPEC_KEYS:
        assert k in keys, k
    assert keys["in_blocks.0.adaln.lora_a.weight"].shape == (24, 32)
    assert keys["in_blocks.0.adaln.lora_b.weight"].shape == (192, 24)
    assert keys["in_blocks.0.attn.rotary.inv_freq"].shape == (8,)
    assert not any("cross_attn.rotary" in k for k in keys)


def test_from_official_prefixed_and_unprefixed() -> None:
    state = official_state()
    model = LatentDiT.from_official(BACKBONE, state)
    assert model.config.text_dim == 40 and model.config.latent_dim == 16 and model.config.ada_alpha == 4.0
    assert torch.equal(model.text_proj.weight, state["model.content_encoder.text_encoder.proj.weight"])
    backbone_only = {k[len("model.backbone."):]: v for k, v in state.items() if k.startswith("model.backbone.")}
    bare = LatentDiT.from_official(BACKBONE, backbone_only)
    assert bare.text_proj is None
    x, ctx = torch.randn(1, 16, 10), torch.randn(1, 3, 24)
    mask = torch.ones(1, 3, dtype=torch.bool)
    assert torch.equal(model(x, torch.tensor(500.0), ctx, mask), bare(x, torch.tensor(500.0), ctx, mask))


def test_official_defaults_and_unsupported_variants() -> None:
    cfg = official_to_config({**BACKBONE, "pe_method": "abs", "img_size": 250})
    assert cfg.max_length == 250 and cfg.pe == "abs"
    assert official_to_config(BACKBONE).max_seconds >= 30.0  # no absolute table: 30 s bound
    for bad in ({"time_fusion": "token"}, {"context_fusion": "concat"}, {"rope_mode": "dual"},
                {"act_layer": "snake"}, {"input_type": "2d"}, {"not_an_arg": 1}):
        with pytest.raises(ConfigError):
            official_to_config({**BACKBONE, **bad})


def test_wrong_weights_fail_with_one_line() -> None:
    state = official_state()
    del state["model.backbone.mid_block.norm1.weight"]
    with pytest.raises(CheckpointError, match="mid_block.norm1.weight"):
        LatentDiT.from_official(BACKBONE, state)
