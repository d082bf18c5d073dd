"""Frechet distance between two Gaussians fitted to embeddings (FD, FAD), as audioldm_eval computes it.

Recipe (haoheliu/audioldm_eval ``metrics/fid.py``, see ``EVALUATION.md`` 1.1.3):

* ``mu = mean(emb, axis=0)`` in the embeddings' own dtype; ``sigma = np.cov(emb, rowvar=False)`` (unbiased,
  N - 1, float64).
* ``d^2 = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrtm(S1 S2))`` with ``scipy.linalg.sqrtm``.
* If ``sqrtm`` returns a non-finite entry, add ``eps = 1e-6`` to the diagonal of **both** covariances and
  retry.  A complex result is accepted only if every diagonal imaginary part is within ``1e-3`` of zero
  (``np.allclose(atol=1e-3)``); then the real part is kept.

FD uses one vector per clip (PANNs "2048"); FAD uses one vector per frame (VGGish: one per 0.96 s), all
frames of all files pooled before the statistics are taken.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import linalg

from sara.errors import SaraError

__all__ = ["frechet_audio_distance", "frechet_distance", "frechet_distance_from_stats", "gaussian_stats"]

EPS = 1e-6  # diagonal offset of the retry
IMAG_ATOL = 1e-3  # tolerance on the imaginary part of the diagonal of sqrtm(S1 S2)


def _as_matrix(emb: object, name: str) -> np.ndarray:
    """Embeddings as a 2-D numpy array ``[N, D]`` (torch tensors accepted)."""
    if hasattr(emb, "detach"):
        emb = emb.detach().cpu().numpy()  # type: ignore[union-attr]
    arr = np.asarray(emb)
    if arr.ndim != 2:
        raise SaraError(f"{name}: expected embeddings of shape [N, D], got {arr.shape}")
    if arr.shape[0] < 2:
        raise SaraError(f"{name}: need at least 2 embeddings to estimate a covariance, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise SaraError(f"{name}: embeddings contain NaN or infinite values")
    return arr


def gaussian_stats(emb: object) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` (input dtype) and unbiased covariance ``[D, D]`` (float64) of ``emb [N, D]``."""
    arr = _as_matrix(emb, "embeddings")
    return np.mean(arr, axis=0), np.cov(arr, rowvar=False)


def _sqrtm(m: np.ndarray) -> np.ndarray:
    """``scipy.linalg.sqrtm`` without its singular-matrix warning (audioldm_eval passes ``disp=False``, which
    is deprecated in SciPy >= 1.16 and returns the same matrix)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return linalg.sqrtm(m)


def frechet_distance_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = EPS
) -> float:
    """Squared Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Args:
        mu1, mu2: means ``[D]``.
        sigma1, sigma2: covariances ``[D, D]``.
        eps: diagonal offset used when ``sqrtm`` of the product is not finite.

    Returns:
        ``d^2`` as a Python float (not the square root: the community reports d^2 as "FD"/"FAD").

    Raises:
        SaraError: mismatched dimensions, or a ``sqrtm`` with a significant imaginary diagonal.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise SaraError(f"Frechet distance: dimension mismatch ({mu1.shape[0]} vs {mu2.shape[0]})")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAG_ATOL):
            worst = float(np.max(np.abs(np.diagonal(covmean).imag)))
            raise SaraError(f"Frechet distance: sqrtm has an imaginary diagonal component {worst:.3g}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance(emb_a: object, emb_b: object) -> float:
    """Frechet distance between the Gaussians fitted to ``emb_a [N, D]`` and ``emb_b [M, D]``.

    Symmetric in its arguments.  Equal to audioldm_eval's FD when given PANNs CNN14 "2048" clip embeddings.
    """
    a, b = _as_matrix(emb_a, "emb_a"), _as_matrix(emb_b, "emb_b")
    if a.shape[1] != b.shape[1]:
        raise SaraError(f"Frechet distance: embedding sizes differ ({a.shape[1]} vs {b.shape[1]})")
    mu1, s1 = np.mean(a, axis=0), np.cov(a, rowvar=False)
    mu2, s2 = np.mean(b, axis=0), np.cov(b, rowvar=False)
    return frechet_distance_from_stats(mu1, s1, mu2, s2)


def frechet_audio_distance(frames_a: Sequence[object], frames_b: Sequence[object]) -> float:
    """FAD: Frechet distance over **per-frame** embeddings pooled across files.

    Args:
        frames_a, frames_b: one ``[n_i, D]`` array per file (e.g. VGGish: one 128-d row per 0.96 s).

    Returns:
        The Frechet distance between the Gaussians of all frames of set a and of set b.
    """
    return frechet_distance(_stack(frames_a, "frames_a"), _stack(frames_b, "frames_b"))


def _stack(frames: Sequence[object], name: str) -> np.ndarray:
    """Concatenate per-file ``[n_i, D]`` frame embeddings into ``[sum n_i, D]``."""
    parts = [f.detach().cpu().numpy() if hasattr(f, "detach") else np.asarray(f) for f in frames]  # type: ignore[union-attr]
    parts = [p.reshape(-1, p.shape[-1]) for p in parts if p.size]
    if not parts:
        raise SaraError(f"{name}: no frame embeddings")
    return np.concatenate(parts, axis=0)
