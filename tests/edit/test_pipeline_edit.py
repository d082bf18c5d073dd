"""TextToAudio's editing and long-form methods on a tiny pipeline (the issue's Done-when items)."""

from __future__ import annotations

import pytest
import torch

from sara.edit import AudioEditor
from sara.edit.sampler import noisy
from sara.errors import ConfigError
from sara.flow.timesteps import make_schedule
from tests.edit.conftest import tone

FAST = {"steps": 4, "vocoder_steps": 2, "guidance_scale": 3.0}


def test_pipeline_implements_the_protocol(edit_pipe) -> None:
    assert isinstance(edit_pipe, AudioEditor)


def test_strength_zero_is_the_reconstruction(edit_pipe) -> None:
    wav = tone(1.0)
    recon = edit_pipe.reconstruct(wav, 24000, seed=5, vocoder_steps=2)
    out = edit_pipe.variation(wav, 24000, "a dog barks", 0.0, seed=5, **FAST)
    assert out.shape == (1, 24000) and torch.equal(out, recon)
    assert not torch.equal(edit_pipe.reconstruct(wav, 24000, seed=6, vocoder_steps=2), recon)


def test_strength_one_is_plain_generation_with_the_same_seed(edit_pipe) -> None:
    wav = tone(1.0)
    out = edit_pipe.variation(wav, 24000, "a dog barks", 1.0, seed=7, **FAST)
    plain = edit_pipe("a dog barks", duration=1.0, steps=4, guidance_scale=3.0, vocoder_steps=2, seed=7)
    assert torch.allclose(out, plain, atol=1e-6, rtol=0)
    half = edit_pipe.variation(wav, 24000, "a dog barks", 0.5, seed=7, **FAST)
    assert not torch.allclose(half, plain, atol=1e-3) and torch.equal(
        half, edit_pipe.variation(wav, 24000, "a dog barks", 0.5, seed=7, **FAST))


def test_variation_keeps_odd_lengths_and_rates(edit_pipe) -> None:
    wav = tone(1.37, 16000)
    out = edit_pipe.variation(wav, 16000, "rain", 0.4, seed=0, **FAST)
    assert out.shape == (1, round(1.37 * 24000))
    long = edit_pipe.variation(tone(4.5), 24000, "rain", 0.3, seed=0, **FAST)  # three 2 s windows
    assert long.shape == (1, 4.5 * 24000) and torch.isfinite(long).all()


def test_inpainting_a_region_longer_than_a_window(edit_pipe) -> None:
    wav = tone(5.0)
    out = edit_pipe.inpaint(wav, 24000, "rain", 0.5, 4.5, seed=4, **FAST)
    recon = edit_pipe.reconstruct(wav, 24000, seed=4, vocoder_steps=2)
    assert torch.equal(out[..., :12000], recon[..., :12000]) and torch.equal(out[..., 108000:], recon[..., 108000:])
    assert not torch.allclose(out[..., 12000:108000], recon[..., 12000:108000], atol=1e-3)


def test_inpainting_holds_the_outside_at_every_step(edit_pipe) -> None:
    wav = tone(2.0)  # 50 frames = one window of the tiny pipeline
    known = edit_pipe.encode_audio(wav, 24000)
    seen: list[torch.Tensor] = []
    out = edit_pipe.inpaint(wav, 24000, "a door slams", 0.8, 1.2, fade=0.08, seed=3,
                            callback=lambda i, x: seen.append(x.detach().cpu().clone()), **FAST)
    held = torch.ones(50, dtype=torch.bool)
    held[20:30] = False
    sigmas = make_schedule("sway", 4).sigmas
    assert len(seen) == 5  # one window, 4 steps + the sway schedule's no-op evaluation
    noise = seen[0]  # sigma = 1: the held frames first see the window's noise itself
    for i, x in enumerate(seen):
        assert torch.allclose(x[..., held], noisy(known, noise, sigmas[i])[..., held], atol=1e-5)
    assert not torch.allclose(seen[-1][..., ~held], noisy(known, noise, sigmas[4])[..., ~held], atol=1e-2)
    recon = edit_pipe.reconstruct(wav, 24000, seed=3, vocoder_steps=2)
    assert out.shape == recon.shape == (1, 48000)
    outside = torch.ones(48000, dtype=torch.bool)
    outside[round(0.8 * 24000):round(1.2 * 24000)] = False
    assert torch.equal(out[..., outside], recon[..., outside])
    assert not torch.allclose(out[..., ~outside], recon[..., ~outside], atol=1e-3)


