"""Principal components: the first step of every reducer and the layout for tiny N."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def pca(vectors: NDArray[np.floating], n_components: int, seed: int) -> NDArray[np.float64]:
    """Centred PCA (scikit-learn, deterministic sign), at most min(N, D) components.

    Returns the input, centred, when it already has no more than ``n_components`` columns.
    """
    from sklearn.decomposition import PCA

    n, d = vectors.shape
    if d <= n_components:
        x = np.asarray(vectors, dtype=np.float64)
        return x - x.mean(axis=0)
    k = min(n_components, n, d)
    out = PCA(n_components=k, random_state=seed).fit_transform(vectors)
    return np.asarray(out, dtype=np.float64)


def reduce_pca(vectors: NDArray[np.floating], seed: int) -> NDArray[np.float64]:
    """First two principal components (padded with zeros if D < 2 or N < 2)."""
    out = np.zeros((vectors.shape[0], 2))
    if vectors.shape[0] >= 2:
        p = pca(vectors, 2, seed)
        out[:, : p.shape[1]] = p[:, :2]
    return out
