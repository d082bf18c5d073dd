"""Session fixtures: a tiny corpus + latent cache (tests/ldm's), a tiny T5, a tiny AudioGen release, its codec
token cache, and releases of the tiny VAE / HiFi-GAN."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.dcldm.fixtures import t5_dir as write_t5_dir
from tests.dcldm.fixtures import tiny_audiogen
from tests.ldm.corpus_fixture import make_corpus, tiny_mel_config, tiny_vae

torch.set_num_threads(1)
FRAMES = 64  # 0.64 s clips: latents [8, 16, 4], 32 token frames at 50 Hz


@pytest.fixture(scope="session")
def t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_t5_dir(tmp_path_factory.mktemp("t5"))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def cache(corpus: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - LatentCache
    from sara.ldm.cache import build_latent_cache

    out = tmp_path_factory.mktemp("cache") / "latents"
    return build_latent_cache(corpus, tiny_vae(), out, FRAMES, mel_cfg=tiny_mel_config(), num_mixtures=2, seed=4,
                              progress=False)


@pytest.fixture(scope="session")
def audiogen_dir(t5: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_audiogen(t5).save_pretrained(tmp_path_factory.mktemp("ag") / "audiogen")


@pytest.fixture(scope="session")
def token_cache(audiogen_dir: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sara.audiogen import AudioGen
    from sara.codec.tokens import encode_manifest_to_tokens

    out = tmp_path_factory.mktemp("tokens") / "codec"
    encode_manifest_to_tokens(AudioGen.from_pretrained(audiogen_dir).codec, corpus, out)
    return out


@pytest.fixture(scope="session")
def vae_vocoder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from sara.mel.hifigan import HiFiGAN, HiFiGANConfig

    root = tmp_path_factory.mktemp("mel")
    tiny_vae().save_pretrained(root / "vae")
    torch.manual_seed(0)
    HiFiGAN(HiFiGANConfig.tiny()).save_pretrained(root / "voc")
    return root / "vae", root / "voc"