def test_continuation_starts_with_the_input(edit_pipe) -> None:
    wav = tone(1.0)
    out = edit_pipe.extend(wav, 24000, 3.0, "rain", seed=1, fade=0.1, **FAST)
    recon = edit_pipe.reconstruct(wav, 24000, seed=1, vocoder_steps=2)
    assert out.shape == (1, 24000 + 72000)
    assert torch.equal(out[..., :24000 - 2400], recon[..., :24000 - 2400])
    orig = edit_pipe.extend(wav, 24000, 0.5, None, seed=1, keep="original", fade=0.1, **FAST)
    assert orig.shape == (1, 36000) and torch.equal(orig[..., :21600], wav[..., :21600])
    back = edit_pipe.extend(wav, 24000, 2.5, "rain", before=True, seed=1, fade=0.1, **FAST)
    assert back.shape == (1, 60000 + 24000) and torch.equal(back[..., 60000 + 2400:], recon[..., 2400:])


@pytest.mark.parametrize("duration", [0.5, 1.37, 5.3])
def test_generate_writes_exact_sample_counts(edit_pipe, duration: float) -> None:
    out = edit_pipe.generate("rain", duration, seed=0, **FAST)
    assert out.shape == (1, round(duration * 24000)) and torch.isfinite(out).all()


def test_long_form_with_prompt_schedule_is_reproducible(edit_pipe) -> None:
    schedule = [(0.0, "rain"), (2.5, "thunder storm")]
    a = edit_pipe.generate(schedule, 5.0, seed=2, overlap=0.5, blend=0.2, **FAST)
    b = edit_pipe.generate(schedule, 5.0, seed=2, overlap=0.5, blend=0.2, **FAST)
    c = edit_pipe.generate("rain", 5.0, seed=2, overlap=0.5, blend=0.2, **FAST)
    assert a.shape == (1, 120000) and torch.equal(a, b) and not torch.allclose(a[..., 90000:], c[..., 90000:])
    assert torch.allclose(a[..., :40000], c[..., :40000])  # same prompt and noise until the schedule changes


def test_chunked_decoding_matches_one_pass_away_from_joins(edit_pipe) -> None:
    latents = edit_pipe.encode_audio(tone(3.0), 24000)
    one = edit_pipe.decode_latents(latents, generator=torch.Generator().manual_seed(0), vocoder_steps=2)
    edit_pipe.decode_chunk_seconds = 1.2
    try:
        chunked = edit_pipe.decode_latents(latents, generator=torch.Generator().manual_seed(0), vocoder_steps=2)
    finally:
        edit_pipe.decode_chunk_seconds = 10.0
    assert chunked.shape == one.shape == (1, 72000)
    diff = (chunked - one).abs()
    assert diff[..., :4800].max() < 1e-4  # far from the first join (0.2 s): the same to round-off
    assert diff.pow(2).mean().sqrt() < 0.2 * one.pow(2).mean().sqrt()  # cross-faded joins, not broken ones


@pytest.mark.parametrize("call", [
    lambda p, w: p.variation(w, 24000, "rain", 1.5),
    lambda p, w: p.variation(w, 24000, "rain", float("nan")),
    lambda p, w: p.variation(w, 24000, " ", 0.5),
    lambda p, w: p.inpaint(w, 24000, "rain", 0.5, 2.0),  # the clip is 1 s
    lambda p, w: p.inpaint(w, 24000, "rain", 0.6, 0.4),
    lambda p, w: p.extend(w, 24000, 0.0, "rain"),
    lambda p, w: p.extend(w, 24000, 4000.0, "rain"),
    lambda p, w: p.generate("rain", 3601.0),
    lambda p, w: p.generate("rain", 4.0, overlap=3.0),
    lambda p, w: p.generate("", 4.0),
])
def test_bad_arguments_raise_config_errors(edit_pipe, call) -> None:
    with pytest.raises(ConfigError):
        call(edit_pipe, tone(1.0))
