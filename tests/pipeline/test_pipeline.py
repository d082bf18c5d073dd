"""TextToAudio: generation contracts, CFG/negative prompts, errors, release round trip, T5 encoder."""

from __future__ import annotations

import pytest
import torch

from sara.errors import CheckpointError, SaraError
from sara.pipelines.text_to_audio import TextToAudio
from sara.text import T5TextEncoder


def test_generate_shapes_and_seed(tiny_pipe: TextToAudio) -> None:
    wav = tiny_pipe(["a dog barks", "rain on a roof"], duration=1.0, steps=3, vocoder_steps=2, seed=0)
    assert wav.shape == (2, 24000) and wav.dtype == torch.float32 and torch.isfinite(wav).all()
    again = tiny_pipe(["a dog barks", "rain on a roof"], duration=1.0, steps=3, vocoder_steps=2, seed=0)
    assert torch.equal(wav, again)
    other = tiny_pipe(["a dog barks", "rain on a roof"], duration=1.0, steps=3, vocoder_steps=2, seed=1)
    assert not torch.equal(wav, other)
    assert tiny_pipe("a dog", duration=0.52, steps=1, vocoder_steps=1, seed=0).shape == (1, 13 * 960)


def test_rng_order_dit_noise_then_vocoder_noise(tiny_pipe: TextToAudio) -> None:
    g = torch.Generator().manual_seed(5)
    latents = tiny_pipe.generate_latents(["a bird sings"], 1.0, 2, 3.5, generator=g)
    noise = torch.randn(1, 25 * 960, generator=g)
    want = tiny_pipe.vocoder.decode(latents, steps=2, noise=noise)
    got = tiny_pipe(["a bird sings"], duration=1.0, steps=2, vocoder_steps=2, seed=5)
    assert torch.equal(got, want)


def test_cfg_and_prompts_change_latents(tiny_pipe: TextToAudio) -> None:
    def lat(prompts, scale, neg=None):
        return tiny_pipe.generate_latents(prompts, 1.0, 3, scale, generator=torch.Generator().manual_seed(0),
                                          negative_prompt=neg)

    base = lat(["a dog barks"], 3.5)
    assert not torch.allclose(base, lat(["a car engine"], 3.5))
    assert not torch.allclose(base, lat(["a dog barks"], 1.0))
    assert not torch.allclose(base, lat(["a dog barks"], 3.5, neg="rain"))
    # guidance <= 1 disables CFG, so the negative prompt is unused
    assert torch.equal(lat(["a dog barks"], 1.0), lat(["a dog barks"], 1.0, neg="rain"))


def test_skip_noop_keeps_official_result(tiny_pipe: TextToAudio) -> None:
    kw = dict(prompts=["a dog barks"], duration=1.0, steps=4, guidance_scale=3.5)
    a = tiny_pipe.generate_latents(**kw, generator=torch.Generator().manual_seed(0), skip_noop=False)
    b = tiny_pipe.generate_latents(**kw, generator=torch.Generator().manual_seed(0), skip_noop=True)
    assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs", [{"duration": 0.0}, {"duration": -1.0}, {"duration": float("nan")},
                                    {"duration": 1e6}, {"steps": 0}, {"guidance_scale": float("inf")},
                                    {"vocoder_steps": 0}, {"prompts": [""]}, {"prompts": []}])
def test_bad_arguments_raise_sara_error(tiny_pipe: TextToAudio, kwargs) -> None:
    args = {"prompts": ["a dog"], "duration": 1.0, "steps": 1, "vocoder_steps": 1, **kwargs}
    with pytest.raises(SaraError):
        tiny_pipe(**args)


def test_duration_limit_and_frames(tiny_pipe: TextToAudio) -> None:
    assert tiny_pipe.num_frames(10.0) == 250
    assert tiny_pipe.max_duration == tiny_pipe.dit.config.max_length / 25
    with pytest.raises(SaraError, match="maximum"):
        tiny_pipe.num_frames(tiny_pipe.max_duration + 1)


def test_release_round_trip(tiny_pipe: TextToAudio, tiny_release) -> None:
    loaded = TextToAudio.from_pretrained(tiny_release)
    assert loaded.dit.config == tiny_pipe.dit.config
    a = tiny_pipe(["rain on a roof"], duration=1.0, steps=2, vocoder_steps=2, seed=3)
    b = loaded(["rain on a roof"], duration=1.0, steps=2, vocoder_steps=2, seed=3)
    assert torch.equal(a, b)


def test_not_a_model_dir(tmp_path) -> None:
    with pytest.raises(CheckpointError):
        TextToAudio.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text('{"format_version": 1, "class": "SemanticVocoder", "config": {}}')
    with pytest.raises(CheckpointError, match="not a 'TextToAudio'"):
        TextToAudio.from_pretrained(tmp_path)


