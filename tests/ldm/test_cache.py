"""The VAE-latent cache: Tango's front end + VAE posterior per clip, keyed by exact relative path; mixtures."""

import json
from pathlib import Path

import pytest
import torch

from sara.errors import ConfigError
from sara.ldm.cache import LatentCache, build_latent_cache, clip_file
from sara.ldm.data import CachedLatentDataset, collate_latents
from tests.ldm.conftest import FRAMES
from tests.ldm.corpus_fixture import tiny_mel_config, tiny_vae


def test_clips_are_keyed_by_their_exact_relative_path(cache: LatentCache, corpus: Path) -> None:
    records = [json.loads(ln) for ln in corpus.read_text().splitlines()]
    assert [c.file for c in cache.clips] == [clip_file(r["path"]) for r in records]
    same_stem = [c.file for c in cache.clips if Path(c.paths[0]).stem == "x"]
    assert same_stem == ["clips/audio/b/x.wav.safetensors", "clips/audio/a/x.wav.safetensors"]
    assert all((cache.root / c.file).is_file() for c in cache.clips)
    assert cache.clips[0].captions == ("A dog barks", "Barking of a dog")
    assert [c.split for c in cache.clips].count("valid") == 1
    with pytest.raises(ConfigError):
        clip_file("../outside.wav")


def test_latents_are_the_scaled_posterior_of_tangos_mel(cache: LatentCache, corpus: Path) -> None:
    from sara.audio.io import load_audio
    from sara.mel.frontend import tango_log_mel

    vae = tiny_vae()
    vae.set_scale_factor(1.0)  # the tiny VAE's factor; the cache multiplies mean and std by it
    wav, sr = load_audio(corpus.parent / cache.clips[2].paths[0])
    mel = tango_log_mel(wav[0], sr, FRAMES, tiny_mel_config())
    with torch.no_grad():
        post = vae.encode(mel.unsqueeze(1))
    mean, std = cache.load(cache.clips[2])
    assert mean.shape == std.shape == cache.latent_shape == (8, FRAMES // 4, 4)
    torch.testing.assert_close(mean, post.mean[0] * vae.scale_factor, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(std, post.std[0] * vae.scale_factor, rtol=1e-4, atol=1e-5)


def test_mixtures_join_two_training_captions(cache: LatentCache) -> None:
    assert len(cache.mixtures) == 3
    train_paths = {c.paths[0] for c in cache.clips if c.split == "train"}
    by_path = {c.paths[0]: c.captions for c in cache.clips}
    for m in cache.mixtures:
        a, b = m.paths
        assert a != b and {a, b} <= train_paths and m.split == "train"
        (caption,) = m.captions
        first = next(c for c in by_path[a] if caption.startswith(c + " and "))
        second = caption[len(first) + 5:]
        assert second in [c[0].lower() + c[1:] for c in by_path[b]]  # "A and b"
    assert cache.load(cache.mixtures[0])[0].shape == cache.latent_shape


def test_rebuild_reuses_files_and_refuses_other_settings(cache: LatentCache, corpus: Path) -> None:
    path = cache.root / cache.clips[0].file
    before = path.stat().st_mtime_ns
    again = build_latent_cache(corpus, tiny_vae(), cache.root, FRAMES, mel_cfg=tiny_mel_config(), num_mixtures=3,
                               seed=4, progress=False)
    assert path.stat().st_mtime_ns == before and [m.captions for m in again.mixtures] == [
        m.captions for m in cache.mixtures]
    with pytest.raises(ConfigError, match="frames"):
        build_latent_cache(corpus, tiny_vae(), cache.root, 2 * FRAMES, mel_cfg=tiny_mel_config(), progress=False)
    with pytest.raises(ConfigError, match="vae_sha256"):  # same config, other weights: stale latents refused
        build_latent_cache(corpus, tiny_vae(seed=1), cache.root, FRAMES, mel_cfg=tiny_mel_config(), num_mixtures=3,
                           seed=4, progress=False)
    with pytest.raises(ConfigError, match="multiple"):
        build_latent_cache(corpus, tiny_vae(), cache.root.parent / "other", 62, mel_cfg=tiny_mel_config())


def test_interrupted_cache_is_refused(cache: LatentCache, tmp_path: Path) -> None:
    index = json.loads((cache.root / "cache.json").read_text())
    index["complete"] = False
    (tmp_path / "cache.json").write_text(json.dumps(index))
    with pytest.raises(ConfigError, match="interrupted"):
        LatentCache(tmp_path)
    index["complete"] = True
    (tmp_path / "cache.json").write_text(json.dumps(index))
    with pytest.raises(ConfigError, match="unreadable latent cache entry"):
        LatentCache(tmp_path).load(cache.clips[0])  # the index names files this directory lacks
    (tmp_path / "cache.json").write_text("{")
    with pytest.raises(ConfigError, match="invalid JSON"):
        LatentCache(tmp_path)


def test_dataset_items_and_collate(cache: LatentCache) -> None:
    train = CachedLatentDataset(cache.root, "train", mixtures=True)
    assert len(train) == 5 + 3 and train.num_mixtures == 3
    assert len(CachedLatentDataset(cache.root, "valid")) == 1
    batch = collate_latents([train[0], train[6]])
    assert batch["mean"].shape == (2, 8, 16, 4) and batch["index"].tolist() == [0, 6]
    assert batch["captions"][1][0].count(" and ") >= 1
