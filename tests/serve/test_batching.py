"""Concurrent compatible requests run in one forward pass; incompatible ones and ``batching=False`` do not;
a batched SARA result equals the unbatched one for the same seed."""

from __future__ import annotations

import pytest
import torch

from sara.serve.backends import SaraBackend
from sara.serve.limits import GenerateParams
from tests.serve.conftest import make_client, wait_state


def _submit_behind_a_running_job(client, fake, bodies):  # noqa: ANN001, ANN202
    """Hold the worker on a first job, queue ``bodies``, release it; the ids of the queued jobs."""
    fake.gate.clear()
    first = client.post("/v1/generate", json={"prompt": "first"}).json()["id"]
    assert fake.entered.wait(10)
    ids = [client.post("/v1/generate", json=b).json()["id"] for b in bodies]
    fake.gate.set()
    return [wait_state(client, i) for i in [first, *ids]]


def test_compatible_requests_share_one_forward_pass(fake, tmp_path) -> None:
    bodies = [{"prompt": f"p{i}", "seed": i} for i in range(4)] + [{"prompt": "other", "steps": 2}]
    with make_client(fake, tmp_path, batch_window=0.0, max_batch=8) as client:
        jobs = _submit_behind_a_running_job(client, fake, bodies)
    assert fake.calls == [1, 4, 1]  # different steps cannot share a pass
    assert fake.prompts[1] == ["p0", "p1", "p2", "p3"]
    assert [j["result"]["batch_size"] for j in jobs] == [1, 4, 4, 4, 4, 1]
    assert all(j["state"] == "done" for j in jobs)


def test_max_batch_and_no_batching(fake, tmp_path) -> None:
    bodies = [{"prompt": f"p{i}"} for i in range(5)]
    with make_client(fake, tmp_path, batch_window=0.0, max_batch=2) as client:
        _submit_behind_a_running_job(client, fake, bodies)
    assert fake.calls == [1, 2, 2, 1]
    fake.calls.clear()
    with make_client(fake, tmp_path, batch_window=0.0, batching=False) as client:
        _submit_behind_a_running_job(client, fake, bodies)
    assert fake.calls == [1] * 6


def test_batch_window_gathers_concurrent_requests(fake, tmp_path) -> None:
    """With an idle worker, requests arriving within the window run together."""
    with make_client(fake, tmp_path, batch_window=0.5) as client:
        ids = [client.post("/v1/generate", json={"prompt": f"p{i}"}).json()["id"] for i in range(3)]
        jobs = [wait_state(client, i) for i in ids]
    assert fake.calls == [3] and {j["result"]["batch_size"] for j in jobs} == {3}


@pytest.fixture(scope="module")
def tiny_sara():  # noqa: ANN201 - TextToAudio
    """A tiny random TextToAudio (MiniLM text encoder, tiny DiT and vocoder), as in tests/pipeline."""
    from sara.dit import DiTConfig, LatentDiT
    from sara.pipelines.text_to_audio import TextToAudio
    from sara.text import MiniLMTextEncoder, TextEncoderSpec
    from sara.vocoder import SemanticVocoder, VocoderConfig
    from tests.pipeline.t2a_fixtures import randomize

    torch.manual_seed(0)
    dit = randomize(LatentDiT(DiTConfig.tiny()), seed=1, scale=0.05)
    return TextToAudio(dit, MiniLMTextEncoder(), SemanticVocoder(VocoderConfig.tiny()),
                       text_encoder_spec=TextEncoderSpec())


def _params(prompt: str, seed: int, negative: str | None = None) -> GenerateParams:
    return GenerateParams(model="tiny", prompt=prompt, negative_prompt=negative, duration=0.4, steps=3, guidance=2.5,
                          vocoder_steps=2, seed=seed, format="wav")


def test_sara_batch_equals_unbatched_calls(tiny_sara) -> None:
    backend = SaraBackend(tiny_sara, "sara-t2a")
    batch = [_params("a dog barks", 1, "noise"), _params("rain on a roof", 2, "hum")]
    assert backend.batch_key(batch[0]) == backend.batch_key(batch[1])  # different seeds still batch
    fractions: list[float] = []
    wavs = backend.generate(batch, fractions.append)
    for p, wav in zip(batch, wavs):
        alone = tiny_sara([p.prompt], duration=p.duration, steps=p.steps, guidance_scale=p.guidance,
                          vocoder_steps=p.vocoder_steps, seed=p.seed, negative_prompt=p.negative_prompt)[0]
        assert wav.shape == (round(0.4 * tiny_sara.sample_rate),)
        torch.testing.assert_close(wav, alone[: wav.shape[0]], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(wavs[0], wavs[1])
    assert fractions == sorted(fractions) and 0 < fractions[-1] <= 1


def test_sara_requests_share_one_vocoder_pass(tiny_sara, tmp_path, monkeypatch) -> None:
    calls: list[int] = []
    decode = tiny_sara.vocoder.decode
    monkeypatch.setattr(tiny_sara.vocoder, "decode", lambda z, **kw: calls.append(z.shape[0]) or decode(z, **kw))
    backend = SaraBackend(tiny_sara, "sara-t2a")
    body = {"duration": 0.4, "steps": 3, "vocoder_steps": 2}
    with make_client(backend, tmp_path, batch_window=1.0) as client:
        ids = [client.post("/v1/generate", json={"prompt": f"sound {i}", "seed": i, **body}).json()["id"]
               for i in range(3)]
        jobs = [wait_state(client, i) for i in ids]
    assert calls == [3]
    assert [j["result"]["batch_size"] for j in jobs] == [3, 3, 3]


def test_latent_diffusion_batch_equals_unbatched_calls() -> None:
    from sara.errors import ConfigError
    from sara.serve.backends import LatentDiffusionBackend
    from sara.serve.config import Limits
    from sara.serve.limits import GenerateRequest
    from tests.pipeline.test_latent_diffusion_release import tiny_minilm_pipeline

    pipe = tiny_minilm_pipeline()
    backend = LatentDiffusionBackend(pipe, "sara-ldm")
    assert backend.per_row_seeds  # DDIM: per-row initial noise
    batch = [backend.resolve(GenerateRequest(prompt=p, seed=s), "tiny", Limits())
             for p, s in (("a dog barks", 3), ("rain", 4))]
    assert batch[0].steps == 2 and batch[0].duration == 0.5  # the release's defaults
    wavs = backend.generate(batch, lambda _f: None)
    for p, wav in zip(batch, wavs):
        alone = pipe([p.prompt], duration=p.duration, steps=p.steps, guidance_scale=p.guidance, seed=p.seed)[0]
        torch.testing.assert_close(wav, alone, atol=1e-4, rtol=1e-4)
    for bad in ({"vocoder_steps": 2}, {"negative_prompt": "x"}):
        with pytest.raises(ConfigError, match="does not apply to latent-diffusion models"):
            backend.resolve(GenerateRequest(prompt="x", **bad), "tiny", Limits())
