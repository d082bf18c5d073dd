"""KL (softmax / sigmoid, paired by name), inception score and CLAP score against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

import sara.eval as E
from sara.errors import SaraError

EPS = 1e-6


def test_kl_softmax_closed_form() -> None:
    ref = np.log(np.array([[0.5, 0.5]]))
    gen = np.log(np.array([[0.25, 0.75]]))
    want = 0.5 * math.log(0.5 / (0.25 + EPS)) + 0.5 * math.log(0.5 / (0.75 + EPS))
    assert E.kl_softmax(ref, gen) == pytest.approx(want, rel=1e-12)


def test_kl_is_mean_over_pairs_and_sum_over_classes() -> None:
    ref = np.log(np.array([[0.5, 0.5], [0.9, 0.1]]))
    gen = np.log(np.array([[0.25, 0.75], [0.9, 0.1]]))
    pair1 = 0.5 * math.log(0.5 / (0.25 + EPS)) + 0.5 * math.log(0.5 / (0.75 + EPS))
    pair2 = 0.9 * math.log(0.9 / (0.9 + EPS)) + 0.1 * math.log(0.1 / (0.1 + EPS))
    assert E.kl_softmax(ref, gen) == pytest.approx((pair1 + pair2) / 2, rel=1e-12)


def test_kl_direction_is_reference_given_generated() -> None:
    ref, gen = np.log([[0.9, 0.1]]), np.log([[0.5, 0.5]])
    kl_ref_gen = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    kl_gen_ref = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    got = E.kl_softmax(ref, gen)
    assert got == pytest.approx(kl_ref_gen, abs=1e-5)
    assert abs(got - kl_gen_ref) > 0.1


def test_kl_sigmoid_closed_form() -> None:
    ref, gen = np.array([[0.0, 0.0]]), np.array([[0.0, math.log(3.0)]])  # sigmoids 0.5,0.5 and 0.5,0.75
    want = 0.5 * math.log(0.5 / (0.5 + EPS)) + 0.5 * math.log(0.5 / (0.75 + EPS))
    assert E.kl_sigmoid(ref, gen) == pytest.approx(want, rel=1e-10)


def test_identical_logits_leave_only_the_eps_term() -> None:
    """sum_c p log(p / (p + eps)) ~= -C * eps for identical inputs: ~0, slightly negative, as audioldm_eval."""
    x = np.random.default_rng(0).normal(size=(8, 527))
    assert E.kl_softmax(x, x) == pytest.approx(-527 * EPS, rel=2e-2)
    assert E.kl_sigmoid(x, x) == pytest.approx(-527 * EPS, rel=2e-2)


def test_paired_kl_matches_by_basename_and_skips_unmatched() -> None:
    rng = np.random.default_rng(1)
    ref = {"ref/a.wav": rng.normal(size=5), "ref/b.wav": rng.normal(size=5), "ref/only_ref.wav": rng.normal(size=5)}
    gen = {"gen/b.wav": rng.normal(size=5), "gen/a.wav": rng.normal(size=5)}
    res = E.paired_kl(ref, gen)
    assert res.num_pairs == 2 and res.unmatched == ("only_ref.wav",)
    want = E.kl_softmax(np.stack([ref["ref/a.wav"], ref["ref/b.wav"]]), np.stack([gen["gen/a.wav"], gen["gen/b.wav"]]))
    assert res.kl_softmax == pytest.approx(want)
    with pytest.raises(SaraError):
        E.paired_kl({"x.wav": np.zeros(3)}, {"y.wav": np.zeros(3)})


def reference_is(logits: np.ndarray, splits: int = 10, seed: int = 2020) -> tuple[float, float]:
    x = logits[np.random.RandomState(seed).permutation(len(logits))].astype(np.float64)
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    n, scores = len(x), []
    for i in range(splits):
        part = p[i * n // splits:(i + 1) * n // splits]
        q = part.mean(0)
        scores.append(math.exp(np.mean(np.sum(part * (np.log(part) - np.log(q)), axis=1))))
    return float(np.mean(scores)), float(np.std(scores))


def test_inception_score_closed_forms() -> None:
    # confident and uniformly spread over C classes within every split -> IS = C
    c = 10
    onehot = np.full((100, c), -1e4)
    onehot[np.arange(100), np.arange(100) % c] = 0.0
    mean, std = E.inception_score(onehot, shuffle=False)
    assert mean == pytest.approx(c, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    # identical predictions -> IS = 1
    same = np.tile(np.random.default_rng(0).normal(size=(1, 7)), (50, 1))
    assert E.inception_score(same)[0] == pytest.approx(1.0, abs=1e-9)


def test_inception_score_matches_reference_definition() -> None:
    logits = np.random.default_rng(3).normal(size=(57, 12)) * 3
    got = E.inception_score(logits)
    want = reference_is(logits)
    assert got[0] == pytest.approx(want[0], rel=1e-12) and got[1] == pytest.approx(want[1], rel=1e-9)
    with pytest.raises(SaraError):
        E.inception_score(logits[:5])


def test_clap_score_is_mean_cosine() -> None:
    text = np.array([[1.0, 0.0], [0.0, 2.0]])
    audio = np.array([[1.0, 1.0], [0.0, -3.0]])
    mean, std = E.clap_score(text, audio)
    assert mean == pytest.approx((1 / math.sqrt(2) - 1) / 2, abs=1e-7)
    assert std == pytest.approx((1 / math.sqrt(2) + 1) / 2, abs=1e-7)
