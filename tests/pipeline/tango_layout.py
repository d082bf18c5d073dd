"""Write a complete, tiny Tango model directory exactly in the official layout (random weights).

An independent statement of the declare-lab/tango hub snapshot (DCLDM.md section 6.1, tango.py, models.py,
audioldm/audio/stft.py): the six file names, plain ``torch.save``d state dicts, ``main_config.json`` /
``stft_config.json`` with the official field names, ``pytorch_model_main.bin`` = the ``state_dict()`` of an
``AudioDiffusion`` (a diffusers ``UNet2DConditionModel`` under ``unet.`` built from a diffusers config dict with
``from_config`` as Tango does, and a transformers ``T5EncoderModel`` under ``text_encoder.``), and
``pytorch_model_stft.bin`` = the buffers of ``TacotronSTFT`` (librosa's slaney ``mel_basis``, the numpy-FFT
Fourier basis windowed by scipy's periodic Hann, and its pseudo-inverse).  Nothing here goes through sara's
loaders or converters.  The VAE / vocoder file is written by the mel engineers' layout builders
(``tests/mel/official_vae_layout.py``, ``tests/mel/official_hifigan_layout.py``).

Tiny sizes: the official 16 kHz / 64-bin STFT, a 2-level VAE (factor 2), a 2-level UNet (frames multiple of 4),
a 2-layer 16-d T5 whose directory looks like ``google/flan-t5-large``'s (``config.json`` + a T5 tokenizer with
``model_max_length`` 512, built offline from a word list).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tests.mel.official_hifigan_layout import HIFIGAN_16K_64, generator_state
from tests.mel.official_vae_layout import TINY_DDCONFIG, write_tango_vae_dir

torch.set_num_threads(1)

# main_config.json of the hub snapshot; text_encoder_name is replaced by the tiny T5 directory
OFFICIAL_MAIN_CONFIG: dict[str, Any] = {
    "text_encoder_name": "google/flan-t5-large",
    "scheduler_name": "stabilityai/stable-diffusion-2-1",
    "unet_model_name": None,
    "unet_model_config_path": "configs/diffusion_model_config.json",
    "snr_gamma": 5.0,
}
# stft_config.json of the hub snapshot (TacotronSTFT arguments)
OFFICIAL_STFT_CONFIG: dict[str, Any] = {
    "filter_length": 1024, "hop_length": 160, "win_length": 1024, "n_mel_channels": 64,
    "sampling_rate": 16000, "mel_fmin": 0, "mel_fmax": 8000,
}
TEXT_DIM = 16  # d_model of the tiny T5
WORDS = ("a", "dog", "bark", "s", "rain", "on", "roof", "bird", "sing", "car", "engine", "loud", "soft")
# AudioLDM's HIFIGAN_16K_64 (the size Tango's code fixes) with a 32-wide first stage instead of 1024
TINY_HIFIGAN: dict[str, Any] = {**HIFIGAN_16K_64, "upsample_initial_channel": 32}


def tiny_unet_json(cross_attention_dim: int = TEXT_DIM) -> dict[str, Any]:
    """A tiny ``configs/diffusion_model_config.json`` in Tango's format (same keys, diffusers 0.10 naming).

    Attention sits at the half-resolution level and in the mid block only (Tango's sits at its top three): the
    full-resolution latent of a 10.24 s clip has 4096 positions, too many for a quick CPU test."""
    return {
        "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.10.0.dev0", "act_fn": "silu",
        "attention_head_dim": [2, 4], "block_out_channels": [16, 32], "center_input_sample": False,
        "cross_attention_dim": cross_attention_dim, "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
        "downsample_padding": 1, "dual_cross_attention": False, "flip_sin_to_cos": True, "freq_shift": 0,
        "in_channels": 8, "layers_per_block": 1, "mid_block_scale_factor": 1, "norm_eps": 1e-05,
        "norm_num_groups": 8, "num_class_embeds": None, "only_cross_attention": False, "out_channels": 8,
        "sample_size": [32, 2], "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
        "use_linear_projection": True, "upcast_attention": True,
    }


def write_flan_t5_dir(path: Path) -> Path:
    """A tiny stand-in for the ``google/flan-t5-large`` directory Tango names: ``T5Config`` (d_model 16, gated-GELU
    like FLAN-T5) + a unigram ``T5Tokenizer`` with FLAN-T5's ``model_max_length`` 512; random weights are saved
    too but Tango's loader takes the T5 weights from ``pytorch_model_main.bin``."""
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -3.0)]
    vocab += [(f"\u2581{w}", -1.0) for w in WORDS] + [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)
    cfg = T5Config(vocab_size=len(vocab), d_model=TEXT_DIM, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
                   feed_forward_proj="gated-gelu", relative_attention_num_buckets=8, decoder_start_token_id=0)
    torch.manual_seed(0)
    T5EncoderModel(cfg).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# ------------------------------------------------------------------------------- pytorch_model_stft.bin