def test_t5_encoder_from_dir_and_state_dict(tiny_t5_dir) -> None:
    from transformers import T5EncoderModel

    enc = T5TextEncoder(tiny_t5_dir)
    states, mask = enc.encode(["a dog barks", "rain"])
    assert enc.dim == 16 and states.shape[2] == 16 and mask.sum(1).tolist()[0] > mask.sum(1).tolist()[1]
    sd = T5EncoderModel.from_pretrained(tiny_t5_dir).state_dict()
    sd.pop("encoder.embed_tokens.weight", None)  # tied copy dropped, as HF save_pretrained does
    from_sd = T5TextEncoder(tiny_t5_dir, state_dict=sd)
    assert torch.allclose(from_sd.encode(["a dog barks"])[0], enc.encode(["a dog barks"])[0], atol=1e-6)
    bad = {k: v for k, v in sd.items() if "block.1." not in k}
    with pytest.raises(CheckpointError):
        T5TextEncoder(tiny_t5_dir, state_dict=bad)


def test_release_with_encoder_round_trip(tiny_pipe: TextToAudio, tmp_path) -> None:
    from sara.encoder import EncoderConfig, SemanticEncoder

    torch.manual_seed(0)
    encoder = SemanticEncoder(EncoderConfig(embed_dim=768, depth=1, num_heads=2, target_length=400)).eval()
    pipe = TextToAudio(tiny_pipe.dit, tiny_pipe.text_encoder, tiny_pipe.vocoder, encoder,
                       text_encoder_spec=tiny_pipe.text_encoder_spec)
    loaded = TextToAudio.from_pretrained(pipe.save_pretrained(tmp_path / "rel"))
    assert loaded.encoder is not None and loaded.encoder.config == encoder.config
    wav = torch.randn(1, 16000)
    assert torch.allclose(loaded.encoder.encode(wav, 16000), encoder.encode(wav, 16000), atol=1e-5)


def test_train_t2a_flags_with_t5_set_text_width(tiny_t5_dir) -> None:
    import argparse

    from sara.cli import train_t2a

    parser = argparse.ArgumentParser()
    train_t2a.add_arguments(parser)
    args = parser.parse_args(["--data", "m.jsonl", "--latent-cache", "lat", "--latent-dim", "16", "--preset", "tiny",
                              "--text-encoder", "t5", "--t5-path", str(tiny_t5_dir)])
    task = train_t2a.build_task(args)
    assert task.config.model.text_dim == 16 and task.text_encoder.dim == 16
    assert task.build_model().dit.text_proj.in_features == 16


def test_vocoder_steps_default_to_the_vocoders_own(tiny_pipe: TextToAudio, monkeypatch) -> None:  # noqa: ANN001
    seen = []
    decode = tiny_pipe.vocoder.decode
    monkeypatch.setattr(tiny_pipe.vocoder, "decode", lambda z, steps, noise: seen.append(steps) or decode(z, steps, noise))
    tiny_pipe("a dog", duration=0.2, steps=1, seed=0)
    assert seen == [tiny_pipe.vocoder.config.default_steps]  # e.g. k for a k-step GAN-fine-tuned vocoder


def test_default_duration_is_stored_in_the_release(tiny_pipe: TextToAudio, tmp_path) -> None:
    assert tiny_pipe.default_duration == 10.0  # official length when the release does not say otherwise
    short = TextToAudio(tiny_pipe.dit, tiny_pipe.text_encoder, tiny_pipe.vocoder,
                        text_encoder_spec=tiny_pipe.text_encoder_spec, default_duration=1.2)
    short.save_pretrained(tmp_path / "short")
    loaded = TextToAudio.from_pretrained(tmp_path / "short")
    assert loaded.default_duration == 1.2
    assert loaded(["rain"], steps=1, vocoder_steps=1, seed=0).shape[-1] == 30 * 960
    with pytest.raises(SaraError, match="default_duration"):
        TextToAudio(tiny_pipe.dit, tiny_pipe.text_encoder, tiny_pipe.vocoder,
                    default_duration=tiny_pipe.max_duration + 1)


def test_default_guidance_is_stored_and_used(tiny_pipe: TextToAudio, tmp_path, monkeypatch) -> None:
    assert tiny_pipe.default_guidance == 3.5  # the official scale when the release does not say otherwise
    strong = TextToAudio(tiny_pipe.dit, tiny_pipe.text_encoder, tiny_pipe.vocoder,
                         text_encoder_spec=tiny_pipe.text_encoder_spec, default_guidance=7.0)
    loaded = TextToAudio.from_pretrained(strong.save_pretrained(tmp_path / "g7"))
    assert loaded.default_guidance == 7.0
    TextToAudio.set_default_guidance(tmp_path / "g7", 5.0)
    assert TextToAudio.from_pretrained(tmp_path / "g7").default_guidance == 5.0
    with pytest.raises(SaraError, match="not a sara TextToAudio release"):
        TextToAudio.set_default_guidance(tmp_path / "g7" / "dit", 5.0)
    seen: list[float] = []
    real_velocity = TextToAudio._velocity
    monkeypatch.setattr(TextToAudio, "_velocity",
                        lambda self, text, g, **kw: seen.append(g) or real_velocity(self, text, g, **kw))
    loaded(["rain"], duration=0.2, steps=1, vocoder_steps=1, seed=0)
    loaded(["rain"], duration=0.2, steps=1, vocoder_steps=1, seed=0, guidance_scale=1.0)
    assert seen == [7.0, 1.0]
    with pytest.raises(SaraError, match="default_guidance"):
        TextToAudio(tiny_pipe.dit, tiny_pipe.text_encoder, tiny_pipe.vocoder, default_guidance=float("nan"))
