"""The pipeline's sampler settings: solvers wired through generation, editing, the vocoder, the release and the CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from sara.errors import ConfigError
from sara.flow.solvers import SOLVERS
from sara.pipelines.sampling import SamplerSettings, vocoder_sampler_kwargs
from sara.pipelines.text_to_audio import TextToAudio


@pytest.fixture()
def pipe(tiny_pipe):
    """The session's tiny pipeline with its sampler restored after each test."""
    saved = tiny_pipe.sampling
    yield tiny_pipe
    tiny_pipe.sampling = saved


def test_settings_are_checked_and_round_trip() -> None:
    s = SamplerSettings(steps=12, solver="dpm2m", vocoder_steps=8, vocoder_solver="heun", vocoder_grid="sway")
    assert SamplerSettings.from_dict(s.to_dict()) == s
    assert SamplerSettings.from_dict(None) == SamplerSettings.official() == SamplerSettings()
    assert s.updated(solver=None, steps=20).steps == 20 and s.updated(solver=None).solver == "dpm2m"
    for bad in ({"solver": "rk4"}, {"vocoder_solver": "x"}, {"vocoder_grid": "cosine"}, {"steps": 0},
                {"vocoder_steps": 10_001}, {"steps": True}):
        with pytest.raises(ConfigError):
            SamplerSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown config keys"):
        SamplerSettings.from_dict({"sampler": "heun"})
    assert vocoder_sampler_kwargs("euler", "uniform") == {}
    assert vocoder_sampler_kwargs("heun", "uniform") == {"solver": "heun", "grid": "uniform"}


def test_release_stores_the_sampler(pipe, tmp_path) -> None:
    pipe.set_sampler(steps=7, solver="ab2", vocoder_steps=3, vocoder_solver="midpoint", vocoder_grid="shifted")
    out = pipe.save_pretrained(tmp_path / "r")
    stored = json.loads((out / "config.json").read_text())["config"]["sampling"]
    assert stored == {"steps": 7, "solver": "ab2", "vocoder_steps": 3, "vocoder_solver": "midpoint",
                      "vocoder_grid": "shifted"}
    assert TextToAudio.from_pretrained(out).sampling == pipe.sampling


def test_release_without_sampling_gets_the_official_sampler(tiny_release, tmp_path) -> None:
    import shutil

    copy = shutil.copytree(tiny_release, tmp_path / "old")
    payload = json.loads((copy / "config.json").read_text())
    payload["config"].pop("sampling", None)  # a release written before the sampler settings existed
    (copy / "config.json").write_text(json.dumps(payload))
    assert TextToAudio.from_pretrained(copy).sampling == SamplerSettings.official()


def test_euler_default_is_the_official_sampler_bit_for_bit(pipe) -> None:
    from sara.flow.sampling import euler_sample
    from sara.flow.timesteps import make_schedule

    gen = torch.Generator().manual_seed(3)
    latents = pipe.generate_latents(["rain"], 0.4, steps=5, generator=gen)
    x = torch.randn(1, pipe.dit.config.latent_dim, latents.shape[-1], generator=torch.Generator().manual_seed(3))
    velocity = pipe._velocity(pipe.encode_text(["rain"]), pipe.default_guidance)
    assert torch.equal(latents, euler_sample(velocity, pipe.dit.drop_unseen(x), make_schedule("sway", 5),
                                             skip_noop=True))


@pytest.mark.parametrize("solver", SOLVERS)
def test_every_solver_makes_finite_audio_of_the_right_length(pipe, solver: str) -> None:
    wav = pipe(["a dog barks"], duration=0.4, steps=3, vocoder_steps=2, seed=0, solver=solver,
               vocoder_solver=solver, vocoder_grid="sway")
    assert wav.shape == (1, 10 * 960) and torch.isfinite(wav).all()
    pipe.set_sampler(solver=solver, vocoder_solver=solver)
    long = pipe.generate("a dog barks", 0.5, steps=2, vocoder_steps=2, seed=0)  # the windowed (masked) path
    assert long.shape == (1, 12000) and torch.isfinite(long).all()


def test_solver_changes_the_latents_and_counts_calls(pipe) -> None:
    calls: list[int] = []
    real = pipe.dit.forward
    pipe.dit.forward = lambda *a, **k: calls.append(1) or real(*a, **k)  # type: ignore[method-assign]
    try:
        a = pipe.generate_latents(["rain"], 0.4, steps=4, generator=torch.Generator().manual_seed(0))
        n_euler = len(calls)
        b = pipe.generate_latents(["rain"], 0.4, steps=4, generator=torch.Generator().manual_seed(0), solver="heun")
    finally:
        del pipe.dit.forward
    assert n_euler == pipe.dit_calls(4, "euler") == 4  # the sway schedule's no-op step is skipped
    assert len(calls) - n_euler == pipe.dit_calls(4, "heun") == 7
    assert not torch.equal(a, b) and torch.isfinite(b).all()


