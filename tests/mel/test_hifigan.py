"""HiFi-GAN: config, frame arithmetic, input checks, and strict loading of every official layout with parity
against a plain-torch forward of the AudioLDM reference structure."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sara.errors import AudioError, CheckpointError, ConfigError
from sara.mel.hifigan import HiFiGAN, HiFiGANConfig
from sara.mel.hifigan_official import (
    config_from_audioldm,
    fold_weight_norm,
    load_audioldm_checkpoint,
    load_diffusers_vocoder,
    load_tango_vocoder,
    save_diffusers_vocoder,
)
from sara.serialization import config_from_dict, save_release
from tests.mel import official_hifigan_layout as layout

TINY = HiFiGANConfig.tiny()


@pytest.fixture(scope="module", autouse=True)
def _import_transformers() -> None:
    """Pay transformers' import (seconds on a loaded machine) once, outside the timed tests."""
    import transformers.models.speecht5.modeling_speecht5  # noqa: F401


def _mel(frames: int = 9, n_mels: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(2, frames, n_mels, generator=torch.Generator().manual_seed(seed)) * 2.0 - 4.0


def reference_forward(state: dict[str, torch.Tensor], h: dict, mel: torch.Tensor) -> torch.Tensor:
    """AudioLDM ``Generator.forward`` (audioldm/hifigan/models.py) in plain torch ops on an AudioLDM-named state.

    ``mel [B, T, num_mels]`` -> ``[B, T * hop]``: conv_pre; per stage leaky_relu(0.1), transposed conv, mean of
    the stage's residual blocks; leaky_relu (default slope 0.01); conv_post; tanh; trimmed like the pipelines.
    """
    x = F.conv1d(mel.transpose(1, 2), state["conv_pre.weight"], state["conv_pre.bias"], padding=3)
    kernels, hop = h["resblock_kernel_sizes"], 1
    for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"])):
        x = F.leaky_relu(x, 0.1)
        x = F.conv_transpose1d(x, state[f"ups.{i}.weight"], state[f"ups.{i}.bias"], stride=u, padding=(k - u) // 2)
        blocks = [_resblock(state, f"resblocks.{i * len(kernels) + j}", x, kr, dil)
                  for j, (kr, dil) in enumerate(zip(kernels, h["resblock_dilation_sizes"]))]
        x = sum(blocks[1:], blocks[0]) / len(blocks)
        hop *= u
    x = torch.tanh(F.conv1d(F.leaky_relu(x), state["conv_post.weight"], state["conv_post.bias"], padding=3))
    return x[:, 0, : mel.shape[1] * hop]


def _resblock(state: dict[str, torch.Tensor], name: str, x: torch.Tensor, k: int, dilations: list[int]) -> torch.Tensor:
    """AudioLDM ``ResBlock``: ``x + conv2(lrelu(conv1(lrelu(x))))`` for each dilation, "same" padding."""
    for m, d in enumerate(dilations):
        xt = F.conv1d(F.leaky_relu(x, 0.1), state[f"{name}.convs1.{m}.weight"], state[f"{name}.convs1.{m}.bias"],
                      dilation=d, padding=(k * d - d) // 2)
        xt = F.conv1d(F.leaky_relu(xt, 0.1), state[f"{name}.convs2.{m}.weight"], state[f"{name}.convs2.{m}.bias"],
                      padding=(k - 1) // 2)
        x = x + xt
    return x


# ------------------------------------------------------------------------------------------ config
def test_presets_and_hop() -> None:
    assert HiFiGANConfig.paper().hop_length == 160 and HiFiGANConfig.paper().n_mels == 64
    assert HiFiGANConfig.small().hop_length == TINY.hop_length == 160
    assert config_from_audioldm(layout.HIFIGAN_16K_64, "x.json") == HiFiGANConfig.paper()
    assert config_from_audioldm(layout.TINY_H, "x.json") == TINY


@pytest.mark.parametrize("bad", [
    {"upsample_rates": (5, 4), "upsample_kernel_sizes": (16,)},
    {"upsample_kernel_sizes": (4, 16, 8, 4, 4)},  # kernel smaller than its rate
    {"upsample_initial_channel": 100},  # not divisible by 2 ** 5
    {"resblock_kernel_sizes": (3, 6, 11)},  # even kernel
    {"resblock_dilation_sizes": ((1, 3, 5),)},  # one dilation tuple for three kernels
    {"n_mels": 0},
])
def test_config_validation(bad: dict) -> None:
    with pytest.raises(ValueError):
        HiFiGANConfig(**bad)
    with pytest.raises(ConfigError):
        config_from_dict(HiFiGANConfig, {k: list(v) if isinstance(v, tuple) else v for k, v in bad.items()})


def test_audioldm_config_rejects_resblock_2() -> None:
    with pytest.raises(CheckpointError, match="resblock type '2'"):
        config_from_audioldm({**layout.HIFIGAN_16K_64, "resblock": "2"}, "h.json")


def test_paper_size_matches_the_reference_layout() -> None:
    """The fixed Tango size: every AudioLDM key and shape of HIFIGAN_16K_64 exists in the model (55.26 M)."""
    with torch.device("meta"):  # shapes only
        model = HiFiGAN(HiFiGANConfig.paper(), init_weights=False)
    ours = {k.replace("upsampler.", "ups."): tuple(v.shape) for k, v in model.generator.state_dict().items()
            if k not in ("mean", "scale")}
    assert ours == layout.generator_shapes(layout.HIFIGAN_16K_64)
    assert sum(p.numel() for p in model.parameters()) == layout.num_parameters(layout.HIFIGAN_16K_64) == 55_264_897


# -------------------------------------------------------------------------------------- forward
@pytest.mark.parametrize("frames", [1, 7, 50])
def test_output_length_is_frames_times_hop(frames: int) -> None:
    torch.manual_seed(0)
    model = HiFiGAN(HiFiGANConfig.small()).eval()  # the paper's rates and kernels
    mel = torch.randn(2, frames, 64)
    with torch.no_grad():
        raw = model.generator(mel)
        wav = model(mel)
    assert raw.shape == (2, frames * 160 + 32)  # SpeechT5HifiGan's own length for these kernels
    assert wav.shape == (2, frames * 160) and torch.equal(wav, raw[:, : frames * 160])
    assert wav.dtype == torch.float32 and wav.abs().max() <= 1.0


def test_input_errors_are_one_line() -> None:
    model = HiFiGAN(TINY)
    for bad, pattern in ((torch.zeros(1, 5, 64), r"\[batch, frames >= 1, 16\], got \[1, 5, 64\]"),
                         (torch.zeros(5, 16), r"got \[5, 16\]"), (torch.zeros(1, 0, 16), "frames >= 1"),
                         (torch.full((1, 5, 16), float("nan")), "NaN")):
        with pytest.raises(AudioError, match=pattern) as info:
            model(bad)
        assert "\n" not in str(info.value)


def test_initialisation() -> None:
    torch.manual_seed(0)
    model = HiFiGAN(HiFiGANConfig.small())
    conv = model.generator.resblocks[4].convs1[1]  # 64 channels, kernel 7: default bound 1 / sqrt(64 * 7)
    bound = 1 / math.sqrt(conv.in_channels * conv.kernel_size[0])
    assert conv.weight.abs().max() <= bound and conv.weight.std() > 0.5 * bound / math.sqrt(3)
    model.reset_parameters(std=0.01)  # HiFi-GAN's intended init_weights
    assert 0.009 < conv.weight.std().item() < 0.011
    assert 0.009 < model.generator.upsampler[0].weight.std().item() < 0.011


# -------------------------------------------------------------------------------------- loading
@pytest.mark.parametrize("name", ["TINY_H", "SMALL_H"])
def test_tango_dir_parity_with_reference_forward(tmp_path: Path, name: str) -> None:
    """SMALL_H has the paper's kernels (odd 16 - 5 padding), three residual blocks per stage and 64 mels."""
    h = getattr(layout, name)
    state = layout.write_tango_dir(tmp_path / "tango", h, seed=1, std=0.1 if name == "TINY_H" else 0.07)
    model = load_tango_vocoder(tmp_path / "tango", config_from_audioldm(h, name))
    mel = _mel(n_mels=h["num_mels"])
    with torch.no_grad():
        ours, ref = model(mel), reference_forward(state, h, mel)
    assert ours.shape == (2, 9 * 160)
    assert ref.std() > 5e-3 and (ref.abs() < 0.999).float().mean() > 0.5  # varies, not saturated: a real check
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert float(model.generator.mean.abs().sum()) == 0 and torch.equal(model.generator.scale, torch.ones(h["num_mels"]))


def test_tango_file_and_missing_or_extra_keys(tmp_path: Path) -> None:
    layout.write_tango_dir(tmp_path / "t", layout.TINY_H)
    file = tmp_path / "t" / "pytorch_model_vae.bin"
    state = torch.load(file, weights_only=True)
    load_tango_vocoder(file, TINY)  # the file itself
    del state["vocoder.resblocks.3.convs2.1.weight"]
    state["vocoder.extra.weight"] = torch.zeros(1)
    torch.save(state, file)
    with pytest.raises(CheckpointError) as info:
        load_tango_vocoder(file, TINY)
    msg = str(info.value)
    assert "\n" not in msg and str(file) in msg
    assert "missing keys [vocoder.resblocks.3.convs2.1.weight] (1)" in msg
    assert "unexpected keys [vocoder.extra.weight] (1)" in msg


def test_tango_wrong_size_and_no_vocoder(tmp_path: Path) -> None:
    layout.write_tango_dir(tmp_path / "t", layout.TINY_H)
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_tango_vocoder(tmp_path / "t", dataclasses.replace(TINY, n_mels=8))
    torch.save(layout.vae_keys_sample(), tmp_path / "t" / "pytorch_model_vae.bin")
    with pytest.raises(CheckpointError, match=r"no 'vocoder\.\*' keys"):
        load_tango_vocoder(tmp_path / "t", TINY)


@pytest.mark.parametrize("compiled", [False, True])
def test_audioldm_training_ckpt_with_weight_norm(tmp_path: Path, compiled: bool) -> None:
    path, state = layout.write_audioldm_training_ckpt(tmp_path, layout.TINY_H, seed=2, compiled=compiled)
    assert any(k.endswith("weight_g") for k in state)
    model = HiFiGAN.from_pretrained(path)  # size from the sibling hifigan_16k_64bins.json
    assert model.config == TINY
    mel = _mel(seed=3)
    with torch.no_grad():
        torch.testing.assert_close(model(mel), reference_forward(layout.fold(state), layout.TINY_H, mel),
                                   rtol=1e-5, atol=1e-5)


def test_audioldm_full_checkpoint_prefix(tmp_path: Path) -> None:
    """A Lightning checkpoint: ``state_dict`` with ``first_stage_model.vocoder.*`` next to training extras whose
    classes torch's weights-only reader refuses (read as inert data, no code run)."""
    state = layout.generator_state(layout.TINY_H, seed=4)
    torch.save({"state_dict": {"first_stage_model.vocoder." + k: v for k, v in state.items()},
                "hyper_parameters": argparse.Namespace(lr=1e-4), "global_step": 10}, tmp_path / "a.ckpt")
    model = load_audioldm_checkpoint(tmp_path / "a.ckpt", TINY)
    mel = _mel()
    with torch.no_grad():
        torch.testing.assert_close(model(mel), reference_forward(state, layout.TINY_H, mel), rtol=1e-5, atol=1e-5)


def test_fold_weight_norm_matches_torch() -> None:
    for module in (torch.nn.Conv1d(4, 6, 3), torch.nn.ConvTranspose1d(6, 4, 8, 4)):
        wn = torch.nn.utils.parametrizations.weight_norm(module)
        folded = fold_weight_norm(dict(wn.state_dict()))
        assert set(folded) == {"weight", "bias"}
        torch.testing.assert_close(folded["weight"], wn.weight.detach())


@pytest.mark.parametrize("safe", [True, False])
def test_diffusers_vocoder_folder_and_pipeline_root(tmp_path: Path, safe: bool) -> None:
    ref = layout.write_diffusers_vocoder(tmp_path / "pipe" / "vocoder", layout.TINY_H, seed=5, safe_serialization=safe)
    (tmp_path / "pipe" / "model_index.json").write_text(json.dumps({"_class_name": "AudioLDMPipeline"}))
    mel = _mel()
    for path in (tmp_path / "pipe", tmp_path / "pipe" / "vocoder"):
        model = HiFiGAN.from_pretrained(path)
        assert model.config == TINY
        with torch.no_grad():
            torch.testing.assert_close(model(mel), ref(mel)[:, : 9 * 160], rtol=0, atol=0)


def test_diffusers_missing_key_is_named(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    layout.write_diffusers_vocoder(tmp_path / "v", layout.TINY_H)
    state = load_file(str(tmp_path / "v" / "model.safetensors"))
    del state["upsampler.1.bias"]
    save_file(state, str(tmp_path / "v" / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: .*missing keys \[upsampler\.1\.bias\]"):
        load_diffusers_vocoder(tmp_path / "v")


def test_release_and_diffusers_export_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = HiFiGAN(TINY).eval()
    mel = _mel()
    model.save_pretrained(tmp_path / "rel")
    save_diffusers_vocoder(model, tmp_path / "diff")
    with torch.no_grad():
        expected = model(mel)
        for path in (tmp_path / "rel", tmp_path / "diff"):
            assert torch.equal(HiFiGAN.from_pretrained(path)(mel), expected)
    payload = json.loads((tmp_path / "rel" / "config.json").read_text())
    assert payload["class"] == "HiFiGAN" and payload["config"]["n_mels"] == 16


def test_vocoder_subfolder_holding_a_sara_release(tmp_path: Path) -> None:
    """A release that bundles its vocoder as ``vocoder/`` (e.g. a latent-diffusion release) is read through it."""
    torch.manual_seed(1)
    model = HiFiGAN(TINY).eval()
    model.save_pretrained(tmp_path / "ldm" / "vocoder")
    save_release(tmp_path / "ldm", "LatentDiffusion", {}, {"x": torch.zeros(1)})
    mel = _mel()
    with torch.no_grad():
        assert torch.equal(HiFiGAN.from_pretrained(tmp_path / "ldm")(mel), model(mel))
    with pytest.raises(CheckpointError, match="not a diffusers vocoder folder"):
        load_diffusers_vocoder(tmp_path / "ldm")
    with pytest.raises(CheckpointError, match="holds a 'LatentDiffusion', not a 'HiFiGAN'"):
        HiFiGAN.from_pretrained(save_release(tmp_path / "other", "LatentDiffusion", {}, {"x": torch.zeros(1)}))


def test_unknown_layouts(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a HiFi-GAN directory"):
        HiFiGAN.from_pretrained(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="no such vocoder"):
        HiFiGAN.from_pretrained(tmp_path / "missing")
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="model_type 'bert'"):
        HiFiGAN.from_pretrained(tmp_path / "v")
