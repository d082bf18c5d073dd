"""Fixture builders for the official HiFi-GAN checkpoint layouts, written from the reference code.

Independent of sara's converter: the key names and shapes below restate the module structure of
haoheliu/AudioLDM ``audioldm/hifigan/models.py`` (``Generator``):

* ``conv_pre = Conv1d(num_mels, C0, 7, 1, padding=3)`` with ``C0 = upsample_initial_channel``;
* ``ups[i] = ConvTranspose1d(C0 // 2**i, C0 // 2**(i+1), k_i, u_i, padding=(k_i - u_i) // 2)``
  (ConvTranspose weights are ``[in, out, k]``);
* ``resblocks[i * len(kernels) + j] = ResBlock(C0 // 2**(i+1), kernels[j], dilations[j])``, each with
  ``convs1[m] = Conv1d(ch, ch, k, dilation=d[m])`` and ``convs2[m] = Conv1d(ch, ch, k, dilation=1)`` for
  ``m = 0, 1, 2`` (the reference writes out exactly three of each);
* ``conv_post = Conv1d(C_last, 1, 7, 1, padding=3)``.

Every module is wrapped in ``torch.nn.utils.weight_norm`` (dim 0), whose parameters are ``weight_g``
(``[weight.shape[0], 1, 1]``) and ``weight_v`` (the weight's shape); ``remove_weight_norm`` turns them back
into ``weight``.  Tango's ``pytorch_model_vae.bin`` stores the vocoder after that removal, as ``vocoder.*``
next to the VAE's own keys (DCLDM.md section 6.1).  AudioLDM-training's ``hifigan_16k_64bins.ckpt`` is
``{"generator": state}`` saved *with* weight norm, next to ``hifigan_16k_64bins.json``.  The diffusers layout
is written by transformers' own ``SpeechT5HifiGan.save_pretrained``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

# AudioLDM's HIFIGAN_16K_64 (audioldm/hifigan/utilities.py), the size Tango's code fixes.
HIFIGAN_16K_64: dict[str, Any] = {
    "resblock": "1", "num_mels": 64, "sampling_rate": 16000, "upsample_rates": [5, 4, 2, 2, 2],
    "upsample_kernel_sizes": [16, 16, 8, 4, 4], "upsample_initial_channel": 1024,
    "resblock_kernel_sizes": [3, 7, 11], "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "segment_size": 8192, "n_fft": 1024, "hop_size": 160, "win_size": 1024, "fmin": 0, "fmax": 8000,
    "learning_rate": 0.0002, "adam_b1": 0.8, "adam_b2": 0.99, "lr_decay": 0.999,
}

# The paper's rates and kernels at HiFi-GAN V2's width (128 channels), in the same JSON vocabulary.
SMALL_H: dict[str, Any] = {**HIFIGAN_16K_64, "upsample_initial_channel": 128}

# A tiny AudioLDM-style config (hop 160 = 5 x 4 x 8).
TINY_H: dict[str, Any] = {
    "resblock": "1", "num_mels": 16, "sampling_rate": 16000, "upsample_rates": [5, 4, 8],
    "upsample_kernel_sizes": [10, 8, 16], "upsample_initial_channel": 16, "resblock_kernel_sizes": [3, 5],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]],
}


def generator_shapes(h: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """``{AudioLDM parameter name: shape}`` of ``Generator(h)`` after ``remove_weight_norm``."""
    c0, kernels = h["upsample_initial_channel"], h["resblock_kernel_sizes"]
    shapes: dict[str, tuple[int, ...]] = {"conv_pre.weight": (c0, h["num_mels"], 7), "conv_pre.bias": (c0,)}
    for i, (_u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"])):
        cin, cout = c0 // 2**i, c0 // 2 ** (i + 1)
        shapes[f"ups.{i}.weight"], shapes[f"ups.{i}.bias"] = (cin, cout, k), (cout,)
        for j, (kr, dil) in enumerate(zip(kernels, h["resblock_dilation_sizes"])):
            assert len(dil) == 3, "audioldm's ResBlock has exactly three dilations"
            for conv in ("convs1", "convs2"):
                for m in range(3):
                    name = f"resblocks.{i * len(kernels) + j}.{conv}.{m}"
                    shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (cout, cout, kr), (cout,)
    last = c0 // 2 ** len(h["upsample_rates"])
    shapes["conv_post.weight"], shapes["conv_post.bias"] = (1, last, 7), (1,)
    return shapes


def generator_state(h: dict[str, Any], *, seed: int = 0, std: float = 0.1,
                    weight_norm: bool = False) -> dict[str, Tensor]:
    """Random weights in the AudioLDM layout (plain, or as ``weight_g`` / ``weight_v`` pairs)."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, Tensor] = {}
    for name, shape in generator_shapes(h).items():
        value = torch.randn(shape, generator=g) * std
        if weight_norm and name.endswith(".weight"):
            base = name[: -len(".weight")]
            state[base + ".weight_g"] = torch.rand((shape[0], 1, 1), generator=g) + 0.5
            state[base + ".weight_v"] = value
        else:
            state[name] = value
    return state


