"""Tiny DC-LDM parts for the tests: a tiny Tango-shaped UNet / VAE / HiFi-GAN, a tiny T5 shared by the UNet's
text conditioner and AudioGen, a 50 Hz tiny codec (4 x 16 codes, 8-d latent) and the tiny token LM."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from tests.ldm.corpus_fixture import tiny_mel_config, tiny_vae
from tests.ldm.t5_fixture import make_tiny_t5_dir

T5_DIM = 32
ACOUSTIC_DIM = 8  # the tiny codec's latent


def tiny_codec(seed: int = 0) -> Any:
    """EncodecCodec at 50 Hz (hop 320 = 8 * 5 * 4 * 2) with 4 codebooks of 16 codes, k-means-initialised on
    tones of the corpus fixture's pitches (audiocraft's warm-up forward), so different clips get different
    tokens."""
    from sara.codec.config import CodecConfig
    from sara.codec.model import EncodecCodec

    torch.manual_seed(seed)
    cfg = CodecConfig(n_filters=4, dimension=ACOUSTIC_DIM, lstm=0, num_codebooks=4, bins=16, kmeans_iters=4)
    codec = EncodecCodec(cfg).train()
    t = torch.arange(16000) / 16000
    tones = torch.stack([0.3 * torch.sin(2 * torch.pi * (220 + 110 * k) * t) for k in range(8)])[:, None]
    with torch.no_grad():
        codec(tones, generator=torch.Generator().manual_seed(seed))
    return codec.eval()


def tiny_audiogen(t5_dir: Path, seed: int = 0) -> Any:
    """AudioGen: the tiny LM (32-d text) + :func:`tiny_codec`; its text is the tiny T5 at ``t5_dir``."""
    from sara.audiogen.conditioning import build_text_conditioner
    from sara.audiogen.config import LMConfig
    from sara.audiogen.lm import TokenLM
    from sara.audiogen.model import AudioGen
    from sara.text.factory import TextEncoderSpec

    torch.manual_seed(seed)
    spec = TextEncoderSpec(kind="t5", path=str(t5_dir))
    lm = TokenLM(dataclasses.replace(LMConfig.tiny(), text_dim=T5_DIM))
    return AudioGen(lm, build_text_conditioner(spec), tiny_codec(seed), spec)


def tiny_ldm(t5_dir: Path, seed: int = 0) -> Any:
    """A LatentDiffusion of tiny parts (UNet 16/32 wide, 16 mel bins, T5 text)."""
    from sara.ldm.conditioning import build_conditioner
    from sara.ldm.config import UNetConfig
    from sara.ldm.unet import build_unet
    from sara.mel.hifigan import HiFiGAN, HiFiGANConfig
    from sara.pipelines.latent_diffusion import LatentDiffusion
    from sara.text.factory import TextEncoderSpec

    spec = TextEncoderSpec(kind="t5", path=str(t5_dir))
    torch.manual_seed(seed)
    unet = build_unet(UNetConfig.tiny())
    return LatentDiffusion(unet, tiny_vae(seed), HiFiGAN(HiFiGANConfig.tiny()), build_conditioner(spec),
                           mel_config=tiny_mel_config(), text_encoder_spec=spec)


def randomize_acoustic(model: Any, seed: int = 0, scale: float = 0.05) -> Any:
    """Give the (zero-initialised) acoustic output projections random weights, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.acoustic.named_parameters():
            if "proj_out" in name:
                p.copy_(scale * torch.randn(p.shape, generator=g))
    return model


def t5_dir(root: Path) -> Path:
    """Write the tiny T5 directory under ``root``."""
    return make_tiny_t5_dir(root / "flan-t5-tiny", d_model=T5_DIM)
