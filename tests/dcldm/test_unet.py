"""DualConditionUNet: exact identity at init for every placement, gradients, training makes the acoustic input
matter, masks respect padding, key prefixes and release round trip, deepcopy (EMA) safety, parameter counts."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DConditionModel  # noqa: F401 - imported at collection (slow lazy import)
from diffusers.models import Transformer2DModel  # noqa: F401

from sara.dcldm.unet import DualConditionUNet, count_added_parameters, hooked_transformers
from sara.errors import CheckpointError, ConfigError
from sara.ldm.config import UNetConfig
from sara.ldm.unet import build_unet

PLACEMENT_SETS = [("down1",), ("mid",), ("up1",), ("down1", "up1"), ("down1", "mid", "up1")]
D_AC = 12


def _unet(seed: int = 0):  # noqa: ANN202
    torch.manual_seed(seed)
    return build_unet(UNetConfig.tiny())


def _inputs(seed: int = 1, batch: int = 2) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"sample": torch.randn(batch, 8, 8, 4, generator=g), "timestep": torch.tensor([10, 700])[:batch],
            "encoder_hidden_states": torch.randn(batch, 5, 32, generator=g),
            "encoder_attention_mask": torch.tensor([[True] * 5, [True] * 3 + [False] * 2])[:batch]}


def _acoustic(seed: int, batch: int = 2, frames: int = 7, scale: float = 1.0) -> dict:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, frames, dtype=torch.bool)
    mask[-1, frames // 2:] = False
    return {"acoustic_states": scale * torch.randn(batch, frames, D_AC, generator=g), "acoustic_mask": mask}


@pytest.mark.parametrize("placements", PLACEMENT_SETS)
def test_zero_init_is_exactly_the_tango_unet(placements: tuple[str, ...]) -> None:
    reference = _unet()(**_inputs()).sample
    model = DualConditionUNet(_unet(), placements, acoustic_dim=D_AC)
    assert model.num_added_parameters() > 0
    for seed, scale in ((2, 1.0), (3, 1e4)):  # any acoustic input, even huge values
        out = model(**_inputs(), **_acoustic(seed, scale=scale)).sample
        assert torch.equal(out, reference), placements
    keys = [k for k in model.state_dict() if k.startswith("acoustic.")]
    assert {k.split(".")[1] for k in keys} == set(placements)
    count = sum(len(hooked_transformers(model.unet, p)) for p in placements)
    assert {".".join(k.split(".")[:3]) for k in keys} == {f"acoustic.{p}.{i}" for p in placements
                                                         for i in range(len(hooked_transformers(model.unet, p)))}
    assert count == len(model._hooks)


def test_each_module_matches_the_block_it_follows() -> None:
    model = DualConditionUNet(_unet(), ("down1", "mid", "up1"), acoustic_dim=D_AC)
    for p in model.placements:
        for block, extra in zip(hooked_transformers(model.unet, p), model.acoustic[p], strict=True):
            attn1, extra_attn2 = block.transformer_blocks[0].attn1, extra.transformer_blocks[0].attn2
            assert extra.transformer_blocks[0].attn1.heads == attn1.heads
            assert extra_attn2.to_k.in_features == D_AC and extra_attn2.to_k.bias is None
            assert extra.config.use_linear_projection == block.config.use_linear_projection
            assert extra.config.upcast_attention == block.config.upcast_attention
            assert type(extra.transformer_blocks[0].ff.net[0]).__name__ == "GEGLU"
            assert not extra.proj_out.weight.any() and not extra.proj_out.bias.any()


def _step(model: DualConditionUNet, opt: torch.optim.Optimizer, seed: int) -> None:
    out = model(**_inputs(), **_acoustic(seed)).sample
    target = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 100))
    opt.zero_grad()
    torch.nn.functional.mse_loss(out, target).backward()
    opt.step()


def test_gradients_reach_the_new_modules_and_training_makes_acoustics_matter() -> None:
    model = DualConditionUNet(_unet(), ("down1", "up1"), acoustic_dim=D_AC)
    out = model(**_inputs(), **_acoustic(2)).sample
    out.square().mean().backward()
    for p in model.placements:
        for extra in model.acoustic[p]:
            assert extra.proj_out.weight.grad is not None and extra.proj_out.weight.grad.abs().sum() > 0
    opt = torch.optim.Adam(model.acoustic_parameters(), lr=1e-2)
    for seed in range(5):
        _step(model, opt, seed)
    to_k = model.acoustic["down1"][0].transformer_blocks[0].attn2.to_k.weight
    assert to_k.grad is not None and to_k.grad.abs().sum() > 0  # past proj_out, inner weights learn too
    with torch.no_grad():
        a = model(**_inputs(), **_acoustic(10)).sample
        b = model(**_inputs(), **_acoustic(11)).sample
    assert not torch.allclose(a, b, atol=1e-6)


def test_masked_frames_do_not_matter() -> None:
    model = DualConditionUNet(_unet(), ("down1", "up1"), acoustic_dim=D_AC)
    opt = torch.optim.Adam(model.acoustic_parameters(), lr=1e-2)
    for seed in range(3):
        _step(model, opt, seed)
    ac = _acoustic(20)
    changed = {k: v.clone() for k, v in ac.items()}
    changed["acoustic_states"][-1, ~ac["acoustic_mask"][-1]] = 50.0  # only padded frames of the last row
    with torch.no_grad():
        a, b = model(**_inputs(), **ac).sample, model(**_inputs(), **changed).sample
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_state_dict_prefixes_and_release_round_trip(tmp_path: Path) -> None:
    model = DualConditionUNet(_unet(), ("down1", "up1"), acoustic_dim=D_AC)
    with torch.no_grad():
        for p in model.acoustic_parameters():
            p.add_(0.01 * torch.randn_like(p))
    keys = list(model.state_dict())
    assert "acoustic.down1.0.transformer_blocks.0.attn2.to_k.weight" in keys
    assert "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight" in keys
    assert all(k.startswith(("unet.", "acoustic.")) for k in keys)
    model.save_pretrained(tmp_path / "r")
    loaded = DualConditionUNet.from_pretrained(tmp_path / "r")
    assert loaded.placements == ("down1", "up1") and loaded.acoustic_dim == D_AC
    torch.testing.assert_close(loaded.state_dict(), model.state_dict(), rtol=0, atol=0)
    with torch.no_grad():
        assert torch.equal(loaded(**_inputs(), **_acoustic(4)).sample, model.eval()(**_inputs(), **_acoustic(4)).sample)
    from safetensors.torch import load_file, save_file

    state = load_file(str(tmp_path / "r/model.safetensors"))
    state.pop("acoustic.up1.1.proj_out.bias")
    save_file(state, str(tmp_path / "r/model.safetensors"))
    with pytest.raises(CheckpointError, match="acoustic.up1.1.proj_out.bias"):
        DualConditionUNet.from_pretrained(tmp_path / "r")


def test_deepcopy_rebinds_the_hooks() -> None:
    """The training loop's EMA is a deep copy: its hooks must use the copy's modules and context."""
    model = DualConditionUNet(_unet(), ("up1",), acoustic_dim=D_AC)
    clone = copy.deepcopy(model)
    with torch.no_grad():
        clone.acoustic["up1"][0].proj_out.weight.fill_(0.1)
        base = model(**_inputs(), **_acoustic(1)).sample
        moved = clone(**_inputs(), **_acoustic(1)).sample
    assert torch.equal(base, _unet()(**_inputs()).sample) and not torch.allclose(base, moved)


def test_errors() -> None:
    with pytest.raises(ConfigError, match="placements"):
        DualConditionUNet(_unet(), ("down2",))
    with pytest.raises(ConfigError, match="placements"):
        DualConditionUNet(_unet(), ("up1", "up1"))
    unet = _unet()
    model = DualConditionUNet(unet, ("down1",), acoustic_dim=D_AC)
    with pytest.raises(ConfigError, match="already wrapped"):
        DualConditionUNet(unet, ("up1",))
    with pytest.raises(ConfigError, match="acoustic_states"):
        model(**_inputs())
    with pytest.raises(ConfigError, match="acoustic_states must be"):
        model(**_inputs(), acoustic_states=torch.zeros(2, 3, D_AC + 1))
    with pytest.raises(ConfigError, match="called directly"):
        unet(**_inputs())
    assert model.unwrap() is unet and torch.equal(unet(**_inputs()).sample, _unet()(**_inputs()).sample)
    assert DualConditionUNet(unet, ("up1",), acoustic_dim=D_AC).placements == ("up1",)


def _transformer_params(width: int, context: int, layers: int = 1) -> int:
    """Parameters of one diffusers Transformer2DModel (linear projections, one GEGLU block per layer), by hand."""
    c, inner = width, width  # Tango: heads * 64 == width
    block = (2 * c) * 3 + (3 * c * inner + inner * c + c) + (c * inner + 2 * context * inner + inner * c + c) \
        + (c * 8 * c + 8 * c) + (4 * c * c + c)
    return 2 * c + (c * inner + inner) + layers * block + (inner * c + c)


def test_parameter_counts_on_the_tango_unet() -> None:
    tango = UNetConfig.tango()
    per = {w: _transformer_params(w, 128) for w in (320, 1280)}
    expected = {("down1",): 2 * per[320], ("up1",): 3 * per[320], ("mid",): per[1280],
                ("down1", "up1"): 5 * per[320]}
    for placements, added in expected.items():
        base, count = count_added_parameters(tango, placements)
        assert base == 865_933_768 and count == added, placements
    assert count_added_parameters(tango, ("mid",))[1] == 33_122_560  # the paper: +33M at CA-MID
    assert count_added_parameters(tango, ("down1", "up1"))[1] == 10_683_200  # the paper: +11M (877M in all)
