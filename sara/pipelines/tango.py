"""Read a Tango model directory (the declare-lab/tango hub snapshot; tango-full-ft-audiocaps and tango2 share it).

Layout (DCLDM.md section 6.1; declare-lab/tango ``tango.py`` builds ``AutoencoderKL(**vae_config)``,
``TacotronSTFT(**stft_config)`` and ``AudioDiffusion(**main_config)`` and loads each file strictly)::

    main_config.json         AudioDiffusion arguments: text_encoder_name, scheduler_name, unet_model_name,
                             unet_model_config_path, snr_gamma (+ the optional freeze_text_encoder, uncondition)
    vae_config.json          audioldm AutoencoderKL arguments (read by sara.mel.vae)
    stft_config.json         TacotronSTFT arguments: filter_length, hop_length, win_length, n_mel_channels,
                             sampling_rate, mel_fmin, mel_fmax
    pytorch_model_main.bin   unet.* (diffusers UNet2DConditionModel names) + text_encoder.* (T5 encoder)
    pytorch_model_vae.bin    the VAE + the HiFi-GAN as vocoder.* (read by sara.mel.vae / sara.mel.hifigan)
    pytorch_model_stft.bin   mel_basis [n_mels, n_fft/2+1], stft_fn.forward_basis / inverse_basis [n_fft+2, 1, n_fft]

Three names in ``main_config.json`` point outside the snapshot and are resolved offline here:
``unet_model_config_path`` (a file of the Tango git repo: used when it exists relative to the directory, else
sara's shipped :meth:`UNetConfig.tango` chosen by the T5 width), ``text_encoder_name`` (tokenizer + T5 config from
a local directory or the Hugging Face cache; the T5 weights are ``text_encoder.*``) and ``scheduler_name``
(sara ships the SD-2.1 scheduler config as ``TANGO_SCHEDULER_CONFIG``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sara.errors import CheckpointError
from sara.serialization import load_torch_checkpoint, read_json_object, strip_prefix

__all__ = [
    "TANGO_FILES",
    "TangoDir",
    "TangoParts",
    "check_stft_state",
    "fourier_basis",
    "is_tango_dir",
    "load_tango_parts",
    "read_tango_dir",
    "resolve_unet_config",
    "shipped_unet_config",
    "tango_mel_config",
    "tango_vocoder",
]

TANGO_FILES = ("main_config.json", "vae_config.json", "stft_config.json",
               "pytorch_model_main.bin", "pytorch_model_vae.bin", "pytorch_model_stft.bin")
# AudioDiffusion.__init__ arguments (declare-lab/tango models.py); the first two are required there.
MAIN_REQUIRED = ("text_encoder_name", "scheduler_name")
MAIN_OPTIONAL = ("unet_model_name", "unet_model_config_path", "snr_gamma", "freeze_text_encoder", "uncondition")
STFT_KEYS = ("filter_length", "hop_length", "win_length", "n_mel_channels", "sampling_rate", "mel_fmin", "mel_fmax")
STFT_STATE_KEYS = ("mel_basis", "stft_fn.forward_basis", "stft_fn.inverse_basis")
# scheduler_name values whose scheduler config sara ships (TANGO_SCHEDULER_CONFIG in sara.ldm)
KNOWN_SCHEDULERS = ("stabilityai/stable-diffusion-2-1",)
# T5 width -> the shipped UNet preset (Tango's configs/diffusion_model_config.json / _xl_config.json)
SHIPPED_UNET_BY_WIDTH = {1024: "tango", 2048: "tango_xl"}
# the stored filterbank / Fourier basis must match sara's to this absolute tolerance (float32 round-off)
BASIS_ATOL = 1e-5


def is_tango_dir(path: str | Path) -> bool:
    """True if ``path`` has Tango's ``main_config.json`` or ``pytorch_model_main.bin`` (a partial directory counts,
    so that :func:`read_tango_dir` can name the missing files)."""
    p = Path(path)
    return (p / "main_config.json").is_file() or (p / "pytorch_model_main.bin").is_file()


@dataclass
class TangoDir:
    """The parsed configs of a Tango directory (weights are read on demand).

    Attributes:
        path: the directory.
        main_config: ``main_config.json`` (AudioDiffusion arguments).
        stft_config: ``stft_config.json`` (TacotronSTFT arguments).
    """

    path: Path
    main_config: dict[str, Any]
    stft_config: dict[str, Any]

    @property
    def text_encoder_name(self) -> str:
        """The T5 named in ``main_config.json`` (a local directory or a HF repo id)."""
        return str(self.main_config["text_encoder_name"])

    def main_state(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """``pytorch_model_main.bin`` split into ``(unet state, text_encoder state)``, prefixes removed.

        Raises:
            CheckpointError: unreadable file, or keys outside ``unet.*`` / ``text_encoder.*`` (one line naming them).
        """
        source = self.path / "pytorch_model_main.bin"
        state = _state_dict(source)
        other = sorted(k for k in state if not k.startswith(("unet.", "text_encoder.")))
        if other:
            hint = " (a UNet started from Stable Diffusion with group_in/group_out: not supported)" \
                if any(k.startswith(("group_in.", "group_out.")) for k in other) else ""
            raise CheckpointError(f"{source}: unexpected keys {other[:4]} ({len(other)}){hint}")
        unet, text = strip_prefix(state, "unet."), strip_prefix(state, "text_encoder.")
        for name, part in (("unet", unet), ("text_encoder", text)):
            if not part:
                raise CheckpointError(f"{source}: no {name}.* weights")
        return unet, text


def read_tango_dir(path: str | Path) -> TangoDir:
    """Check the files of a Tango directory and parse ``main_config.json`` and ``stft_config.json``.

    Raises:
        CheckpointError: a missing file, invalid JSON, or a missing / unknown config key (one line naming it).
    """
    p = Path(path)
    missing = [name for name in TANGO_FILES if not (p / name).is_file()]
    if missing:
        raise CheckpointError(f"{p}: not a complete Tango directory: missing {', '.join(missing)}")
    main = read_json_object(p / "main_config.json")
    _check_keys(main, MAIN_REQUIRED, MAIN_OPTIONAL, p / "main_config.json")
    stft = read_json_object(p / "stft_config.json")
    _check_keys(stft, STFT_KEYS, (), p / "stft_config.json")
    if main.get("unet_model_name"):
        raise CheckpointError(f"{p / 'main_config.json'}: unet_model_name {main['unet_model_name']!r} (a UNet "
                              "started from Stable Diffusion with group_in/group_out) is not supported")
    if main["scheduler_name"] not in KNOWN_SCHEDULERS:
        raise CheckpointError(f"{p / 'main_config.json'}: unknown scheduler_name {main['scheduler_name']!r} "
                              f"(sara ships the scheduler config of {', '.join(KNOWN_SCHEDULERS)})")
    return TangoDir(path=p, main_config=main, stft_config=stft)



def _check_keys(data: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...], source: Path) -> None:
    missing = [k for k in required if k not in data]
    unknown = sorted(set(data) - set(required) - set(optional))
    if missing or unknown:
        raise CheckpointError(f"{source}: missing keys {missing}, unknown keys {unknown}")


def _state_dict(path: Path) -> dict[str, Tensor]:
    state = load_torch_checkpoint(path)
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a plain state dict of tensors")
    return dict(state)


# ------------------------------------------------------------------------------------------ mel front end


def tango_mel_config(info: TangoDir):  # noqa: ANN201 - sara.mel.frontend.MelConfig
    """``stft_config.json`` as a :class:`~sara.mel.frontend.MelConfig` (Tango's log floor 1e-5).

    Raises:
        CheckpointError: values the front end does not support.
    """
    from sara.errors import ConfigError
    from sara.mel.frontend import MelConfig
    from sara.serialization import config_from_dict

    s = info.stft_config
    fields = {"sample_rate": s["sampling_rate"], "n_fft": s["filter_length"], "win_length": s["win_length"],
              "hop_length": s["hop_length"], "n_mels": s["n_mel_channels"], "f_min": float(s["mel_fmin"]),
              "f_max": float(s["mel_fmax"])}
    try:
        return config_from_dict(MelConfig, fields)
    except ConfigError as exc:
        raise CheckpointError(f"{info.path / 'stft_config.json'}: {exc}") from None


def check_stft_state(info: TangoDir, mel_cfg: Any) -> None:
    """Check ``pytorch_model_stft.bin`` against sara's front end (which rebuilds these buffers itself).

    ``mel_basis`` must equal :func:`~sara.mel.frontend.slaney_mel_filterbank` and ``stft_fn.forward_basis``
    the periodic-Hann-windowed Fourier basis ``[cos; -sin]`` (AudioLDM's ``STFT``) to :data:`BASIS_ATOL`;
    ``inverse_basis`` (only used by Griffin-Lim) is checked for its shape.

    Raises:
        CheckpointError: missing/unexpected keys, or a basis that differs (one line with the largest error).
    """
    from sara.mel.frontend import slaney_mel_filterbank

    source = info.path / "pytorch_model_stft.bin"
    state = _state_dict(source)
    missing = [k for k in STFT_STATE_KEYS if k not in state]
    unexpected = sorted(set(state) - set(STFT_STATE_KEYS))
    if missing or unexpected:
        raise CheckpointError(f"{source}: missing keys {missing}, unexpected keys {unexpected}")
    c = mel_cfg
    mel = slaney_mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.f_min, c.f_max)
    _compare(state["mel_basis"], mel, "mel_basis", source)
    _compare(state["stft_fn.forward_basis"], fourier_basis(c.n_fft, c.win_length), "stft_fn.forward_basis", source)
    if tuple(state["stft_fn.inverse_basis"].shape) != (c.n_fft + 2, 1, c.n_fft):
        raise CheckpointError(f"{source}: stft_fn.inverse_basis has shape {tuple(state['stft_fn.inverse_basis'].shape)}"
                              f", expected {(c.n_fft + 2, 1, c.n_fft)}")


def fourier_basis(n_fft: int, win_length: int) -> Tensor:
    """The windowed real Fourier basis ``[n_fft + 2, 1, n_fft]``: rows ``k`` = ``cos(2 pi k n / N) w[n]``, rows
    ``n_fft/2 + 1 + k`` = ``-sin(2 pi k n / N) w[n]`` (``w``: periodic Hann of ``win_length``, centre-padded)."""
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
    phase = 2 * math.pi * torch.outer(k, n) / n_fft
    window = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
    left = (n_fft - win_length) // 2
    window = torch.nn.functional.pad(window, (left, n_fft - win_length - left))
    basis = torch.cat([torch.cos(phase), -torch.sin(phase)]) * window
    return basis[:, None, :].float()


def _compare(stored: Tensor, expected: Tensor, name: str, source: Path) -> None:
    if tuple(stored.shape) != tuple(expected.shape):
        raise CheckpointError(f"{source}: {name} has shape {tuple(stored.shape)}, expected {tuple(expected.shape)}")
    err = (stored.double() - expected.double()).abs().max().item()
    if not err <= BASIS_ATOL:
        raise CheckpointError(f"{source}: {name} differs from sara's front end by up to {err:.3g} "
                              f"(tolerance {BASIS_ATOL:g}); this checkpoint used another mel/STFT definition")


# ------------------------------------------------------------------------------------------ UNet config


def resolve_unet_config(info: TangoDir, text_dim: int) -> tuple[Any, str]:
    """The UNet config: ``unet_model_config_path`` if it exists (relative to the directory, or absolute), else
    sara's shipped Tango preset for this T5 width (1024: ``UNetConfig.tango()``, 2048: the XL config).

    Args:
        info: the parsed directory.
        text_dim: the T5 ``d_model`` (the UNet's cross-attention width).

    Returns:
        ``(UNetConfig, where it came from)`` -- a file path, or ``"sara's UNetConfig.tango() (...)"``.

    Raises:
        CheckpointError: the named file is absent and no shipped preset has this width.
    """
    from sara.errors import ConfigError
    from sara.ldm.config import UNetConfig

    name = info.main_config.get("unet_model_config_path")
    if name:
        path = Path(name) if Path(name).is_absolute() else info.path / name
        if path.is_file():
            try:
                return UNetConfig.from_diffusers_dict(read_json_object(path)), str(path)
            except ConfigError as exc:
                raise CheckpointError(f"{path}: {exc}") from None
    preset = SHIPPED_UNET_BY_WIDTH.get(int(text_dim))
    if preset is None:
        raise CheckpointError(f"{info.path}: UNet config {name!r} not found in the directory and sara ships Tango "
                              f"UNet configs for T5 widths {sorted(SHIPPED_UNET_BY_WIDTH)} only (this T5: {text_dim})")
    return shipped_unet_config(preset), f"sara's UNetConfig.{preset}() ({name!r} is not in the directory)"


def shipped_unet_config(preset: str) -> Any:
    """``UNetConfig.tango()`` or ``UNetConfig.tango_xl()`` (Tango's ``diffusion_model_xl_config.json``)."""
    from sara.ldm.config import UNetConfig

    return UNetConfig.tango() if preset == "tango" else UNetConfig.tango_xl()


# ------------------------------------------------------------------------------------------ components


@dataclass
class TangoParts:
    """The built components of a Tango directory (weights loaded strictly).

    Attributes:
        unet: diffusers ``UNet2DConditionModel``.
        vae: :class:`~sara.mel.vae.MelVAE`; vocoder: :class:`~sara.mel.hifigan.HiFiGAN`.
        text_encoder: :class:`~sara.ldm.conditioning.TangoTextConditioner` (the named T5 with ``text_encoder.*``).
        mel_config: the front end of ``stft_config.json``.
        unet_config_source: where the UNet config came from (a file, or sara's shipped preset).
    """

    unet: Any
    vae: Any
    vocoder: Any
    text_encoder: Any
    mel_config: Any
    unet_config_source: str


def load_tango_parts(path: str | Path) -> TangoParts:
    """Read and strictly load every component of a Tango directory.

    Raises:
        CheckpointError: a missing file or key, a basis that differs, weights that do not fit (one line each).
        SaraError: the named T5 is not available offline.
    """
    from sara.ldm.conditioning import TangoTextConditioner
    from sara.ldm.unet import build_unet
    from sara.mel.vae import MelVAE
    from sara.serialization import load_state_dict_strict

    info = read_tango_dir(path)
    mel_cfg = tango_mel_config(info)
    check_stft_state(info, mel_cfg)
    unet_state, text_state = info.main_state()
    # tokenizer + T5 config from the named model (offline), weights from text_encoder.*
    text = TangoTextConditioner.from_model_dir(info.text_encoder_name, info.path, text_state)
    unet_cfg, source = resolve_unet_config(info, text.dim)
    logging.getLogger(__name__).info("%s: UNet config from %s", info.path, source)
    unet = build_unet(unet_cfg)
    load_state_dict_strict(unet, unet_state, source=f"{info.path / 'pytorch_model_main.bin'} (unet.*, {source})")
    return TangoParts(unet=unet.eval(), vae=MelVAE.from_pretrained(info.path), vocoder=tango_vocoder(info.path),
                      text_encoder=text, mel_config=mel_cfg, unet_config_source=source)


def tango_vocoder(path: Path) -> Any:
    """The HiFi-GAN stored as ``vocoder.*`` in ``pytorch_model_vae.bin``.

    Tango's code fixes the vocoder size (AudioLDM's ``HIFIGAN_16K_64``); the mel bins and the initial width are
    read from ``vocoder.conv_pre.weight`` ``[C0, n_mels, 7]`` so that smaller vocoders in the same layout (the
    test directories) load too.  Every other size is the paper's, and strict loading checks all shapes.
    """
    import dataclasses

    from sara.mel.hifigan import HiFiGANConfig
    from sara.mel.hifigan_official import load_tango_vocoder

    file = path / "pytorch_model_vae.bin"
    conv_pre = _state_dict(file).get("vocoder.conv_pre.weight")
    if conv_pre is None or conv_pre.ndim != 3:
        raise CheckpointError(f"{file}: no vocoder.conv_pre.weight [C0, n_mels, 7] (Tango keeps its HiFi-GAN there)")
    cfg = dataclasses.replace(HiFiGANConfig.paper(), upsample_initial_channel=int(conv_pre.shape[0]),
                              n_mels=int(conv_pre.shape[1]))
    return load_tango_vocoder(file, config=cfg)
