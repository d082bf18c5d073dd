"""Sampler invariants: one step = pred(x0, 0), exact endpoint for a constant predictor, reproducibility, clamp."""

import pytest
import torch

from sara.vocoder import SemanticVocoder
from sara.vocoder.sampler import euler_sample, initial_noise

from .helpers import randomize, tiny_config


def _vocoder() -> SemanticVocoder:
    voc = SemanticVocoder(tiny_config())
    randomize(voc.generator)
    return voc.eval()


def test_one_step_returns_prediction_at_t0() -> None:
    calls = []

    def predict(x, t):  # noqa: ANN001, ANN202
        calls.append(t.clone())
        return 0.5 * x + 0.1

    x0 = torch.randn(2, 10)
    out = euler_sample(predict, x0, 1, clamp=False)
    torch.testing.assert_close(out, 0.5 * x0 + 0.1)
    assert len(calls) == 1 and calls[0].tolist() == [0.0, 0.0]


def test_times_are_uniform_and_never_one() -> None:
    seen = []
    euler_sample(lambda x, t: (seen.append(float(t[0])), x)[1], torch.zeros(1, 4), 4)
    assert seen == pytest.approx([0.0, 0.25, 0.5, 0.75])


@pytest.mark.parametrize("steps", [1, 3, 10])
def test_constant_x1_prediction_lands_exactly(steps: int) -> None:
    target = torch.linspace(-0.5, 0.5, 8).unsqueeze(0)
    out = euler_sample(lambda x, t: target, torch.randn(1, 8), steps)
    torch.testing.assert_close(out, target, atol=1e-5, rtol=0)


def test_velocity_mode_and_clamp() -> None:
    out = euler_sample(lambda x, t: torch.full_like(x, 4.0), torch.zeros(1, 3), 2, pred_x1=False, clamp=False)
    torch.testing.assert_close(out, torch.full((1, 3), 4.0))
    clamped = euler_sample(lambda x, t: torch.full_like(x, 4.0), torch.zeros(1, 3), 2, pred_x1=False)
    assert clamped.max() == 1.0


def test_decode_one_step_equals_generator_at_t0() -> None:
    voc = _vocoder()
    z = torch.randn(2, voc.latent_dim, 3)
    noise = torch.randn(2, 3 * 960)
    wav = voc.decode(z, steps=1, noise=noise)
    with torch.no_grad():
        pred = voc.generator(0.1 * noise, torch.zeros(2), latents=z)
    torch.testing.assert_close(wav, pred.clamp(-1, 1))
    assert wav.shape == (2, 2880)


def test_decode_reproducible_with_noise_or_seed() -> None:
    voc = _vocoder()
    z = torch.randn(1, voc.latent_dim, 2)
    noise = torch.randn(1, 1920)
    torch.testing.assert_close(voc.decode(z, steps=3, noise=noise), voc.decode(z, steps=3, noise=noise))
    a, b = voc.decode(z, steps=3, seed=7), voc.decode(z, steps=3, seed=7)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, voc.decode(z, steps=3, seed=8))
    torch.testing.assert_close(a, voc.decode(z, steps=3, noise=initial_noise(1, 1920, seed=7)))


def test_decode_batch_items_are_independent() -> None:
    voc = _vocoder()
    z = torch.randn(2, voc.latent_dim, 2)
    noise = torch.randn(2, 1920)
    both = voc.decode(z, steps=2, noise=noise)
    one = voc.decode(z[1:], steps=2, noise=noise[1:])
    torch.testing.assert_close(both[1:], one, atol=1e-5, rtol=1e-4)


def test_decode_clamps_and_rejects_bad_input() -> None:
    voc = _vocoder()
    with torch.no_grad():
        voc.generator.estimators[0].decoder.out_proj.bias.fill_(50.0)
    wav = voc.decode(torch.randn(1, voc.latent_dim, 2), steps=2, seed=0)
    assert wav.abs().max() <= 1.0
    from sara.errors import AudioError

    with pytest.raises(AudioError):
        voc.decode(torch.randn(1, voc.latent_dim + 1, 2))
    with pytest.raises(AudioError, match="noise must have shape"):
        voc.decode(torch.randn(1, voc.latent_dim, 2), noise=torch.randn(1, 5))
    from sara.errors import ConfigError

    for steps in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="steps must be an integer"):
            voc.decode(torch.randn(1, voc.latent_dim, 2), steps=steps)
    with pytest.raises(AudioError, match="NaN"):
        voc.decode(torch.full((1, voc.latent_dim, 2), float("nan")))


def test_plan_chunks_cover_with_overlap() -> None:
    from sara.vocoder.chunking import plan_chunks

    assert plan_chunks(10, 20, 5) == [(0, 10)]
    assert plan_chunks(30, 20, 10) == [(0, 20), (10, 30)]
    assert plan_chunks(21, 10, 2) == [(0, 8), (6, 15), (13, 21)]  # balanced: no short tail chunk
    for frames, chunk, overlap in ((251, 250, 25), (15000, 250, 25), (999, 100, 7)):
        spans = plan_chunks(frames, chunk, overlap)
        assert spans[0][0] == 0 and spans[-1][1] == frames
        assert all(b - a <= chunk for a, b in spans)
        assert all(a2 == b1 - overlap for (_, b1), (a2, _) in zip(spans, spans[1:]))
        assert len(spans) == -(-(frames - overlap) // (chunk - overlap))  # the fewest chunks that fit
    with pytest.raises(ValueError):
        plan_chunks(10, 4, 4)


def test_chunked_decode_matches_single_pass_away_from_joins() -> None:
    voc = _vocoder()
    z = torch.randn(1, voc.latent_dim, 30)
    noise = torch.randn(1, 30 * 960)
    full = voc.decode(z, steps=1, noise=noise)
    voc.chunk_frames, voc.overlap_frames = 20, 10
    chunked = voc.decode(z, steps=1, noise=noise)
    assert chunked.shape == full.shape == (1, 28800)
    torch.testing.assert_close(chunked[:, : 10 * 960], full[:, : 10 * 960], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(chunked[:, 25 * 960 :], full[:, 25 * 960 :], atol=1e-6, rtol=1e-5)
    assert torch.isfinite(chunked).all()
