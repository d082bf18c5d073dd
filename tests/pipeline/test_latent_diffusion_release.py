"""sara LatentDiffusion releases: save/load round trips (from a Tango directory and for the MiniLM demo layout),
stored defaults, strict errors, the export helper and the ``sara generate`` LDM branch."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
import torch

from sara.errors import CheckpointError, ConfigError
from sara.pipelines.latent_diffusion import LatentDiffusion, LDMDefaults, ldm_text_encoder
from tests.pipeline.tango_layout import write_flan_t5_dir, write_tango_dir

PROMPT = ["a dog barks"]


def tiny_minilm_pipeline(seed: int = 0) -> LatentDiffusion:
    """MiniLM text (384-d) + tiny UNet / VAE / HiFi-GAN on 16 mel bins; defaults: 2 DDIM steps, w 2.5, 0.5 s."""
    import dataclasses

    from sara.ldm.config import UNetConfig
    from sara.ldm.unet import build_unet
    from sara.mel.frontend import MelConfig
    from sara.mel.hifigan import HiFiGAN, HiFiGANConfig
    from sara.mel.vae import MelVAE, MelVAEConfig
    from sara.text.factory import TextEncoderSpec

    torch.manual_seed(seed)
    unet = build_unet(dataclasses.replace(UNetConfig.tiny(), cross_attention_dim=384))
    spec = TextEncoderSpec()
    return LatentDiffusion(unet, MelVAE(MelVAEConfig.tiny()), _fan_in_init(HiFiGAN(HiFiGANConfig.tiny()), seed),
                           ldm_text_encoder(spec, Path.cwd()), mel_config=MelConfig.tiny(),
                           defaults=LDMDefaults(steps=2, guidance_scale=2.5, duration=0.5, sampler="ddim"),
                           text_encoder_spec=spec)


def _fan_in_init(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Weights ~ N(0, 1 / fan_in), biases ~ N(0, 0.1): HiFi-GAN's own N(0, 0.01) init makes a tiny generator's
    output almost independent of its input, which would hide a wrong mel."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 0
            p.copy_(torch.randn(p.shape, generator=g) * (fan_in ** -0.5 if fan_in else 0.1))
    return module


@pytest.fixture(scope="module")
def minilm_pipe() -> LatentDiffusion:
    return tiny_minilm_pipeline()


@pytest.fixture(scope="module")
def minilm_release(minilm_pipe, tmp_path_factory) -> Path:
    return minilm_pipe.save_pretrained(tmp_path_factory.mktemp("rel") / "ldm")


@pytest.fixture(scope="module")
def tango_dir(tmp_path_factory) -> Path:
    t5 = write_flan_t5_dir(tmp_path_factory.mktemp("t5") / "tiny-t5")
    return write_tango_dir(tmp_path_factory.mktemp("tango") / "tango", t5)


# ------------------------------------------------------------------------------------------ round trips


def test_tango_pipeline_saved_as_a_release_generates_identically(tango_dir, tmp_path) -> None:
    pipe = LatentDiffusion.from_pretrained(tango_dir)
    out = pipe.save_pretrained(tmp_path / "rel")
    payload = json.loads((out / "config.json").read_text())
    assert payload["class"] == "LatentDiffusion" and payload["format_version"] == 1
    assert payload["config"]["text_encoder"] == {"kind": "t5", "path": "text_encoder"}
    assert payload["config"]["defaults"] == {"steps": 200, "guidance_scale": 3.0, "duration": 10.24,
                                             "sampler": "ddpm"}
    assert all((out / d / "config.json").is_file() for d in ("unet", "vae", "vocoder", "text_encoder"))
    again = LatentDiffusion.from_pretrained(out)
    a = pipe(PROMPT, duration=0.32, steps=2, seed=5)
    assert torch.equal(a, again(PROMPT, duration=0.32, steps=2, seed=5))


def test_minilm_release_round_trip_keeps_weights_and_defaults(minilm_pipe, minilm_release) -> None:
    payload = json.loads((minilm_release / "config.json").read_text())
    assert payload["config"]["text_encoder"] == {"kind": "minilm", "path": None}
    assert payload["components"] == {"unet": "unet", "vae": "vae", "vocoder": "vocoder"}
    assert not (minilm_release / "text_encoder").exists()  # the packaged MiniLM is named, not copied
    again = LatentDiffusion.from_pretrained(minilm_release)
    assert again.defaults == minilm_pipe.defaults and again.mel_config == minilm_pipe.mel_config
    a = again(PROMPT, seed=1)
    assert a.shape == (1, 8000)  # the stored default duration, 0.5 s
    assert torch.equal(a, minilm_pipe(PROMPT, seed=1))
    assert torch.equal(again(PROMPT, seed=1, sampler="ddpm"), minilm_pipe(PROMPT, seed=1, sampler="ddpm"))


def test_parts_that_do_not_fit_are_refused(minilm_pipe) -> None:
    from sara.mel.hifigan import HiFiGAN, HiFiGANConfig

    with pytest.raises(CheckpointError, match="vocoder mel bins 64"):
        LatentDiffusion(minilm_pipe.unet, minilm_pipe.vae, HiFiGAN(HiFiGANConfig.small()), minilm_pipe.text_encoder,
                        mel_config=minilm_pipe.mel_config)


def test_release_defaults_can_be_changed_after_export(minilm_release, tmp_path) -> None:
    from sara.pipelines.latent_diffusion import set_release_defaults

    rel = shutil.copytree(minilm_release, tmp_path / "rel")
    assert set_release_defaults(rel, steps=4, sampler="unipc") == LDMDefaults(steps=4, guidance_scale=2.5,
                                                                             duration=0.5, sampler="unipc")
    assert LatentDiffusion.from_pretrained(rel).defaults.sampler == "unipc"
    with pytest.raises(ConfigError, match="unknown config keys"):
        set_release_defaults(rel, cfg=2.0)
    with pytest.raises(ConfigError, match="duration"):
        set_release_defaults(rel, duration=0.0)
    with pytest.raises(CheckpointError, match="not a sara LatentDiffusion or DCLDM release"):
        set_release_defaults(rel / "unet", steps=2)


# ------------------------------------------------------------------------------------------ errors


def _broken(release: Path, dst: Path) -> Path:
    shutil.copytree(release, dst)
    return dst


def test_release_errors_are_one_line(minilm_release, tmp_path) -> None:
    no_vae = _broken(minilm_release, tmp_path / "a")
    shutil.rmtree(no_vae / "vae")
    with pytest.raises(CheckpointError, match=r"\['vae'\]"):
        LatentDiffusion.from_pretrained(no_vae)
    bad = _broken(minilm_release, tmp_path / "b")
    payload = json.loads((bad / "config.json").read_text())
    payload["config"]["defaults"]["steps"] = 0
    (bad / "config.json").write_text(json.dumps(payload))
    with pytest.raises(ConfigError, match="steps") as info:
        LatentDiffusion.from_pretrained(bad)
    assert "\n" not in str(info.value)
    payload["config"]["vae_scale"] = 1.0
    (bad / "config.json").write_text(json.dumps(payload))
    with pytest.raises(CheckpointError, match="vae_scale"):
        LatentDiffusion.from_pretrained(bad)
    with pytest.raises(CheckpointError, match="neither a Tango directory"):
        LatentDiffusion.from_pretrained(minilm_release / "unet")


# ------------------------------------------------------------------------------------------ export + CLI


def test_export_assembles_a_loadable_release(minilm_pipe, tmp_path) -> None:
    from sara.cli._ldm_generate import export_ldm_release
    from sara.ldm.unet import save_unet_release
    from sara.text.factory import TextEncoderSpec

    save_unet_release(minilm_pipe.unet, tmp_path / "u")
    minilm_pipe.vae.save_pretrained(tmp_path / "v")
    minilm_pipe.vocoder.save_pretrained(tmp_path / "h")
    out = export_ldm_release(tmp_path / "u", tmp_path / "v", tmp_path / "h", TextEncoderSpec(), tmp_path / "rel",
                             {"steps": 3, "duration": 0.25})
    pipe = LatentDiffusion.from_pretrained(out)
    assert pipe.defaults == LDMDefaults(steps=3, duration=0.25)
    assert torch.equal(pipe(PROMPT, seed=0, sampler="ddim", guidance_scale=2.5, steps=2, duration=0.5),
                       minilm_pipe(PROMPT, seed=0))
    with pytest.raises(ConfigError, match="sampler"):
        export_ldm_release(tmp_path / "u", tmp_path / "v", tmp_path / "h", {"kind": "minilm"}, tmp_path / "x",
                           {"sampler": "heun"})


def _args(**kw) -> argparse.Namespace:
    base = {"prompt": "a dog barks", "output": None, "captions": None, "output_dir": "outputs", "duration": None,
            "steps": None, "cfg": None, "seed": 42, "vocoder_steps": None, "negative_prompt": None}
    return argparse.Namespace(**{**base, **kw})


def test_cli_branch_writes_16_khz_audio_with_the_model_defaults(minilm_pipe, tmp_path) -> None:
    from sara.cli._ldm_generate import run_latent_diffusion

    out = tmp_path / "dog.wav"
    assert run_latent_diffusion(_args(output=str(out)), minilm_pipe) == 0
    audio, sr = sf.read(out)
    assert sr == 16000 and audio.shape == (8000,)
    assert run_latent_diffusion(_args(output=str(out), duration=0.3, sampler="unipc", cfg=0.0), minilm_pipe) == 0
    assert sf.read(out)[0].shape == (4800,)
    with pytest.raises(ConfigError, match="--vocoder-steps"):
        run_latent_diffusion(_args(output=str(out), vocoder_steps=4), minilm_pipe)
    with pytest.raises(ConfigError, match="--acoustic-from"):
        run_latent_diffusion(_args(output=str(out), acoustic_from="ref.wav"), minilm_pipe)
    with pytest.raises(ConfigError, match="steps"):
        run_latent_diffusion(_args(output=str(out), steps=0), minilm_pipe)


def test_cli_batch_mode_is_resumable(minilm_pipe, tmp_path) -> None:
    from sara.cli._ldm_generate import run_latent_diffusion

    captions = tmp_path / "caption.jsonl"
    captions.write_text('{"audio_id": "Yaaa.wav", "caption": "a dog barks"}\n'
                        '{"audio_id": "Ybbb.wav", "caption": "a dog barks"}\n'
                        '{"audio_id": "Ybbb.wav", "caption": "a dog barks"}\n')
    args = _args(prompt=None, captions=str(captions), output_dir=str(tmp_path / "o"), duration=0.2)
    assert run_latent_diffusion(args, minilm_pipe) == 0
    files = sorted((tmp_path / "o").rglob("*.wav"))
    assert [f.name for f in files] == ["Yaaa_a_dog_barks.wav", "Ybbb_a_dog_barks-2.wav", "Ybbb_a_dog_barks.wav"]
    files = [files[0], files[2], files[1]]  # caption-file order
    assert files[0].parent.name == "guidance_scale-2.5_steps-2_sampler-ddim_duration-0.2"
    first, second, third = (sf.read(f)[0] for f in files)
    assert first.shape == (3200,) and not (first == second).all() and not (second == third).all()  # seed + i
    files[1].unlink()
    files[2].unlink()
    run_latent_diffusion(args, minilm_pipe)
    assert (sf.read(files[1])[0] == second).all() and (sf.read(files[2])[0] == third).all()  # resumed identically


def test_export_and_generate_flags(minilm_pipe, tmp_path) -> None:
    """The parser helpers ``sara export`` / ``sara generate`` register, on stand-in parsers with the commands'
    existing positional arguments and shared flags."""
    from sara.cli._ldm_generate import add_ldm_export_arguments, add_ldm_generate_arguments, run_ldm_export
    from sara.ldm.unet import save_unet_release

    save_unet_release(minilm_pipe.unet, tmp_path / "u")
    minilm_pipe.vae.save_pretrained(tmp_path / "v")
    minilm_pipe.vocoder.save_pretrained(tmp_path / "h")
    export = argparse.ArgumentParser()
    for name in ("run_dir", "out_dir"):
        export.add_argument(name)
    export.add_argument("--vocoder")
    export.add_argument("--default-cfg", type=float)
    add_ldm_export_arguments(export)
    args = export.parse_args([str(tmp_path / "u"), str(tmp_path / "rel"), "--vae", str(tmp_path / "v"),
                              "--vocoder", str(tmp_path / "h"), "--default-cfg", "4", "--default-sampler", "unipc"])
    assert run_ldm_export(args) == 0
    assert LatentDiffusion.from_pretrained(tmp_path / "rel").defaults == LDMDefaults(guidance_scale=4.0,
                                                                                     sampler="unipc")
    with pytest.raises(ConfigError, match="--vocoder"):
        run_ldm_export(export.parse_args(["a", "b", "--vae", str(tmp_path / "v")]))
    from sara.cli._ldm_generate import apply_ldm_defaults

    assert apply_ldm_defaults(export.parse_args(["a", "b", "--default-duration", "1.5"]), tmp_path / "rel")
    assert LatentDiffusion.from_pretrained(tmp_path / "rel").defaults.duration == 1.5
    assert not apply_ldm_defaults(export.parse_args(["a", "b"]), tmp_path / "rel")
    generate = argparse.ArgumentParser()
    add_ldm_generate_arguments(generate)
    assert generate.parse_args(["--sampler", "dpmsolver++"]).sampler == "dpmsolver++"
    with pytest.raises(SystemExit):
        generate.parse_args(["--sampler", "euler"])


def _generate_dispatches_ldm() -> bool:
    import inspect

    import sara.cli.generate as generate

    return "run_latent_diffusion" in inspect.getsource(generate)


@pytest.mark.skipif(not _generate_dispatches_ldm(), reason="sara generate does not dispatch to the LDM branch yet")
def test_sara_generate_runs_a_tango_directory(tango_dir, tmp_path) -> None:
    from sara.cli.__main__ import main

    out = tmp_path / "dog.wav"
    assert main(["generate", "--model", str(tango_dir), "a dog barks", "-o", str(out), "--duration", "0.5",
                 "--steps", "2", "--sampler", "ddim"]) == 0
    audio, sr = sf.read(out)
    assert sr == 16000 and audio.shape == (8000,)


def test_decode_benchmark_reports_real_time_factors() -> None:
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_ldm_decode.py"
    spec = importlib.util.spec_from_file_location("bench_ldm_decode", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (result,) = module.main(["--sizes", "tiny", "--seconds", "0.16", "--repeats", "1"])
    assert result["audio_s"] == 0.16 and result["vae_rtf"] > 0 and result["vocoder_rtf"] > 0
    assert result["total_rtf"] == pytest.approx(result["vae_rtf"] + result["vocoder_rtf"], abs=2e-4)