def fold(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``remove_weight_norm`` applied to a ``weight_g`` / ``weight_v`` state: ``weight = g * v / ||v||_{dims != 0}``."""
    out = {}
    for name, value in state.items():
        if name.endswith(".weight_g"):
            base = name[: -len(".weight_g")]
            v = state[base + ".weight_v"]
            norm = torch.sqrt(torch.sum(v * v, dim=tuple(range(1, v.dim())), keepdim=True))
            out[base + ".weight"] = value * v / norm
        elif not name.endswith(".weight_v"):
            out[name] = value
    return out


def vae_keys_sample() -> dict[str, Tensor]:
    """A few keys of the audioldm AutoencoderKL that share Tango's ``pytorch_model_vae.bin`` (DCLDM.md 6.1)."""
    return {"encoder.conv_in.weight": torch.zeros(4, 1, 3, 3), "decoder.conv_out.bias": torch.zeros(1),
            "quant_conv.weight": torch.zeros(16, 16, 1, 1), "post_quant_conv.bias": torch.zeros(8)}


def write_tango_dir(directory: Path, h: dict[str, Any], *, seed: int = 0, std: float = 0.1) -> dict[str, Tensor]:
    """A Tango-style directory: ``pytorch_model_vae.bin`` = VAE keys + ``vocoder.*`` (plain weights), plus the
    config files of the hub snapshot.  Returns the vocoder weights in AudioLDM names (without the prefix)."""
    directory.mkdir(parents=True, exist_ok=True)
    vocoder = generator_state(h, seed=seed, std=std)
    state = {**vae_keys_sample(), **{f"vocoder.{k}": v for k, v in vocoder.items()}}
    torch.save(state, directory / "pytorch_model_vae.bin")
    (directory / "vae_config.json").write_text(json.dumps({"embed_dim": 8, "scale_factor": 0.9227914214134216}))
    (directory / "main_config.json").write_text(json.dumps({"text_encoder_name": "google/flan-t5-large"}))
    return vocoder


def write_audioldm_training_ckpt(directory: Path, h: dict[str, Any], *, seed: int = 0,
                                 compiled: bool = False) -> tuple[Path, dict[str, Tensor]]:
    """``hifigan_16k_64bins.ckpt`` (``{"generator": weight-normed state}``; ``_orig_mod.`` names when
    ``compiled``) + ``hifigan_16k_64bins.json``.  Returns the file and the weight-normed state."""
    directory.mkdir(parents=True, exist_ok=True)
    state = generator_state(h, seed=seed, weight_norm=True)
    names = {("_orig_mod." + k if compiled else k): v for k, v in state.items()}
    path = directory / "hifigan_16k_64bins.ckpt"
    torch.save({"generator": names}, path)
    (directory / "hifigan_16k_64bins.json").write_text(json.dumps(h))
    return path, state


def write_diffusers_vocoder(directory: Path, h: dict[str, Any], *, seed: int = 0,
                            safe_serialization: bool = True) -> Any:
    """A diffusers ``vocoder/`` folder written by transformers itself, with the config diffusers' AudioLDM
    converter uses (``normalize_before=False``).  Returns the ``SpeechT5HifiGan`` that was saved."""
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    cfg = SpeechT5HifiGanConfig(
        model_in_dim=h["num_mels"], sampling_rate=h["sampling_rate"],
        upsample_initial_channel=h["upsample_initial_channel"], upsample_rates=h["upsample_rates"],
        upsample_kernel_sizes=h["upsample_kernel_sizes"], resblock_kernel_sizes=h["resblock_kernel_sizes"],
        resblock_dilation_sizes=h["resblock_dilation_sizes"], normalize_before=False)
    torch.manual_seed(seed)
    model = SpeechT5HifiGan(cfg).eval()
    model.save_pretrained(str(directory), safe_serialization=safe_serialization)
    return model


def num_parameters(h: dict[str, Any]) -> int:
    """Parameters of ``Generator(h)`` (plain weights)."""
    return sum(math.prod(s) for s in generator_shapes(h).values())