def _slaney_mel(hz: np.ndarray) -> np.ndarray:
    """librosa.hz_to_mel(htk=False)."""
    hz = np.asarray(hz, dtype=np.float64)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, hz * 3.0 / 200.0)


def _slaney_hz(mel: np.ndarray) -> np.ndarray:
    """librosa.mel_to_hz(htk=False)."""
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * 200.0 / 3.0)


def librosa_mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)`` (slaney scale and norm), as librosa computes it."""
    fftfreqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _slaney_hz(np.linspace(_slaney_mel(fmin), _slaney_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2: n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def stft_state(cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
    """``TacotronSTFT(**cfg).state_dict()``: ``mel_basis``, ``stft_fn.forward_basis``, ``stft_fn.inverse_basis``."""
    from scipy.signal import get_window

    n, hop, win = cfg["filter_length"], cfg["hop_length"], cfg["win_length"]
    fourier = np.fft.fft(np.eye(n))
    cutoff = n // 2 + 1
    fourier = np.vstack([np.real(fourier[:cutoff]), np.imag(fourier[:cutoff])])
    inverse = np.linalg.pinv(n / hop * fourier).T
    window = np.zeros(n)
    left = (n - win) // 2
    window[left: left + win] = get_window("hann", win, fftbins=True)
    mel = librosa_mel_basis(cfg["sampling_rate"], n, cfg["n_mel_channels"], cfg["mel_fmin"], cfg["mel_fmax"])
    return {"mel_basis": torch.from_numpy(mel),
            "stft_fn.forward_basis": torch.from_numpy(fourier[:, None, :] * window).float(),
            "stft_fn.inverse_basis": torch.from_numpy(inverse[:, None, :] * window).float()}


# ------------------------------------------------------------------------------- pytorch_model_main.bin


def _randomize(module: torch.nn.Module, seed: int, scale: float = 0.2) -> torch.nn.Module:
    """Seeded random weights (diffusers zero-initialises nothing we need, but random weights make every
    parameter matter: a wrongly loaded key changes the output)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return module.eval()


def main_state(unet_json: dict[str, Any], t5_dir: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """``AudioDiffusion.state_dict()``: ``unet.*`` (diffusers names) + ``text_encoder.*`` (T5EncoderModel names,
    both tied embedding names present as transformers' state_dict writes them)."""
    from diffusers import UNet2DConditionModel
    from transformers import T5Config, T5EncoderModel

    unet = _randomize(UNet2DConditionModel.from_config(unet_json), seed)
    t5 = _randomize(T5EncoderModel(T5Config.from_pretrained(str(t5_dir))), seed + 1, scale=0.5)
    state = {f"unet.{k}": v for k, v in unet.state_dict().items()}
    state.update({f"text_encoder.{k}": v for k, v in t5.state_dict().items()})
    return state


# ------------------------------------------------------------------------------------------- directory


def write_tango_dir(path: Path, t5_dir: Path, *, with_unet_config: bool = True, seed: int = 0) -> Path:
    """Write a tiny Tango directory at ``path``.

    Args:
        path: target directory (created).
        t5_dir: a local T5 directory (config + tokenizer), written into ``text_encoder_name``.
        with_unet_config: also write ``configs/diffusion_model_config.json`` (absent from the real hub snapshot).
        seed: weight seed.

    Returns:
        ``path``.
    """
    path.mkdir(parents=True, exist_ok=True)
    unet_json = tiny_unet_json()
    main_cfg = dict(OFFICIAL_MAIN_CONFIG, text_encoder_name=str(t5_dir))
    (path / "main_config.json").write_text(json.dumps(main_cfg, indent=4))
    (path / "stft_config.json").write_text(json.dumps(OFFICIAL_STFT_CONFIG, indent=4))
    if with_unet_config:
        (path / "configs").mkdir(exist_ok=True)
        (path / "configs" / "diffusion_model_config.json").write_text(json.dumps(unet_json, indent=2))
    torch.save(main_state(unet_json, t5_dir, seed), path / "pytorch_model_main.bin")
    torch.save(stft_state(OFFICIAL_STFT_CONFIG), path / "pytorch_model_stft.bin")
    write_vae_and_vocoder(path, seed)
    return path


def write_vae_and_vocoder(path: Path, seed: int = 0) -> None:
    """``vae_config.json`` + ``pytorch_model_vae.bin`` (audioldm VAE keys + the HiFi-GAN as ``vocoder.*``, weight
    norm removed) with the mel engineers' independent layout builders; rewrites ``stft_config.json`` identically."""
    vocoder = generator_state(TINY_HIFIGAN, seed=seed + 2)
    write_tango_vae_dir(path, TINY_DDCONFIG, n_mels=OFFICIAL_STFT_CONFIG["n_mel_channels"], seed=seed + 3,
                        vocoder_state={f"vocoder.{k}": v for k, v in vocoder.items()})
