"""Loading the mel VAE from official layouts: Tango's pytorch_model_vae.bin and diffusers vae/ folders.

The Tango fixtures come from tests/mel/official_vae_layout.py (written from the reference module structure);
the diffusers fixtures are written by diffusers itself.  Outputs are compared with a functional AudioLDM
forward written here (1x1-conv attention with bmm, asymmetric-pad downsampling, nearest upsampling).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL  # at collection: its import takes seconds, no test's cost
from torch import Tensor

from sara.errors import CheckpointError
from sara.mel.vae import MelVAE, MelVAEConfig, load_tango_vae_state
from sara.mel.vae_official import (
    audioldm_key_map,
    convert_audioldm_state,
    infer_vae_config,
    to_audioldm_state,
)
from tests.mel.official_vae_layout import (
    PAPER_DDCONFIG,
    audioldm_vae_shapes,
    fake_vocoder_state,
    write_audioldm_checkpoint,
    write_tango_vae_dir,
)

# ------------------------------------------------------------------ functional AudioLDM reference


def _gn(x: Tensor, sd: dict[str, Tensor], name: str) -> Tensor:
    return F.group_norm(x, 32, sd[f"{name}.weight"], sd[f"{name}.bias"], eps=1e-6)


def _conv(x: Tensor, sd: dict[str, Tensor], name: str, stride: int = 1, padding: int = 1) -> Tensor:
    return F.conv2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], stride=stride, padding=padding)


def _resnet(x: Tensor, sd: dict[str, Tensor], name: str) -> Tensor:
    h = _conv(F.silu(_gn(x, sd, f"{name}.norm1")), sd, f"{name}.conv1")
    h = _conv(F.silu(_gn(h, sd, f"{name}.norm2")), sd, f"{name}.conv2")
    if f"{name}.nin_shortcut.weight" in sd:
        x = _conv(x, sd, f"{name}.nin_shortcut", padding=0)
    return x + h


def _attn(x: Tensor, sd: dict[str, Tensor], name: str) -> Tensor:
    h = _gn(x, sd, f"{name}.norm")
    q, k, v = (_conv(h, sd, f"{name}.{p}", padding=0) for p in "qkv")
    b, c, hh, ww = q.shape
    w = torch.bmm(q.reshape(b, c, -1).permute(0, 2, 1), k.reshape(b, c, -1)) * c**-0.5
    out = torch.bmm(v.reshape(b, c, -1), w.softmax(dim=2).permute(0, 2, 1)).reshape(b, c, hh, ww)
    return x + _conv(out, sd, f"{name}.proj_out", padding=0)


def _mid(h: Tensor, sd: dict[str, Tensor], side: str) -> Tensor:
    h = _resnet(h, sd, f"{side}.mid.block_1")
    return _resnet(_attn(h, sd, f"{side}.mid.attn_1"), sd, f"{side}.mid.block_2")


def _reference_moments(x: Tensor, sd: dict[str, Tensor], levels: int, blocks: int) -> Tensor:
    h = _conv(x, sd, "encoder.conv_in")
    for lvl in range(levels):
        for b in range(blocks):
            h = _resnet(h, sd, f"encoder.down.{lvl}.block.{b}")
        if lvl < levels - 1:
            h = _conv(F.pad(h, (0, 1, 0, 1)), sd, f"encoder.down.{lvl}.downsample.conv", stride=2, padding=0)
    h = _mid(h, sd, "encoder")
    h = _conv(F.silu(_gn(h, sd, "encoder.norm_out")), sd, "encoder.conv_out")
    return _conv(h, sd, "quant_conv", padding=0)


def _reference_decode(z: Tensor, sd: dict[str, Tensor], levels: int, blocks: int) -> Tensor:
    h = _mid(_conv(_conv(z, sd, "post_quant_conv", padding=0), sd, "decoder.conv_in"), sd, "decoder")
    for lvl in reversed(range(levels)):
        for b in range(blocks + 1):
            h = _resnet(h, sd, f"decoder.up.{lvl}.block.{b}")
        if lvl > 0:
            h = _conv(F.interpolate(h, scale_factor=2.0, mode="nearest"), sd, f"decoder.up.{lvl}.upsample.conv")
    return _conv(F.silu(_gn(h, sd, "decoder.norm_out")), sd, "decoder.conv_out")


# ------------------------------------------------------------------ Tango directory


def test_paper_layout_names_and_shapes_fit_the_diffusers_model() -> None:
    official = audioldm_vae_shapes(PAPER_DDCONFIG)
    names = audioldm_key_map(MelVAEConfig.paper())
    assert set(names) == set(official)
    assert len(official) == 204 and official["encoder.down.1.block.0.nin_shortcut.weight"] == (256, 128, 1, 1)
    assert official["decoder.up.2.block.0.conv1.weight"] == (512, 512, 3, 3)  # up.{l} indexed by level
    with torch.device("meta"):
        target = MelVAE(MelVAEConfig.paper()).autoencoder.state_dict()
        converted = convert_audioldm_state({k: torch.empty(s) for k, s in official.items()}, MelVAEConfig.paper(), "x")
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(v.shape) for k, v in target.items()}


def test_tango_dir_loads_strictly_and_matches_the_reference_forward(tmp_path: Path) -> None:
    sd = write_tango_vae_dir(tmp_path, n_mels=16, scale_factor=0.8)
    vae = MelVAE.from_pretrained(tmp_path).double()
    assert vae.config.block_out_channels == (32, 32, 64) and vae.config.n_mels == 16
    assert vae.scale_factor == 0.8 and vae.config.layers_per_block == 1
    sd = {k: v.double() for k, v in sd.items()}
    mel = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    moments = _reference_moments(mel, sd, levels=3, blocks=1)
    with torch.no_grad():
        posterior = vae.encode(mel)
        assert torch.allclose(posterior.mean, moments[:, :8], atol=1e-10)
        assert torch.allclose(posterior.logvar, moments[:, 8:].clamp(-30, 20), atol=1e-10)
        z = posterior.mean
        assert torch.allclose(vae.decode(0.8 * z), _reference_decode(z, sd, levels=3, blocks=1), atol=1e-10)


def test_raw_state_keeps_the_vocoder_keys(tmp_path: Path) -> None:
    write_tango_vae_dir(tmp_path)
    state = load_tango_vae_state(tmp_path)
    assert set(fake_vocoder_state()) <= set(state)
    assert "encoder.conv_in.weight" in state


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"drop_keys": ("decoder.up.1.block.0.nin_shortcut.weight",)}, "missing keys [decoder.up.1.block.0.nin_shortcut"),
     ({"extra_state": {"encoder.down.0.attn.0.q.weight": torch.zeros(1)}}, "unexpected keys [encoder.down.0.attn.0.q"),
     ({"extra_state": {"model_ema.decay": torch.zeros(())}}, "model_ema.decay")],
)
def test_layout_errors_are_one_line_and_name_the_key(tmp_path: Path, kwargs: dict, named: str) -> None:
    write_tango_vae_dir(tmp_path, **kwargs)
    with pytest.raises(CheckpointError) as info:
        MelVAE.from_pretrained(tmp_path)
    assert named in str(info.value) and "\n" not in str(info.value)


def test_wrong_shape_is_reported(tmp_path: Path) -> None:
    sd = write_tango_vae_dir(tmp_path)
    sd["encoder.conv_in.weight"] = torch.zeros(32, 2, 3, 3)
    torch.save(sd, tmp_path / "pytorch_model_vae.bin")
    with pytest.raises(CheckpointError, match="conv_in.weight"):
        MelVAE.from_pretrained(tmp_path)


def _edit_config(path: Path, **changes: object) -> None:
    data = json.loads((path / "vae_config.json").read_text())
    for key, value in changes.items():
        if key.startswith("dd_"):
            data["ddconfig"][key[3:]] = value
        elif value is None:
            data.pop(key)
        else:
            data[key] = value
    (path / "vae_config.json").write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("changes", "match"),
    [({"dd_attn_resolutions": [8]}, "ddconfig.attn_resolutions"), ({"subband": 2}, "subband 2"),
     ({"scale_factor": None}, "missing 'scale_factor'"), ({"lossconfig2": {}}, "unknown keys"),
     ({"embed_dim": 4}, "embed_dim 4"), ({"dd_double_z": False}, "double_z")],
)
def test_unsupported_vae_config(tmp_path: Path, changes: dict, match: str) -> None:
    write_tango_vae_dir(tmp_path)
    _edit_config(tmp_path, **changes)
    with pytest.raises(CheckpointError, match=match):
        MelVAE.from_pretrained(tmp_path)


def test_missing_tango_files_are_named(tmp_path: Path) -> None:
    write_tango_vae_dir(tmp_path)
    (tmp_path / "pytorch_model_vae.bin").unlink()
    with pytest.raises(CheckpointError, match="pytorch_model_vae.bin"):
        MelVAE.from_pretrained(tmp_path)
    write_tango_vae_dir(tmp_path)
    (tmp_path / "vae_config.json").unlink()
    with pytest.raises(CheckpointError, match="vae_config.json: no such file"):
        MelVAE.from_pretrained(tmp_path)


def test_audioldm_export_round_trips(tmp_path: Path) -> None:
    sd = write_tango_vae_dir(tmp_path)
    vae = MelVAE.from_pretrained(tmp_path)
    back = to_audioldm_state(vae.autoencoder.state_dict(), vae.config)
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


# ------------------------------------------------------------------ AudioLDM checkpoint


def test_audioldm_checkpoint_loads_with_the_architecture_from_its_shapes(tmp_path: Path) -> None:
    sd = write_audioldm_checkpoint(tmp_path / "audioldm-s-full.ckpt", scale_factor=0.7)
    vae = MelVAE.from_pretrained(tmp_path / "audioldm-s-full.ckpt").double()
    assert vae.config.block_out_channels == (32, 32, 64) and vae.config.layers_per_block == 1
    assert vae.scale_factor == pytest.approx(0.7) and vae.config.n_mels == 64
    sd = {k: v.double() for k, v in sd.items()}
    mel = torch.randn(1, 1, 8, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(vae.encode(mel).mean, _reference_moments(mel, sd, 3, 1)[:, :8], atol=1e-10)


def test_paper_shapes_infer_the_paper_config() -> None:
    shapes = audioldm_vae_shapes(PAPER_DDCONFIG)
    with torch.device("meta"):
        cfg = infer_vae_config({k: torch.empty(s) for k, s in shapes.items()}, 0.9227914214134216, "x.ckpt")
    assert cfg == MelVAEConfig.paper()


def test_a_checkpoint_without_the_audioldm_layout_is_refused(tmp_path: Path) -> None:
    torch.save({"state_dict": {"model.x": torch.zeros(1)}}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="not an AudioLDM checkpoint"):
        MelVAE.from_pretrained(tmp_path / "other.ckpt")
    torch.save({"state_dict": {"scale_factor": torch.tensor(1.0), "first_stage_model.encoder.x": torch.zeros(1)}},
               tmp_path / "broken.ckpt")
    with pytest.raises(CheckpointError, match="no AudioLDM VAE weights"):
        MelVAE.from_pretrained(tmp_path / "broken.ckpt")


# ------------------------------------------------------------------ diffusers folders


def _diffusers_vae(tmp: Path, safe: bool = True, n_mels: int | None = None) -> MelVAE:
    torch.manual_seed(5)
    ae = AutoencoderKL(in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 3,
                       up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(8, 16, 16),
                       layers_per_block=1, latent_channels=8, norm_num_groups=4, scaling_factor=0.6)
    ae.save_pretrained(tmp / "vae", safe_serialization=safe)
    if n_mels is not None:
        (tmp / "vocoder").mkdir()
        (tmp / "vocoder" / "config.json").write_text(json.dumps({"model_in_dim": n_mels}))
    return ae


@pytest.mark.parametrize("safe", [True, False])
def test_diffusers_vae_folder_and_pipeline_root(tmp_path: Path, safe: bool) -> None:
    ae = _diffusers_vae(tmp_path, safe, n_mels=16)
    name = "diffusion_pytorch_model.safetensors" if safe else "diffusion_pytorch_model.bin"
    assert (tmp_path / "vae" / name).is_file()
    for path in (tmp_path, tmp_path / "vae"):
        vae = MelVAE.from_pretrained(path)
        assert vae.scale_factor == 0.6 and vae.config.n_mels == 16 and vae.config.norm_num_groups == 4
        mel = torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected = ae.eval().encode(mel).latent_dist.mean
            assert torch.allclose(vae.encode(mel).mean, expected, atol=1e-6)


def test_diffusers_config_that_is_not_the_audioldm_layout(tmp_path: Path) -> None:
    _diffusers_vae(tmp_path, n_mels=16)
    cfg_path = tmp_path / "vae" / "config.json"
    data = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**data, "in_channels": 3}))
    with pytest.raises(CheckpointError, match="in_channels = 3"):
        MelVAE.from_pretrained(tmp_path)
    cfg_path.write_text(json.dumps({**data, "_class_name": "VQModel"}))
    with pytest.raises(CheckpointError, match="VQModel"):
        MelVAE.from_pretrained(tmp_path / "vae")


def test_deprecated_diffusers_attention_names_are_upgraded(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    ae = _diffusers_vae(tmp_path)
    path = tmp_path / "vae" / "diffusion_pytorch_model.safetensors"
    old = {k.replace(".to_q.", ".query.").replace(".to_out.0.", ".proj_attn."): v for k, v in load_file(str(path)).items()}
    old = {k: v[:, :, None, None] if ".query.weight" in k else v for k, v in old.items()}
    save_file(old, str(path))
    vae = MelVAE.from_pretrained(tmp_path)
    assert torch.equal(vae.autoencoder.encoder.mid_block.attentions[0].to_q.weight,
                       ae.encoder.mid_block.attentions[0].to_q.weight)


def test_converter_rejects_a_foreign_layout() -> None:
    with pytest.raises(CheckpointError, match="missing keys") as info:
        convert_audioldm_state({"encoder.conv_in.weight": torch.zeros(1)}, MelVAEConfig.tiny(), "file.bin")
    assert "\n" not in str(info.value) and str(info.value).startswith("file.bin")

