"""2-D t-SNE projection of clip embeddings coloured by class, saved as a PNG (the paper's latent figure)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_tsne", "tsne_2d"]


def tsne_2d(features: np.ndarray, *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """``[N, D]`` -> ``[N, 2]`` with sklearn TSNE (PCA init; perplexity capped at ``(N - 1) / 3``)."""
    from sklearn.manifold import TSNE

    x = np.asarray(features, dtype=np.float64)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    perp = float(min(perplexity, max(1.0, (len(x) - 1) / 3)))
    return TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed).fit_transform(x)


def _palette(n: int, plt: object) -> list[tuple[float, ...]]:
    """``n`` distinct colours: tab10 for <= 10 classes, else tab20 + tab20b + tab20c (60), cycling beyond."""
    maps = ["tab10"] if n <= 10 else ["tab20", "tab20b", "tab20c"]
    colors = [plt.get_cmap(m)(i) for m in maps for i in range(plt.get_cmap(m).N)]  # type: ignore[attr-defined]
    return [colors[i % len(colors)] for i in range(n)]


def plot_tsne(features: np.ndarray, labels: Sequence[str], out_png: str | os.PathLike[str], *,
              title: str = "", seed: int = 0) -> Path:
    """Project ``features [N, D]`` and scatter them coloured by ``labels``; returns the PNG path.

    The Agg backend is selected here (never at import), so this works headless.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xy = tsne_2d(features, seed=seed)
    names = sorted(set(labels))
    colors = _palette(len(names), plt)
    fig, ax = plt.subplots(figsize=(9 if len(names) > 10 else 7, 6), dpi=120)
    lab = np.asarray(labels)
    for i, name in enumerate(names):
        pts = xy[lab == name]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, color=colors[i], label=name)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(names) <= 60:
        ax.legend(fontsize=5 if len(names) > 20 else 7, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5),
                  ncol=2 if len(names) > 30 else 1, frameon=False)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
