"""Inception score on classifier logits, as audioldm_eval computes it (``EVALUATION.md`` 1.1.6).

1. Shuffle the N rows with ``np.random.RandomState(2020).permutation(N)``.
2. float64; ``p = softmax``, ``log p = log_softmax`` over classes.
3. For each of ``splits`` chunks ``[i N // s, (i + 1) N // s)``: ``q = mean_chunk(p)`` and
   ``score_i = exp(mean_chunk(sum_c p (log p - log q)))``.
4. Report mean and population std (``np.std``) of the scores.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax

from sara.errors import SaraError

__all__ = ["inception_score"]


def inception_score(logits: np.ndarray, splits: int = 10, *, shuffle: bool = True, seed: int = 2020) -> tuple[float, float]:
    """Inception score of generated clips.

    Args:
        logits: pre-softmax classifier outputs ``[N, C]`` of the generated clips.
        splits: number of chunks (10 in audioldm_eval).
        shuffle: permute rows first with ``RandomState(seed)``.
        seed: permutation seed (2020 in audioldm_eval).

    Returns:
        ``(mean, std)`` over the chunks; 1.0 means uninformative, C is the maximum.

    Raises:
        SaraError: fewer rows than splits (a chunk would be empty).
    """
    x = np.asarray(logits)
    if x.ndim != 2:
        raise SaraError(f"inception score: expected logits [N, C], got {x.shape}")
    n = x.shape[0]
    if n < splits:
        raise SaraError(f"inception score: need at least {splits} clips for {splits} splits, got {n}")
    if shuffle:
        x = x[np.random.RandomState(seed).permutation(n)]
    logp = log_softmax(x.astype(np.float64), axis=1)
    p = np.exp(logp)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        p_chunk, logp_chunk = p[lo:hi], logp[lo:hi]
        log_q = np.log(p_chunk.mean(axis=0, keepdims=True))
        kl = (p_chunk * (logp_chunk - log_q)).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))
