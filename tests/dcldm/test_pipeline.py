"""DCLDM pipeline: end to end text -> LM -> encoding -> UNet -> VAE -> vocoder, Eq. 8 guidance against a
hand-written loop, the both-dropped training input equals the unconditional branch, releases, reference audio,
and the acoustic-only baseline."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DConditionModel  # noqa: F401 - imported at collection (slow lazy import)

from sara.dcldm.pipeline import DCLDM
from sara.dcldm.training import joint_dropout
from sara.errors import CheckpointError, ConfigError
from tests.dcldm.fixtures import ACOUSTIC_DIM, randomize_acoustic, tiny_audiogen, tiny_ldm

PROMPTS = ["a dog barks", "rain falls on a tin roof"]


@pytest.fixture(scope="module")
def pipe(t5: Path) -> DCLDM:
    p = DCLDM.from_latent_diffusion(tiny_ldm(t5), tiny_audiogen(t5))
    randomize_acoustic(p.unet, seed=1, scale=0.2)  # as if trained: the acoustic input matters
    return p


def test_zero_init_dcldm_generates_exactly_what_the_ldm_generates(t5: Path) -> None:
    wav = tiny_ldm(t5)(PROMPTS[:1], duration=0.64, steps=2, guidance_scale=4.0, seed=0)
    fresh = DCLDM.from_latent_diffusion(tiny_ldm(t5), tiny_audiogen(t5))
    assert fresh.placements == ("down1", "up1") and fresh.defaults.guidance_scale == 4.0
    assert torch.equal(fresh(PROMPTS[:1], duration=0.64, steps=2, seed=0), wav)


def test_end_to_end_generation_has_the_expected_length(pipe: DCLDM) -> None:
    states, mask = pipe.acoustic_encoding(PROMPTS, duration=0.5, seed=1)
    # 0.5 s -> 50 mel frames, rounded up to 56 (a multiple of 8 for the tiny UNet) -> 0.56 s -> 28 tokens
    assert states.shape == (2, 28, ACOUSTIC_DIM) and mask.all()
    wav = pipe(PROMPTS, duration=0.5, steps=2, seed=0)
    assert wav.shape == (2, 8000) and bool(torch.isfinite(wav).all()) and wav.abs().max() > 0
    assert torch.equal(wav, pipe(PROMPTS, duration=0.5, steps=2, seed=0))
    other = pipe(PROMPTS, duration=0.5, steps=2, seed=0, acoustic=pipe.acoustic_encoding(PROMPTS, 0.5, seed=9))
    assert not torch.allclose(wav, other)  # the acoustic condition steers the (trained) UNet


def test_guidance_is_eq8_with_both_conditions_null(pipe: DCLDM) -> None:
    """generate_latents == a hand-written DDPM loop: v = u + w (c - u), u with "" text and the null acoustic."""
    from sara.ldm.schedulers import make_scheduler

    x0 = torch.randn(2, 8, 16, 4, generator=torch.Generator().manual_seed(0))
    draws = torch.Generator().manual_seed(7)
    noise = torch.stack([torch.randn(2, 8, 16, 4, generator=draws) for _ in range(2)])
    acoustic = pipe.acoustic_encoding(PROMPTS, 0.64, seed=2)
    ours = pipe.generate_latents(PROMPTS, steps=2, guidance_scale=4.0, latents=x0, step_noise=noise,
                                 acoustic=acoustic)
    cond = pipe.encode_text(PROMPTS)
    uncond = pipe.text_encoder.encode_unconditional(2, cond[0].shape[1])
    ac, ac_mask = acoustic
    sched, gen, x = make_scheduler("ddpm"), torch.Generator().manual_seed(7), x0.clone()
    sched.set_timesteps(2)
    with torch.no_grad():
        for t in sched.timesteps:
            c = pipe.unet(x, t, cond[0], encoder_attention_mask=cond[1], acoustic_states=ac, acoustic_mask=ac_mask)
            u = pipe.unet(x, t, uncond[0], encoder_attention_mask=uncond[1], acoustic_states=torch.zeros(2, 1, 8),
                          acoustic_mask=torch.ones(2, 1, dtype=torch.bool))
            x = sched.step(u.sample + 4.0 * (c.sample - u.sample), t, x, generator=gen).prev_sample
    # the pipeline runs both branches as one doubled batch, the reference as two forwards: float32 kernels on a
    # different batch size round differently (3e-5 seen with diffusers 0.42.1); a wrong formula differs by ~0.1
    torch.testing.assert_close(ours, x, rtol=0, atol=1e-4)


def test_both_dropped_training_input_is_the_unconditional_branch(pipe: DCLDM) -> None:
    """What joint condition dropout shows the UNet equals what guidance uses as its unconditional branch."""
    from sara.dcldm.pipeline import _null_like

    x = torch.randn(2, 8, 16, 4, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([900, 20])
    text = pipe.encode_text(PROMPTS)
    ac, ac_mask = pipe.acoustic_encoding(PROMPTS, 0.64, seed=4)
    null_text = pipe.text_encoder.encode_unconditional(2, text[0].shape[1])  # what DCLDMTask drops text to
    with torch.no_grad():
        def run(drop: torch.Tensor) -> torch.Tensor:
            states, mask, acoustic = joint_dropout(text, null_text, ac, drop)
            return pipe.unet(x, t, states, encoder_attention_mask=mask, acoustic_states=acoustic,
                             acoustic_mask=ac_mask).sample

        dropped, kept = run(torch.tensor([True, True])), run(torch.tensor([False, True]))
        uncond_text = pipe.encode_unconditional(text)  # the sampler's unconditional inputs
        null_states, null_mask = _null_like(ac)
        unconditional = pipe.unet(x, t, uncond_text[0], encoder_attention_mask=uncond_text[1],
                                  acoustic_states=null_states, acoustic_mask=null_mask).sample
    torch.testing.assert_close(dropped, unconditional, rtol=0, atol=1e-5)
    assert not torch.allclose(kept[0], unconditional[0], atol=1e-3)
    torch.testing.assert_close(kept[1], unconditional[1], rtol=0, atol=1e-5)


def test_release_round_trip(pipe: DCLDM, tmp_path: Path) -> None:
    wav = pipe(PROMPTS[:1], duration=0.3, steps=2, seed=5)
    out = pipe.save_pretrained(tmp_path / "rel")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["class"] == "DCLDM" and cfg["config"]["placements"] == ["down1", "up1"]
    assert cfg["config"]["acoustic"]["kind"] == "t2a" and cfg["components"]["audiogen"] == "audiogen"
    loaded = DCLDM.from_pretrained(out)
    assert torch.equal(loaded(PROMPTS[:1], duration=0.3, steps=2, seed=5), wav)
    pipe.save_pretrained(tmp_path / "ref", audiogen_path=str(out / "audiogen"))  # AudioGen by reference
    assert not (tmp_path / "ref/audiogen").exists()
    assert torch.equal(DCLDM.from_pretrained(tmp_path / "ref")(PROMPTS[:1], duration=0.3, steps=2, seed=5), wav)
    shared = pipe.save_pretrained(tmp_path / "bundle" / "dcldm", links={  # the bundled demos' layout
        "vae": "../../rel/vae", "vocoder": "../../rel/vocoder", "audiogen": "../../rel/audiogen"})
    assert not any((shared / name).exists() for name in ("vae", "vocoder", "audiogen"))
    assert torch.equal(DCLDM.from_pretrained(shared)(PROMPTS[:1], duration=0.3, steps=2, seed=5), wav)
    with pytest.raises(ConfigError, match="no release there"):
        pipe.save_pretrained(tmp_path / "bad", links={"vae": "../nowhere"})
    with pytest.raises(ConfigError, match="unknown DCLDM components"):
        pipe.save_pretrained(tmp_path / "bad", links={"unet": "../rel/unet"})
    assert not (tmp_path / "bad").exists()
    with pytest.raises(CheckpointError, match="not a 'DCLDM'"):
        DCLDM.from_pretrained(out / "vae")


def test_acoustic_from_a_reference_clip(pipe: DCLDM) -> None:
    clip = 0.2 * torch.sin(torch.arange(8000) / 16000 * 2 * torch.pi * 440)
    acoustic = pipe.acoustic_from_audio(clip, 16000)
    assert acoustic[0].shape == (1, 25, ACOUSTIC_DIM)
    wav = pipe(PROMPTS, duration=0.3, steps=2, seed=0, acoustic=acoustic)  # broadcast to both prompts
    assert wav.shape == (2, 4800)
    with pytest.raises(ConfigError, match="acoustic must be"):
        pipe(PROMPTS, duration=0.3, steps=2, acoustic=(acoustic[0][0], acoustic[1]))


def test_acoustic_only_baseline(t5: Path, tmp_path: Path) -> None:
    from sara.dcldm.unet import DualConditionUNet
    from sara.ldm.config import UNetConfig
    from sara.ldm.unet import build_unet

    ldm = tiny_ldm(t5)
    torch.manual_seed(0)
    unet = DualConditionUNet(build_unet(dataclasses.replace(UNetConfig.tiny(), cross_attention_dim=ACOUSTIC_DIM)),
                             (), ACOUSTIC_DIM)
    base = DCLDM(unet, ldm.vae, ldm.vocoder, None, tiny_audiogen(t5), conditioning="acoustic",
                 mel_config=ldm.mel_config)
    wav = base(PROMPTS[:1], duration=0.3, steps=2, seed=0)
    assert wav.shape == (1, 4800) and bool(torch.isfinite(wav).all())
    base.save_pretrained(tmp_path / "ac")
    assert torch.equal(DCLDM.from_pretrained(tmp_path / "ac")(PROMPTS[:1], duration=0.3, steps=2, seed=0), wav)
    with pytest.raises(CheckpointError, match="no placements"):
        DCLDM(DualConditionUNet(build_unet(dataclasses.replace(UNetConfig.tiny(), cross_attention_dim=8)),
                                ("up1",), 8), ldm.vae, ldm.vocoder, None, tiny_audiogen(t5), conditioning="acoustic",
              mel_config=ldm.mel_config)


def test_from_a_tango_directory(t5: Path, tmp_path: Path) -> None:
    """A Tango directory (official layout, tiny) becomes a DC-LDM that generates exactly Tango's audio at init;
    positions without cross-attention transformers are refused with one line."""
    from sara.pipelines.latent_diffusion import LatentDiffusion
    from tests.pipeline.tango_layout import write_flan_t5_dir, write_tango_dir

    tango = write_tango_dir(tmp_path / "tango", write_flan_t5_dir(tmp_path / "flan"))
    ldm, audiogen = LatentDiffusion.from_pretrained(tango), tiny_audiogen(t5)
    wav = ldm(PROMPTS[:1], duration=0.32, steps=2, seed=1, guidance_scale=4.0)
    with pytest.raises(ConfigError, match="placement 'down1'.*no cross-attention"):
        DCLDM.from_latent_diffusion(ldm, audiogen)  # this tiny Tango UNet has attention in its inner levels only
    pipe = DCLDM.from_latent_diffusion(ldm, audiogen, ("mid",))
    assert torch.equal(pipe(PROMPTS[:1], duration=0.32, steps=2, seed=1), wav)
    assert pipe.unet.num_added_parameters() > 0 and pipe.placements == ("mid",)
