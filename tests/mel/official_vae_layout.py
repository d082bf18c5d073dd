"""Test fixtures in the *official* Tango / AudioLDM mel-VAE layout, stated independently of sara's converter.

The key names and shapes below are written from the structure of haoheliu/AudioLDM
``audioldm/variational_autoencoder/modules.py`` (``Encoder`` / ``Decoder`` / ``ResnetBlock`` / ``AttnBlock``,
``temb_channels = 0`` so no ``temb_proj``) and ``autoencoder.py`` (``quant_conv`` 2z -> 2 embed_dim,
``post_quant_conv`` embed_dim -> z), walking the modules in the order the reference builds them.  They do not
use :mod:`sara.mel.vae_official`.  ``vae_config.json`` / ``stft_config.json`` follow the declare-lab/tango hub
snapshot (DCLDM.md section 6.1).

Usable by other tests (e.g. a whole Tango directory): :func:`write_tango_vae_dir` writes ``vae_config.json``,
``stft_config.json`` and ``pytorch_model_vae.bin`` (optionally with the HiFi-GAN's ``vocoder.*`` keys merged in).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

Shapes = dict[str, tuple[int, ...]]

PAPER_DDCONFIG: dict[str, Any] = {
    "double_z": True, "z_channels": 8, "resolution": 256, "downsample_time": False, "in_channels": 1, "out_ch": 1,
    "ch": 128, "ch_mult": [1, 2, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0,
}
# Smallest layout the reference code can build: its GroupNorm has 32 groups, so widths are multiples of 32.
# ch_mult (1, 1, 2) keeps the paper's x4 down-sampling and has channel changes (nin_shortcut) in both halves.
TINY_DDCONFIG: dict[str, Any] = {**PAPER_DDCONFIG, "ch": 32, "ch_mult": [1, 1, 2], "num_res_blocks": 1}


def tango_vae_config(ddconfig: dict[str, Any], scale_factor: float = 0.9227914214134216) -> dict[str, Any]:
    """The ``vae_config.json`` payload of a Tango snapshot for ``ddconfig``."""
    return {"image_key": "fbank", "subband": 1, "embed_dim": ddconfig["z_channels"], "time_shuffle": 1,
            "ddconfig": dict(ddconfig), "scale_factor": scale_factor}


def stft_config(n_mels: int = 64) -> dict[str, Any]:
    """Tango's ``stft_config.json`` (TacotronSTFT keyword arguments)."""
    return {"filter_length": 1024, "hop_length": 160, "win_length": 1024, "n_mel_channels": n_mels,
            "sampling_rate": 16000, "mel_fmin": 0, "mel_fmax": 8000}


class _Layout:
    """Collects ``name -> shape`` while walking the reference modules."""

    def __init__(self) -> None:
        self.shapes: Shapes = {}

    def conv(self, name: str, c_out: int, c_in: int, k: int) -> None:
        self.shapes[f"{name}.weight"] = (c_out, c_in, k, k)
        self.shapes[f"{name}.bias"] = (c_out,)

    def norm(self, name: str, c: int) -> None:
        self.shapes[f"{name}.weight"] = (c,)
        self.shapes[f"{name}.bias"] = (c,)

    def resnet(self, name: str, c_in: int, c_out: int) -> None:
        """ResnetBlock: norm1, conv1, norm2, conv2 and a 1x1 nin_shortcut when the width changes."""
        self.norm(f"{name}.norm1", c_in)
        self.conv(f"{name}.conv1", c_out, c_in, 3)
        self.norm(f"{name}.norm2", c_out)
        self.conv(f"{name}.conv2", c_out, c_out, 3)
        if c_in != c_out:
            self.conv(f"{name}.nin_shortcut", c_out, c_in, 1)

    def mid(self, side: str, c: int) -> None:
        """block_1, attn_1 (AttnBlock: norm and four 1x1 convs q, k, v, proj_out), block_2."""
        self.resnet(f"{side}.mid.block_1", c, c)
        self.norm(f"{side}.mid.attn_1.norm", c)
        for proj in ("q", "k", "v", "proj_out"):
            self.conv(f"{side}.mid.attn_1.{proj}", c, c, 1)
        self.resnet(f"{side}.mid.block_2", c, c)


def _encoder(lay: _Layout, dd: dict[str, Any]) -> None:
    ch, mult, nrb = dd["ch"], dd["ch_mult"], dd["num_res_blocks"]
    lay.conv("encoder.conv_in", ch, dd["in_channels"], 3)
    in_mult = [1, *mult]
    block_in = ch
    for level in range(len(mult)):
        block_in, block_out = ch * in_mult[level], ch * mult[level]
        for b in range(nrb):
            lay.resnet(f"encoder.down.{level}.block.{b}", block_in, block_out)
            block_in = block_out
        if level != len(mult) - 1:
            lay.conv(f"encoder.down.{level}.downsample.conv", block_in, block_in, 3)
    lay.mid("encoder", block_in)
    lay.norm("encoder.norm_out", block_in)
    lay.conv("encoder.conv_out", 2 * dd["z_channels"] if dd["double_z"] else dd["z_channels"], block_in, 3)


