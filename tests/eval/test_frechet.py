"""Frechet distance == the audioldm_eval recipe, re-derived independently here with numpy/scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import sara.eval as E
from sara.errors import SaraError
from sara.eval.metrics import frechet as frechet_mod


def reference_fd(a: np.ndarray, b: np.ndarray, eps: float = 1e-6) -> float:
    """audioldm_eval ``calculate_frechet_distance`` written from its description (EVALUATION.md 1.1.3)."""
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2)
    if not np.all(np.isfinite(root)):
        off = eps * np.eye(s1.shape[0])
        root = scipy.linalg.sqrtm((s1 + off) @ (s2 + off))
    if np.iscomplexobj(root):
        assert np.allclose(np.diag(root).imag, 0.0, atol=1e-3)
        root = root.real
    d = mu1 - mu2
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_matches_reference_full_rank(rng: np.random.Generator) -> None:
    a = rng.normal(size=(200, 16)).astype(np.float32)
    b = (rng.normal(size=(150, 16)) * 1.5 + 0.3).astype(np.float32)
    got = E.frechet_distance(a, b)
    assert got == pytest.approx(reference_fd(a, b), rel=1e-10, abs=1e-10)
    assert got > 1.0
    assert E.frechet_distance(b, a) == pytest.approx(got, rel=1e-6)  # symmetric


def test_matches_reference_singular_covariance(rng: np.random.Generator) -> None:
    """N < D: both covariances are rank-deficient (the case that triggers complex / non-finite sqrtm)."""
    a = rng.normal(size=(10, 32))
    b = rng.normal(size=(12, 32)) + 0.1
    assert np.linalg.matrix_rank(np.cov(a, rowvar=False)) < 32
    got = E.frechet_distance(a, b)
    assert np.isfinite(got)
    assert got == pytest.approx(reference_fd(a, b), rel=1e-8, abs=1e-8)


def test_identical_sets_near_zero(rng: np.random.Generator) -> None:
    a = rng.normal(size=(300, 8))
    assert abs(E.frechet_distance(a, a)) < 1e-8
    sing = rng.normal(size=(5, 20))
    assert abs(E.frechet_distance(sing, sing)) < 1e-3


def test_closed_form_for_shifted_isotropic_gaussians() -> None:
    """Same covariance, mean shift m: d^2 = |m|^2 exactly (sqrt of S S is S)."""
    base = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    shifted = base + np.array([3.0, 4.0])
    assert E.frechet_distance(base, shifted) == pytest.approx(25.0, abs=1e-9)


def test_retry_adds_eps_to_both_covariances(monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator) -> None:
    calls = []
    real = scipy.linalg.sqrtm

    def fake_sqrtm(m: np.ndarray) -> np.ndarray:
        calls.append(m.copy())
        return np.full_like(m, np.nan) if len(calls) == 1 else real(m)

    monkeypatch.setattr(frechet_mod.linalg, "sqrtm", fake_sqrtm)
    a, b = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    E.frechet_distance(a, b)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    off = 1e-6 * np.eye(3)
    np.testing.assert_allclose(calls[1], (s1 + off) @ (s2 + off))


def test_imaginary_diagonal_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frechet_mod.linalg, "sqrtm", lambda m: np.eye(m.shape[0]) * (1 + 0.5j))
    with pytest.raises(SaraError, match="imaginary"):
        E.frechet_distance(np.eye(3), np.eye(3)[::-1])


def test_fad_pools_frames(rng: np.random.Generator) -> None:
    files_a = [rng.normal(size=(n, 4)) for n in (3, 5, 7)]
    files_b = [rng.normal(size=(n, 4)) + 1 for n in (4, 6)]
    assert E.frechet_audio_distance(files_a, files_b) == pytest.approx(
        reference_fd(np.concatenate(files_a), np.concatenate(files_b)), rel=1e-10)


def test_bad_inputs() -> None:
    with pytest.raises(SaraError):
        E.frechet_distance(np.zeros((4, 3)), np.zeros((4, 5)))
    with pytest.raises(SaraError):
        E.frechet_distance(np.zeros((1, 3)), np.zeros((4, 3)))
