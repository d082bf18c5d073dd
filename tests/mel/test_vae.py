"""MelVAE: shapes and frame arithmetic, the posterior, latent scaling, sara releases."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL  # noqa: F401 - imported at collection: its import (seconds) is no test's cost

from sara.errors import AudioError, CheckpointError, ConfigError
from sara.mel.vae import MelPosterior, MelVAE, MelVAEConfig
from sara.serialization import config_from_dict


@pytest.fixture(scope="module")
def tiny() -> MelVAE:
    torch.manual_seed(0)
    return MelVAE(MelVAEConfig.tiny()).eval()


def _mel(batch: int = 2, frames: int = 32, bins: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 1, frames, bins, generator=torch.Generator().manual_seed(seed))


def test_paper_shapes_on_the_meta_device() -> None:
    # The 55 M-parameter Tango VAE, built and run without allocating: 1 x 1024 x 64 -> 8 x 256 x 16 -> back.
    with torch.device("meta"):
        vae = MelVAE(MelVAEConfig.paper())
        posterior = vae.encode(torch.empty(1, 1, 1024, 64))
        mel = vae.decode(posterior.mode())
    assert posterior.mean.shape == (1, 8, 256, 16) and posterior.logvar.shape == (1, 8, 256, 16)
    assert mel.shape == (1, 1, 1024, 64)
    assert sum(p.numel() for p in vae.parameters()) == 55_376_873  # DCLDM.md 2.1: 55.4 M
    assert vae.downsample_factor == 4 and vae.latent_channels == 8
    assert vae.scale_factor == 0.9227914214134216


def test_tiny_round_trip_shapes(tiny: MelVAE) -> None:
    with torch.no_grad():
        posterior = tiny.encode(_mel())
        latents = tiny.encode_latents(_mel(), sample=False)
        mel = tiny.decode(latents)
    assert posterior.mean.shape == (2, 8, 8, 4) and latents.shape == (2, 8, 8, 4)
    assert mel.shape == (2, 1, 32, 16)


def test_decode_divides_by_the_scale_factor_and_encode_latents_multiplies() -> None:
    torch.manual_seed(1)
    vae = MelVAE(MelVAEConfig(**{**MelVAEConfig.tiny().__dict__, "scale_factor": 0.5})).eval()
    with torch.no_grad():
        mean = vae.encode(_mel()).mean
        assert torch.allclose(vae.encode_latents(_mel(), sample=False), 0.5 * mean)
        z = torch.randn(1, 8, 4, 4)
        assert torch.allclose(vae.decode(z), vae.decode_unscaled(2.0 * z))


def test_sampling_follows_the_generator(tiny: MelVAE) -> None:
    with torch.no_grad():
        a = tiny.encode_latents(_mel(), generator=torch.Generator().manual_seed(3))
        b = tiny.encode_latents(_mel(), generator=torch.Generator().manual_seed(3))
        c = tiny.encode_latents(_mel(), generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_posterior_statistics() -> None:
    mean = torch.tensor([0.5, -1.0]).reshape(1, 2, 1, 1).repeat(2, 1, 1, 1)
    logvar = torch.tensor([0.0, math.log(4.0)]).reshape(1, 2, 1, 1).repeat(2, 1, 1, 1)
    post = MelPosterior(mean, logvar)
    assert torch.allclose(post.std, torch.tensor([1.0, 2.0]).reshape(1, 2, 1, 1))
    # KL(N(m, s^2) || N(0, 1)) = (m^2 + s^2 - 1 - log s^2) / 2, per element
    per = [0.5 * (0.25 + 1 - 1 - 0), 0.5 * (1 + 4 - 1 - math.log(4.0))]
    assert torch.allclose(post.kl(), torch.full((2,), sum(per) / 2))
    assert torch.allclose(post.kl("sum"), torch.full((2,), sum(per)))
    assert torch.equal(post.mode(), mean)
    draws = MelPosterior(torch.zeros(4000, 1, 1, 1), torch.full((4000, 1, 1, 1), math.log(9.0)))
    sample = draws.sample(torch.Generator().manual_seed(0))
    assert abs(float(sample.std()) - 3.0) < 0.15
    assert torch.all(MelPosterior.from_moments(torch.full((1, 4, 1, 1), 50.0)).logvar == 20.0)  # clamp


def test_standard_normal_posterior_has_zero_kl() -> None:
    post = MelPosterior(torch.zeros(3, 2, 4, 4), torch.zeros(3, 2, 4, 4))
    assert torch.equal(post.kl(), torch.zeros(3))


@pytest.mark.parametrize(
    ("shape", "match"),
    [((2, 1, 30, 16), "30 frames is not a positive multiple of the downsample factor 4"),
     ((2, 1, 32, 12), "12 bins"), ((2, 32, 16), r"\[B, 1, T, F\]"), ((2, 2, 32, 16), r"\[B, 1, T, F\]")],
)
def test_frame_arithmetic_is_validated(tiny: MelVAE, shape: tuple[int, ...], match: str) -> None:
    with pytest.raises(AudioError, match=match) as info:
        tiny.encode(torch.zeros(shape))
    assert "\n" not in str(info.value)


def test_latent_shape_and_non_finite_mels(tiny: MelVAE) -> None:
    assert tiny.latent_shape(1024) == (8, 256, 4)
    with pytest.raises(AudioError, match="1023 frames"):
        tiny.latent_shape(1023)
    with pytest.raises(AudioError, match="NaN or Inf"):
        tiny.encode(torch.full((1, 1, 32, 16), float("nan")))
    with torch.device("meta"):
        assert MelVAE(MelVAEConfig.paper()).latent_shape(1024) == (8, 256, 16)  # Tango's prepare_latents shape


def test_decode_validates_latent_channels(tiny: MelVAE) -> None:
    with pytest.raises(AudioError, match=r"\[B, 8, H, W\]"):
        tiny.decode(torch.zeros(1, 4, 8, 4))


def test_config_validation_and_presets() -> None:
    with pytest.raises(ValueError, match="norm_num_groups"):
        MelVAEConfig(block_out_channels=(8, 20), norm_num_groups=8)
    with pytest.raises(ValueError, match="multiple of the downsample factor"):
        MelVAEConfig(n_mels=66)
    with pytest.raises(ConfigError):
        config_from_dict(MelVAEConfig, {"scale_factor": -1.0})
    assert MelVAEConfig.small().downsample_factor == 4 and MelVAEConfig.tiny().downsample_factor == 4
    assert MelVAEConfig.paper() == MelVAEConfig()


def test_release_round_trip(tmp_path: Path, tiny: MelVAE) -> None:
    vae = MelVAE(MelVAEConfig.tiny())
    vae.set_scale_factor(0.75)
    vae.save_pretrained(tmp_path / "rel")
    loaded = MelVAE.from_pretrained(tmp_path / "rel")
    assert loaded.scale_factor == 0.75 and loaded.config == vae.config
    with torch.no_grad():
        assert torch.equal(loaded.encode(_mel()).mean, vae.eval().encode(_mel()).mean)
        assert torch.equal(loaded.decode(torch.ones(1, 8, 2, 4)), vae.decode(torch.ones(1, 8, 2, 4)))


def test_release_with_a_missing_key_names_it(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    MelVAE(MelVAEConfig.tiny()).save_pretrained(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    state.pop("autoencoder.decoder.conv_out.bias")
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="autoencoder.decoder.conv_out.bias") as info:
        MelVAE.from_pretrained(tmp_path)
    assert "\n" not in str(info.value)


def test_from_pretrained_on_an_unknown_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a mel VAE"):
        MelVAE.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="no such directory"):
        MelVAE.from_pretrained(tmp_path / "absent")
