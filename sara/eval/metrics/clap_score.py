"""CLAP score: mean cosine similarity between caption and audio embeddings (``EVALUATION.md`` 1.4).

``CLAPScore = mean_i cos(text_i, audio_i)`` with no clipping and no x100 (Make-An-Audio, gudgud96, Stable
Audio metrics).  Each embedding is L2-normalised with ``+ 1e-8`` in the denominator first.
"""

from __future__ import annotations

import numpy as np

from sara.errors import SaraError

__all__ = ["clap_score", "cosine_similarities"]


def cosine_similarities(text_emb: np.ndarray, audio_emb: np.ndarray) -> np.ndarray:
    """Row-wise cosine ``[N]`` of ``text_emb [N, D]`` and ``audio_emb [N, D]`` (pairs by row)."""
    t, a = np.asarray(text_emb, dtype=np.float64), np.asarray(audio_emb, dtype=np.float64)
    if t.shape != a.shape or t.ndim != 2:
        raise SaraError(f"CLAP score: expected two [N, D] arrays of equal shape, got {t.shape} and {a.shape}")
    t = t / (np.linalg.norm(t, axis=1, keepdims=True) + 1e-8)
    a = a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-8)
    return (t * a).sum(axis=1)


def clap_score(text_emb: np.ndarray, audio_emb: np.ndarray) -> tuple[float, float]:
    """``(mean, std)`` of the per-pair text-audio cosine similarities."""
    cos = cosine_similarities(text_emb, audio_emb)
    return float(cos.mean()), float(cos.std())
