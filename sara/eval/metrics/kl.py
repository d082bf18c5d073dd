"""KL divergence between classifier outputs of reference and generated clips, paired by file name.

Definition (audioldm_eval ``metrics/kl.py``, ``EVALUATION.md`` 1.1.5), **KL(reference || generated)**:

    KL = (1 / N) * sum_pairs sum_c p_ref[c] * (log p_ref[c] - log(p_gen[c] + 1e-6))

* softmax variant: ``p = softmax(logits)`` over classes (the AudioGen form);
* sigmoid variant: ``p = sigmoid(logits)`` per class with the same expression -- not a Bernoulli KL (the
  ``1 - p`` terms are left out), kept because papers report it.

``eps = 1e-6`` is added on the generated side only.  Terms with ``p_ref = 0`` contribute 0 (as
``torch.nn.functional.kl_div`` does).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_softmax, xlogy

from sara.errors import SaraError

__all__ = ["KLResult", "kl_from_probs", "kl_sigmoid", "kl_softmax", "paired_kl"]

KL_EPS = 1e-6


@dataclass(frozen=True)
class KLResult:
    """Paired KL numbers.

    Attributes:
        kl_softmax: KL(ref || gen) with softmax probabilities (nats, mean over pairs).
        kl_sigmoid: the same with per-class sigmoid probabilities.
        num_pairs: reference files matched with a generated file of the same name.
        unmatched: reference names without a generated counterpart (skipped).
    """

    kl_softmax: float
    kl_sigmoid: float
    num_pairs: int
    unmatched: tuple[str, ...]


def kl_from_probs(p_ref: np.ndarray, p_gen: np.ndarray) -> float:
    """``(1/N) sum_n sum_c p_ref log(p_ref / (p_gen + eps))`` for probabilities ``[N, C]``."""
    p_ref, p_gen = np.asarray(p_ref, dtype=np.float64), np.asarray(p_gen, dtype=np.float64)
    if p_ref.shape != p_gen.shape or p_ref.ndim != 2:
        raise SaraError(f"KL: expected two [N, C] arrays of equal shape, got {p_ref.shape} and {p_gen.shape}")
    terms = xlogy(p_ref, p_ref) - p_ref * np.log(p_gen + KL_EPS)
    return float(terms.sum() / p_ref.shape[0])


def kl_softmax(ref_logits: np.ndarray, gen_logits: np.ndarray) -> float:
    """KL(ref || gen) with ``softmax`` over the class axis of logits ``[N, C]`` (row n of each is a pair)."""
    p_ref = np.exp(log_softmax(np.asarray(ref_logits, dtype=np.float64), axis=-1))
    p_gen = np.exp(log_softmax(np.asarray(gen_logits, dtype=np.float64), axis=-1))
    return kl_from_probs(p_ref, p_gen)


def kl_sigmoid(ref_logits: np.ndarray, gen_logits: np.ndarray) -> float:
    """The audioldm_eval "KL_sigmoid": the softmax formula applied to per-class ``sigmoid`` probabilities."""
    return kl_from_probs(expit(np.asarray(ref_logits, dtype=np.float64)), expit(np.asarray(gen_logits, dtype=np.float64)))


def paired_kl(reference: Mapping[str, np.ndarray], generated: Mapping[str, np.ndarray]) -> KLResult:
    """Pair logits by exact file basename and compute both KL variants.

    Args:
        reference: file path or name -> logits ``[C]`` of a reference clip.
        generated: file path or name -> logits ``[C]`` of a generated clip.

    Returns:
        :class:`KLResult`.  Reference files with no generated file of the same basename are skipped.

    Raises:
        SaraError: no pair could be formed.
    """
    gen_by_name = {os.path.basename(str(k)): v for k, v in generated.items()}
    ref_rows, gen_rows, unmatched = [], [], []
    for key in sorted(reference, key=lambda k: os.path.basename(str(k))):
        name = os.path.basename(str(key))
        if name in gen_by_name:
            ref_rows.append(np.asarray(reference[key]).reshape(-1))
            gen_rows.append(np.asarray(gen_by_name[name]).reshape(-1))
        else:
            unmatched.append(name)
    if not ref_rows:
        raise SaraError("KL: no generated file has the same name as a reference file (KL needs paired sets)")
    ref, gen = np.stack(ref_rows), np.stack(gen_rows)
    return KLResult(kl_softmax(ref, gen), kl_sigmoid(ref, gen), len(ref_rows), tuple(unmatched))
