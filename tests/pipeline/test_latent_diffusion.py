"""LatentDiffusion on a tiny Tango directory in the official layout: loading, Tango's inference semantics, frame
arithmetic, samplers, CFG, strict errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from sara.errors import CheckpointError, ConfigError, SaraError
from sara.pipelines.latent_diffusion import LatentDiffusion
from sara.pipelines.tango import TANGO_FILES, TangoDir, read_tango_dir, resolve_unet_config
from tests.pipeline.tango_layout import stft_state, write_flan_t5_dir, write_tango_dir

PROMPTS = ["a dog barks", "rain on a roof"]


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory) -> Path:
    return write_flan_t5_dir(tmp_path_factory.mktemp("t5") / "tiny-t5")


@pytest.fixture(scope="module")
def tango_dir(tmp_path_factory, t5_dir) -> Path:
    return write_tango_dir(tmp_path_factory.mktemp("tango") / "tango", t5_dir)


@pytest.fixture(scope="module")
def pipe(tango_dir) -> LatentDiffusion:
    return LatentDiffusion.from_pretrained(tango_dir)


def _copy(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> Path:
    """A copy of a Tango directory without the files in ``skip``."""
    shutil.copytree(src, dst, ignore=lambda _d, names: [n for n in names if n in skip])
    return dst


# ------------------------------------------------------------------------------------------ generation


def test_tango_dir_generates_a_10_24_s_clip_deterministically(pipe) -> None:
    assert pipe.sample_rate == 16000 and pipe.defaults.duration == 10.24 and pipe.defaults.steps == 200
    assert pipe.latent_shape(1, pipe.num_frames(10.24)) == (1, 8, 256, 16)  # Tango's prepare_latents shape
    a = pipe(PROMPTS[:1], steps=2, seed=3)
    assert a.shape == (1, 163840) and a.dtype == torch.float32 and bool(torch.isfinite(a).all())
    assert a.abs().max() > 0
    # the waveform is decode_latents(latents) (checked in the durations test); the latents are deterministic
    z3, z3_again, z4 = (pipe.generate_latents(PROMPTS[:1], steps=2, seed=s) for s in (3, 3, 4))
    assert z3.shape == (1, 8, 256, 16) and torch.equal(z3, z3_again) and not torch.equal(z3, z4)


def test_fixed_noise_reproduces_tangos_inference_loop(pipe) -> None:
    """generate_latents(latents=, step_noise=) == Tango's AudioDiffusion.inference written out with the
    pipeline's T5 / UNet and diffusers' own DDPMScheduler.step drawing the same noise from a generator."""
    from sara.ldm.schedulers import make_scheduler

    x0 = torch.randn(2, 8, 4, 16, generator=torch.Generator().manual_seed(0))
    draws = torch.Generator().manual_seed(7)
    noise = torch.stack([torch.randn(2, 8, 4, 16, generator=draws) for _ in range(3)])
    ours = pipe.generate_latents(PROMPTS, steps=3, guidance_scale=3.0, latents=x0, step_noise=noise)
    tok, t5 = pipe.text_encoder.tokenizer, pipe.text_encoder.encoder
    batch = tok(PROMPTS, padding=True, return_tensors="pt")
    uncond = tok([""] * 2, max_length=batch.input_ids.shape[1], padding="max_length", return_tensors="pt")
    sched, gen, x = make_scheduler("ddpm"), torch.Generator().manual_seed(7), x0.clone()
    sched.set_timesteps(3)
    with torch.no_grad():
        states = torch.cat([t5(**uncond).last_hidden_state, t5(**batch).last_hidden_state])
        mask = torch.cat([uncond.attention_mask, batch.attention_mask]) == 1
        for t in sched.timesteps:
            u, c = pipe.unet(torch.cat([x, x]), t, encoder_hidden_states=states, encoder_attention_mask=mask
                             ).sample.chunk(2)
            x = sched.step(u + 3.0 * (c - u), t, x, generator=gen).prev_sample
    assert sched.timesteps.tolist() == [667, 334, 1]
    assert torch.allclose(ours, x, atol=1e-5), (ours - x).abs().max()


def test_seed_draws_initial_noise_then_step_noise(pipe) -> None:
    """The documented random-number order: ``seed`` = initial latent first, then one draw per DDPM step."""
    g = torch.Generator().manual_seed(9)
    x0 = torch.randn(1, 8, 2, 16, generator=g)
    noise = torch.stack([torch.randn(1, 8, 2, 16, generator=g) for _ in range(3)])
    explicit = pipe.generate_latents(PROMPTS[:1], steps=3, latents=x0, step_noise=noise)
    assert torch.allclose(pipe.generate_latents(PROMPTS[:1], steps=3, duration=0.08, seed=9), explicit, atol=1e-6)


def test_step_noise_and_initial_noise_fix_the_result(pipe) -> None:
    x0 = torch.randn(1, 8, 2, 16)
    n1, n2 = torch.randn(2, 1, 8, 2, 16), torch.randn(2, 1, 8, 2, 16)
    a = pipe.generate_latents(PROMPTS[:1], steps=2, latents=x0, step_noise=n1, seed=1)
    assert torch.equal(a, pipe.generate_latents(PROMPTS[:1], steps=2, latents=x0, step_noise=n1, seed=2))
    assert not torch.allclose(a, pipe.generate_latents(PROMPTS[:1], steps=2, latents=x0, step_noise=n2))


@pytest.mark.parametrize("duration, frames", [(1.0, 104), (0.05, 8), (2.56, 256)])
def test_other_durations_round_frames_up_and_trim_the_audio(pipe, duration, frames) -> None:
    assert pipe.frame_multiple == 8  # VAE factor 4 x 2 ** (2 UNet levels - 1)
    assert pipe.num_frames(duration) == frames
    z = pipe.generate_latents(PROMPTS[:1], steps=1, duration=duration, seed=0)
    assert z.shape == (1, 8, frames // 4, 16)
    wav = pipe(PROMPTS[:1], duration=duration, steps=1, seed=0)
    assert wav.shape == (1, round(duration * 16000))
    assert torch.equal(wav, pipe.decode_latents(z)[:, : wav.shape[1]])
    assert not torch.allclose(wav, pipe(PROMPTS[:1], duration=duration, steps=1, seed=1))


def test_cfg_on_and_off(pipe) -> None:
    x0 = torch.randn(1, 8, 2, 16)

    def run(w: float) -> torch.Tensor:
        return pipe.generate_latents(PROMPTS[:1], steps=2, guidance_scale=w, latents=x0, seed=0)

    assert torch.equal(run(1.0), run(0.5))  # w <= 1: conditional branch only, as Tango
    assert not torch.allclose(run(1.0), run(3.0))
    assert not torch.allclose(run(3.0), run(5.0))


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmsolver++", "unipc"])
def test_samplers(pipe, sampler) -> None:
    x0 = torch.randn(2, 8, 2, 16)
    a = pipe.generate_latents(PROMPTS, steps=3, latents=x0, sampler=sampler, seed=0)
    assert a.shape == x0.shape and bool(torch.isfinite(a).all())
    b = pipe.generate_latents(PROMPTS, steps=3, latents=x0, sampler=sampler, seed=1)
    assert torch.equal(a, b) == (sampler != "ddpm")  # only DDPM draws step noise


def test_log_mel_any_rate(pipe) -> None:
    wav = torch.randn(2, 22050)
    assert pipe.log_mel(wav, 22050).shape == (2, 1024, 64)
    assert pipe.log_mel(wav[0], 22050, frames=100).shape == (1, 100, 64)


def test_text_encoding_is_tangos(pipe) -> None:
    states, mask = pipe.encode_text(PROMPTS)
    lengths = [len(pipe.text_encoder.tokenizer(p).input_ids) for p in PROMPTS]
    assert states.shape == (2, max(lengths), 16) and mask.sum(1).tolist() == lengths
    u_states, u_mask = pipe.encode_unconditional((states, mask))
    assert u_states.shape == states.shape and u_mask[:, 0].all()


@pytest.mark.parametrize("kwargs, word", [
    ({"steps": 0}, "steps"), ({"steps": 2.5}, "steps"), ({"steps": float("nan")}, "steps"), ({"guidance_scale": float("nan")}, "guidance_scale"),
    ({"duration": -1.0}, "duration"), ({"duration": 1e6}, "duration"), ({"sampler": "euler"}, "sampler"),
    ({"sampler": "ddim", "step_noise": torch.zeros(1)}, "step_noise"),
    ({"latents": torch.zeros(1, 8, 3, 16)}, "latents"), ({"latents": torch.zeros(1, 4, 2, 16)}, "latents"),
    ({"latents": torch.zeros(1, 8, 2, 16), "duration": 1.0}, "frames"),
])
def test_bad_arguments_are_one_line_config_errors(pipe, kwargs, word) -> None:
    with pytest.raises(ConfigError, match=word) as info:
        pipe.generate_latents(PROMPTS[:1], **{"steps": 1, **kwargs})
    assert "\n" not in str(info.value)


def test_empty_prompts_are_rejected(pipe) -> None:
    for prompts in ([], [""], ["  "]):
        with pytest.raises(ConfigError, match="prompt"):
            pipe(prompts, steps=1)


# ------------------------------------------------------------------------------------------ loading


@pytest.mark.parametrize("missing", TANGO_FILES)
def test_missing_file_is_named(tango_dir, tmp_path, missing) -> None:
    broken = _copy(tango_dir, tmp_path / "t", skip=(missing,))
    with pytest.raises(CheckpointError, match=f"missing {missing}") as info:
        LatentDiffusion.from_pretrained(broken)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("drop", ["unet.conv_in.weight", "text_encoder.encoder.final_layer_norm.weight"])
def test_missing_main_key_is_named(tango_dir, tmp_path, drop) -> None:
    broken = _copy(tango_dir, tmp_path / "t")
    state = torch.load(broken / "pytorch_model_main.bin", weights_only=True)
    del state[drop]
    torch.save(state, broken / "pytorch_model_main.bin")
    with pytest.raises(CheckpointError, match=drop.split(".", 1)[1].replace(".", r"\.")) as info:
        LatentDiffusion.from_pretrained(broken)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("drop", ["decoder.conv_out.weight", "vocoder.conv_post.weight"])
def test_missing_vae_or_vocoder_key_is_named(tango_dir, tmp_path, drop) -> None:
    broken = _copy(tango_dir, tmp_path / "t")
    state = torch.load(broken / "pytorch_model_vae.bin", weights_only=True)
    del state[drop]
    torch.save(state, broken / "pytorch_model_vae.bin")
    with pytest.raises(CheckpointError, match="conv_(out|post)") as info:
        LatentDiffusion.from_pretrained(broken)
    assert "\n" not in str(info.value) and "pytorch_model_vae.bin" in str(info.value)


def test_stable_diffusion_init_keys_are_refused(tango_dir, tmp_path) -> None:
    broken = _copy(tango_dir, tmp_path / "t")
    state = torch.load(broken / "pytorch_model_main.bin", weights_only=True)
    state["group_in.0.weight"] = torch.zeros(512, 8)
    torch.save(state, broken / "pytorch_model_main.bin")
    with pytest.raises(CheckpointError, match="group_in"):
        LatentDiffusion.from_pretrained(broken)


def _hamming_basis(state: dict[str, torch.Tensor]) -> None:
    n = state["stft_fn.forward_basis"].shape[-1]
    hann, hamming = torch.hann_window(n, periodic=True), torch.hamming_window(n, periodic=True)
    state["stft_fn.forward_basis"] = state["stft_fn.forward_basis"] / hann.clamp(min=1e-3) * hamming


@pytest.mark.parametrize("corrupt, name", [
    (lambda st: st.__setitem__("mel_basis", st["mel_basis"] * 1.01), "mel_basis"),  # another mel normalisation
    (_hamming_basis, "stft_fn.forward_basis"),  # another STFT window
    (lambda st: st.pop("stft_fn.inverse_basis"), "stft_fn.inverse_basis"),
])
def test_stored_stft_buffers_must_match_the_front_end(tango_dir, tmp_path, corrupt, name) -> None:
    broken = _copy(tango_dir, tmp_path / "t")
    state = stft_state(json.loads((broken / "stft_config.json").read_text()))
    corrupt(state)
    torch.save(state, broken / "pytorch_model_stft.bin")
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")) as info:
        LatentDiffusion.from_pretrained(broken)
    assert "\n" not in str(info.value) and "pytorch_model_stft.bin" in str(info.value)


def test_unknown_main_config_key_and_missing_t5_are_one_line_errors(tango_dir, tmp_path) -> None:
    broken = _copy(tango_dir, tmp_path / "t")
    cfg = json.loads((broken / "main_config.json").read_text())
    (broken / "main_config.json").write_text(json.dumps({**cfg, "unet_layers": 3}))
    with pytest.raises(CheckpointError, match="unet_layers"):
        LatentDiffusion.from_pretrained(broken)
    (broken / "main_config.json").write_text(json.dumps({**cfg, "text_encoder_name": "google/flan-t5-nowhere"}))
    with pytest.raises(SaraError, match="flan-t5-nowhere") as info:
        LatentDiffusion.from_pretrained(broken)
    assert "\n" not in str(info.value)


def test_without_the_unet_config_file_the_shipped_config_is_chosen_by_t5_width(tango_dir, tmp_path) -> None:
    from sara.ldm.config import UNetConfig

    bare = _copy(tango_dir, tmp_path / "t", skip=("configs",))
    info = read_tango_dir(bare)
    assert resolve_unet_config(info, 1024)[0] == UNetConfig.tango()
    cfg, source = resolve_unet_config(info, 2048)
    assert cfg == UNetConfig.tango_xl() and "tango_xl" in source
    with pytest.raises(CheckpointError, match="diffusion_model_config.json") as err:
        LatentDiffusion.from_pretrained(bare)  # the tiny T5 is 16 wide: no shipped Tango UNet fits
    assert "[1024, 2048]" in str(err.value)


def test_the_unet_config_file_is_resolved_relative_to_the_directory(pipe, tango_dir) -> None:
    assert pipe.unet_config_source == str(tango_dir / "configs" / "diffusion_model_config.json")
    info = TangoDir(path=tango_dir, main_config={"unet_model_config_path": str(tango_dir / "configs" /
                                                 "diffusion_model_config.json")}, stft_config={})
    assert resolve_unet_config(info, 16)[0].block_out_channels == (16, 32)
