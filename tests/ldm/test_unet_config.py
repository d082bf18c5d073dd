"""UNetConfig presets, diffusers-dict round trips, parameter counts and the UNet release format."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from sara.errors import CheckpointError, ConfigError
from sara.ldm.config import UNetConfig
from sara.ldm.unet import build_unet, count_unet_parameters, load_unet_release, save_unet_release

# declare-lab/tango configs/diffusion_model_config.json, as the repository ships it (the XL file is the same
# with cross_attention_dim 2048)
TANGO_UNET_JSON = """{
  "_class_name": "UNet2DConditionModel",
  "_diffusers_version": "0.10.0.dev0",
  "act_fn": "silu",
  "attention_head_dim": [5, 10, 20, 20],
  "block_out_channels": [320, 640, 1280, 1280],
  "center_input_sample": false,
  "cross_attention_dim": 1024,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1,
  "dual_cross_attention": false,
  "flip_sin_to_cos": true,
  "freq_shift": 0,
  "in_channels": 8,
  "layers_per_block": 2,
  "mid_block_scale_factor": 1,
  "norm_eps": 1e-05,
  "norm_num_groups": 32,
  "num_class_embeds": null,
  "only_cross_attention": false,
  "out_channels": 8,
  "sample_size": [32, 2],
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
  "use_linear_projection": true,
  "upcast_attention": true
}"""


def _official() -> dict:
    return json.loads(TANGO_UNET_JSON)


def test_tango_preset_equals_the_official_json() -> None:
    official = {k: v for k, v in _official().items() if not k.startswith("_")}
    assert UNetConfig.tango().to_diffusers_kwargs() == official
    assert UNetConfig.from_diffusers_dict(_official()) == UNetConfig.tango()
    xl = {**_official(), "cross_attention_dim": 2048}
    assert UNetConfig.from_diffusers_dict(xl) == UNetConfig.tango_xl()


def test_unknown_keys_and_other_classes_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"unknown keys \['addition_embed_type', 'foo'\]"):
        UNetConfig.from_diffusers_dict({**_official(), "foo": 1, "addition_embed_type": None})
    with pytest.raises(ConfigError, match="UNet2DModel"):
        UNetConfig.from_diffusers_dict({**_official(), "_class_name": "UNet2DModel"})
    with pytest.raises(ConfigError, match="heads"):
        UNetConfig.from_diffusers_dict({**_official(), "attention_head_dim": [3, 10, 20, 20]})
    with pytest.raises(ConfigError, match="4 entries"):
        UNetConfig.from_diffusers_dict({**_official(), "up_block_types": ["UpBlock2D"]})


def test_parameter_counts_of_the_presets() -> None:
    assert count_unet_parameters(UNetConfig.tango()) == 865_933_768  # Tango's "866M" (TANGO.pdf 3.1)
    assert count_unet_parameters(UNetConfig.tango_xl()) > count_unet_parameters(UNetConfig.tango())
    small = count_unet_parameters(UNetConfig.small())
    assert small == 6_315_848  # the CPU demo size
    tiny = UNetConfig.tiny()
    assert count_unet_parameters(tiny) == sum(p.numel() for p in build_unet(tiny).parameters())


def test_heads_follow_diffusers_legacy_reading() -> None:
    with torch.device("meta"):
        unet = build_unet(UNetConfig.tango())
    heads = [blk.attentions[0].transformer_blocks[0].attn2.heads for blk in unet.down_blocks[:3]]
    assert heads == [5, 10, 20]  # attention_head_dim is the number of heads: 64-d heads everywhere
    assert unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2.to_k.in_features == 1024


def test_tiny_unet_forward_shapes_and_mask() -> None:
    cfg = UNetConfig.tiny()
    unet = build_unet(cfg).eval()
    x = torch.randn(2, 8, 16, 4)
    states, mask = torch.randn(2, 5, cfg.cross_attention_dim), torch.ones(2, 5, dtype=torch.bool)
    with torch.no_grad():
        out = unet(x, torch.tensor([10, 500]), states, encoder_attention_mask=mask).sample
        mask[:, 3:] = False
        changed = states.clone()
        changed[:, 3:] = 100.0  # masked positions must not matter
        a = unet(x, 7, states, encoder_attention_mask=mask).sample
        b = unet(x, 7, changed, encoder_attention_mask=mask).sample
    assert out.shape == x.shape
    torch.testing.assert_close(a, b)


def test_unet_release_round_trip(tmp_path: Path) -> None:
    cfg = dataclasses.replace(UNetConfig.tiny(), in_channels=4, out_channels=4)
    unet = build_unet(cfg).eval()
    save_unet_release(unet, tmp_path / "unet")
    payload = json.loads((tmp_path / "unet/config.json").read_text())
    assert payload["class"] == "LDMUNet" and payload["config"]["in_channels"] == 4
    back = load_unet_release(tmp_path / "unet")
    assert UNetConfig.from_unet(back) == cfg
    x, s = torch.randn(1, 4, 8, 4), torch.randn(1, 3, 32)
    with torch.no_grad():
        torch.testing.assert_close(back(x, 3, s).sample, unet(x, 3, s).sample, rtol=0, atol=0)


def test_unet_release_errors_name_the_problem(tmp_path: Path) -> None:
    unet = build_unet(UNetConfig.tiny())
    save_unet_release(unet, tmp_path / "u")
    payload = json.loads((tmp_path / "u/config.json").read_text())
    payload["config"]["cross_attention_dim"] = 48
    (tmp_path / "u/config.json").write_text(json.dumps(payload))
    with pytest.raises(CheckpointError, match="size mismatch|attn2.to_k"):
        load_unet_release(tmp_path / "u")
    with pytest.raises(CheckpointError, match="config.json"):
        load_unet_release(tmp_path / "missing")


@pytest.mark.parametrize("preset", ["tango", "small", "tiny"])
def test_cross_attention_positions_a_wrapper_hooks(preset: str) -> None:
    """DC-LDM (issue 14) hooks the first down block's and the last up block's transformers: every preset has them."""
    from diffusers.models.transformers.transformer_2d import Transformer2DModel

    cfg = getattr(UNetConfig, preset)()
    with torch.device("meta"):
        unet = build_unet(cfg)
    assert len(unet.down_blocks[0].attentions) == cfg.layers_per_block
    assert len(unet.up_blocks[-1].attentions) == cfg.layers_per_block + 1
    for block in (*unet.down_blocks[0].attentions, *unet.up_blocks[-1].attentions):
        assert isinstance(block, Transformer2DModel)


def test_load_any_unet_rejects_other_directories(tmp_path: Path) -> None:
    from sara.ldm.unet import load_any_unet

    (tmp_path / "config.json").write_text(json.dumps({"format_version": 1, "class": "HiFiGAN", "config": {}}))
    with pytest.raises(CheckpointError, match="not a UNet release"):
        load_any_unet(tmp_path)