def _decoder(lay: _Layout, dd: dict[str, Any]) -> None:
    ch, mult, nrb = dd["ch"], dd["ch_mult"], dd["num_res_blocks"]
    block_in = ch * mult[-1]
    lay.conv("decoder.conv_in", block_in, dd["z_channels"], 3)
    lay.mid("decoder", block_in)
    for level in reversed(range(len(mult))):
        block_out = ch * mult[level]
        for b in range(nrb + 1):
            lay.resnet(f"decoder.up.{level}.block.{b}", block_in, block_out)
            block_in = block_out
        if level != 0:
            lay.conv(f"decoder.up.{level}.upsample.conv", block_in, block_in, 3)
    lay.norm("decoder.norm_out", block_in)
    lay.conv("decoder.conv_out", dd["out_ch"], block_in, 3)


def audioldm_vae_shapes(ddconfig: dict[str, Any], embed_dim: int | None = None) -> Shapes:
    """Every parameter name and shape of audioldm's ``AutoencoderKL(ddconfig, embed_dim)`` (no vocoder)."""
    embed = ddconfig["z_channels"] if embed_dim is None else embed_dim
    lay = _Layout()
    _encoder(lay, ddconfig)
    _decoder(lay, ddconfig)
    lay.conv("quant_conv", 2 * embed, 2 * ddconfig["z_channels"], 1)
    lay.conv("post_quant_conv", ddconfig["z_channels"], embed, 1)
    return lay.shapes


def random_state(shapes: Shapes, seed: int = 0, dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """Well-scaled random weights: convs ~ N(0, 1/fan_in), norm weights ~ 1 + N(0, 0.1), biases ~ N(0, 0.1)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes.items():
        noise = torch.randn(shape, generator=gen, dtype=dtype)
        if len(shape) == 4:
            out[name] = noise / (shape[1] * shape[2] * shape[3]) ** 0.5
        elif ".norm" in name and name.endswith("weight"):
            out[name] = 1.0 + 0.1 * noise
        else:
            out[name] = 0.1 * noise
    return out


def fake_vocoder_state(seed: int = 1) -> dict[str, Tensor]:
    """A few ``vocoder.*`` tensors standing in for Tango's HiFi-GAN inside ``pytorch_model_vae.bin``."""
    gen = torch.Generator().manual_seed(seed)
    return {"vocoder.conv_pre.weight": torch.randn(16, 64, 7, generator=gen),
            "vocoder.conv_pre.bias": torch.randn(16, generator=gen),
            "vocoder.ups.0.weight": torch.randn(16, 8, 10, generator=gen)}


def write_tango_vae_dir(
    directory: Path, ddconfig: dict[str, Any] | None = None, *, n_mels: int = 16, seed: int = 0,
    scale_factor: float = 0.9227914214134216, vocoder_state: dict[str, Tensor] | None = None,
    extra_state: dict[str, Tensor] | None = None, drop_keys: tuple[str, ...] = (),
) -> dict[str, Tensor]:
    """Write the VAE part of a Tango snapshot and return the audioldm-named VAE weights that were saved.

    Args:
        directory: created if needed.
        ddconfig: the ``ddconfig`` (default :data:`TINY_DDCONFIG`).
        n_mels: ``n_mel_channels`` of ``stft_config.json``.
        vocoder_state: ``vocoder.*`` tensors stored in the same file (default :func:`fake_vocoder_state`).
        extra_state / drop_keys: corrupt the layout on purpose (tests of the strict loader).
    """
    dd = dict(TINY_DDCONFIG if ddconfig is None else ddconfig)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vae_config.json").write_text(json.dumps(tango_vae_config(dd, scale_factor), indent=1))
    (directory / "stft_config.json").write_text(json.dumps(stft_config(n_mels), indent=1))
    vae = random_state(audioldm_vae_shapes(dd), seed)
    file_state = {**vae, **(fake_vocoder_state() if vocoder_state is None else vocoder_state), **(extra_state or {})}
    for key in drop_keys:
        file_state.pop(key)
    torch.save(file_state, directory / "pytorch_model_vae.bin")
    return vae


def write_audioldm_checkpoint(path: Path, ddconfig: dict[str, Any] | None = None, *, seed: int = 0,
                              scale_factor: float = 0.9227914214134216) -> dict[str, Tensor]:
    """Write an AudioLDM-style Lightning checkpoint and return the audioldm-named VAE weights in it.

    Layout as Tango's ``models.py`` ``build_pretrained_models`` reads ``audioldm-s-full``: ``{"state_dict":
    {...}, "epoch", "global_step"}``; the state holds the ``scale_factor`` buffer, the VAE (with its HiFi-GAN)
    under ``first_stage_model.``, and stand-ins for the UNet (``model.diffusion_model.*``), the CLAP condition
    (``cond_stage_model.*``) and the diffusion schedule buffers.
    """
    dd = dict(TINY_DDCONFIG if ddconfig is None else ddconfig)
    vae = random_state(audioldm_vae_shapes(dd), seed)
    state: dict[str, Tensor] = {f"first_stage_model.{k}": v for k, v in {**vae, **fake_vocoder_state()}.items()}
    state.update({"scale_factor": torch.tensor(scale_factor), "betas": torch.linspace(1e-4, 2e-2, 10),
                  "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 8, 3, 3),
                  "cond_stage_model.model.logit_scale_a": torch.zeros(())})
    torch.save({"state_dict": state, "epoch": 3, "global_step": 1000}, path)
    return vae