def test_set_sampler_rejects_bad_values_in_one_line(pipe) -> None:
    with pytest.raises(ConfigError, match="unknown solver 'rk4'"):
        pipe.set_sampler(solver="rk4")
    with pytest.raises(ConfigError, match="unknown vocoder grid"):
        pipe.set_sampler(vocoder_grid="cosine")
    with pytest.raises(ConfigError, match="unknown solver"):
        pipe(["rain"], duration=0.4, steps=1, vocoder_steps=1, solver="rk4")


def test_masked_solvers_converge_to_the_same_held_result() -> None:
    """Inpainting with held frames: every solver approaches the many-step Euler result as steps grow."""
    from sara.edit.sampler import masked_sample
    from sara.flow.timesteps import make_schedule

    target = torch.linspace(-1, 1, 12).repeat(1, 3, 1)

    def velocity(x, t):  # a smooth non-linear field pulling towards ``target`` (t: sigma * 1000)
        sigma = float(t) / 1000
        return (x - target) / max(sigma, 1e-3) + 0.3 * torch.sin(x)

    noise, known = torch.randn(1, 3, 12), torch.zeros(1, 3, 12)
    mask = (torch.arange(12) < 4).float()
    ref = masked_sample(velocity, noise, make_schedule("sway", 2000), known=known, mask=mask)
    for solver in ("heun", "midpoint", "dpm2m", "ab2"):
        errors = [float((masked_sample(velocity, noise, make_schedule("sway", n), solver=solver, known=known,
                                       mask=mask) - ref).norm()) for n in (4, 16, 64)]
        assert errors[2] < errors[1] < errors[0], (solver, errors)
        out = masked_sample(velocity, noise, make_schedule("sway", 8), solver=solver, known=known, mask=mask)
        assert torch.equal(out[..., :4], known[..., :4]) and math.isfinite(float(out.sum()))


def test_vocoder_solvers_and_chunking(pipe) -> None:
    voc = pipe.vocoder
    z = torch.randn(1, voc.latent_dim, 30)
    noise = torch.randn(1, 30 * 960)
    full = voc.decode(z, steps=2, noise=noise, solver="heun", grid="sway")
    saved = voc.chunk_frames, voc.overlap_frames
    voc.chunk_frames, voc.overlap_frames = 20, 10
    try:
        chunked = voc.decode(z, steps=2, noise=noise, solver="heun", grid="sway")
    finally:
        voc.chunk_frames, voc.overlap_frames = saved
    assert chunked.shape == full.shape == (1, 28800) and torch.isfinite(chunked).all()
    torch.testing.assert_close(chunked[:, : 10 * 960], full[:, : 10 * 960], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(chunked[:, 25 * 960 :], full[:, 25 * 960 :], atol=1e-5, rtol=1e-4)
    assert not torch.equal(full, voc.decode(z, steps=2, noise=noise))
    with pytest.raises(ConfigError, match="unknown grid"):
        voc.decode(z, steps=2, noise=noise, grid="cosine")


def test_cli_solver_flags(tiny_release, tmp_path, capsys) -> None:
    from sara.cli.__main__ import main

    out = tmp_path / "a.wav"
    assert main(["generate", "rain", "-o", str(out), "--model", str(tiny_release), "--duration", "0.4",
                 "--steps", "3", "--vocoder-steps", "2", "--solver", "dpm2m", "--vocoder-solver", "heun",
                 "--vocoder-grid", "sway", "--threads", "1"]) == 0
    assert out.is_file()
    assert main(["generate", "rain", "-o", str(out), "--model", str(tiny_release), "--solver", "rk4"]) == 2
    assert "invalid choice: 'rk4'" in capsys.readouterr().err


def test_sampler_flags_are_refused_for_other_systems() -> None:
    import argparse

    from sara.cli._sampler import refuse_sampler

    refuse_sampler(argparse.Namespace(solver=None, vocoder_solver=None, vocoder_grid=None), "tango")
    with pytest.raises(ConfigError, match="--vocoder-grid applies to SARA .* not to tango models"):
        refuse_sampler(argparse.Namespace(solver=None, vocoder_solver=None, vocoder_grid="sway"), "tango")
