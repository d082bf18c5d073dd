"""Class re-balancing weights for drawing training items (shared by the DiT trainer and the corpus classifier)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["class_weights"]


def class_weights(labels: Sequence[str | None], exponent: float) -> Tensor | None:
    """Per-item sampling weights ``n_label ** -exponent`` (mean 1), or None when ``exponent == 0``.

    ``n_label`` counts the items sharing ``labels[i]``; unlabelled items (None) count as a class of their own.
    Exponent 1 makes every class equally likely, 0.5 is halfway (in log-frequency) between that and the data.
    """
    if exponent < 0:
        raise ValueError(f"class balance exponent must be >= 0, got {exponent}")
    if exponent == 0 or not labels:
        return None
    counts = Counter(labels)
    w = torch.tensor([counts[label] ** -exponent for label in labels], dtype=torch.float64)
    return w / w.mean()
