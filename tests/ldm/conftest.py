"""Shared LDM fixtures: a tiny corpus, its latent cache (tiny VAE, 64 frames, 3 mixtures) and a tiny T5."""

from pathlib import Path

import pytest

from tests.ldm.corpus_fixture import make_corpus, tiny_mel_config, tiny_vae
from tests.ldm.t5_fixture import make_tiny_t5_dir

FRAMES = 64


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def cache(corpus: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - LatentCache
    from sara.ldm.cache import build_latent_cache

    out = tmp_path_factory.mktemp("cache") / "latents"
    return build_latent_cache(corpus, tiny_vae(), out, FRAMES, mel_cfg=tiny_mel_config(), num_mixtures=3,
                              seed=4, progress=False)


@pytest.fixture(scope="session")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_t5_dir(tmp_path_factory.mktemp("t5") / "flan-t5-tiny")
