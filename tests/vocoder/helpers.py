"""Shared helpers for the vocoder tests: tiny configs, official-format checkpoints, synthetic audio."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from sara.vocoder import VocoderConfig
from sara.vocoder.model import VocoderGenerator

ENCODER_DIM = 32  # sara's EncoderConfig.tiny() embed_dim


def tiny_config(**overrides) -> VocoderConfig:  # noqa: ANN003
    """The tiny preset with a 32-d latent (matches the tiny semantic encoder)."""
    return dataclasses.replace(VocoderConfig.tiny(), latent_dim=ENCODER_DIM, **overrides)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter non-trivial random values (so layout bugs change outputs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("log_scale"):
                p.fill_(0.3)
            elif name.endswith("residual_scale.scale"):
                p.uniform_(0.5, 1.0, generator=g)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def official_state_dict(cfg: VocoderConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """A generator state dict in the official layout: parameters + the window / filterbank buffers."""
    gen = randomize(VocoderGenerator(cfg), seed)
    state = dict(gen.state_dict())
    state.update({k: v.clone() for k, v in gen.named_buffers()})  # official checkpoints persist these
    return state


def hydra_config(cfg: VocoderConfig, encoder_name: str = "dasheng_base") -> dict:
    """A plausible official ``config.json`` for ``cfg``."""
    vocoder = {
        "_target_": "models.autoencoder.waveform.semanticVocoder.flow2gan.models.generator.MaeAudioGenerator",
        "latent_dim": cfg.latent_dim, "hop_length": cfg.hop_length, "sampling_rate": cfg.sample_rate,
        "n_ffts": list(cfg.n_ffts), "hop_lengths": list(cfg.hop_lengths), "channels": list(cfg.channels),
        "num_layers": list(cfg.num_layers), "conv_kernel_sizes": list(cfg.kernel_sizes),
        "time_embed_channels": cfg.time_embed_dim, "hidden_factor": cfg.hidden_factor,
        "cond_enc_channels": cfg.cond_enc_channels, "cond_enc_num_layers": cfg.cond_enc_num_layers,
        "use_cond_encoder": True, "residual_scale": 1.0, "init_noise_scale": 0.1, "pred_x1": True,
        "spec_scaling_loss": True, "branch_dropout": 0.05,
    }
    autoencoder = {
        "_target_": "models.autoencoder.waveform.semanticVocoder.semanticVocoder.SemanticVocoder",
        "vocoder": vocoder, "encoder_name": encoder_name, "n_timesteps": 200, "sample_rate": 24000,
        "downsampling_ratio": 960, "encoder_sampling_rate": 16000, "clamp_pred": True,
    }
    return {"model": {"autoencoder": autoencoder}, "sample_rate": 24000}


def write_official(directory: Path, cfg: VocoderConfig, *, with_config: bool = True, prefix: str = "",
                   encoder_name: str = "dasheng_base") -> Path:
    """Write ``semanticVocoder_epoch-270.pt`` (+ ``config.json``) into ``directory``; returns the .pt path."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {prefix + k: v for k, v in official_state_dict(cfg).items()}
    path = directory / "semanticVocoder_epoch-270.pt"
    torch.save({"model": state, "epoch": 270, "batch_idx_train": 12345}, path)
    if with_config:
        (directory / "config.json").write_text(json.dumps(hydra_config(cfg, encoder_name)))
    return path


def write_tone(path: Path, seconds: float, sample_rate: int, freq: float = 440.0, channels: int = 1) -> Path:
    """A decaying sine (plus a little noise) as an audio file."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(int(freq))
    x = 0.5 * np.sin(2 * np.pi * freq * t) * np.exp(-t) + 0.01 * rng.standard_normal(t.shape)
    data = np.stack([x] * channels, axis=1).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sample_rate)
    return path


def tiny_encoder():  # noqa: ANN201
    """A randomly initialised tiny sara SemanticEncoder (32-d latents at 25 Hz)."""
    from sara.encoder import EncoderConfig, SemanticEncoder

    torch.manual_seed(0)
    return SemanticEncoder(EncoderConfig.tiny()).eval()
