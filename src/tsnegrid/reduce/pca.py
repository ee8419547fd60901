"""Principal components: the first step of every reducer and the layout for tiny N."""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

#: Above this many rows PCA is fitted on a seeded random sample of this size and then applied to
#: every row in blocks: at 50,000 x 1280 a full randomized fit costs seconds, at 1M minutes, and
#: 20,000 rows pin down 50 components of a 1280-d embedding just as well.
PCA_FIT_MAX = 20_000
_BLOCK = 65_536


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
    if n <= PCA_FIT_MAX:
        return np.asarray(PCA(n_components=k, random_state=seed).fit_transform(vectors),
                          dtype=np.float64)
    sample = np.sort(np.random.default_rng(seed).choice(n, PCA_FIT_MAX, replace=False))
    log.info("PCA fitted on %d of %d rows", PCA_FIT_MAX, n)
    model = PCA(n_components=k, random_state=seed).fit(vectors[sample])
    out = np.empty((n, k), dtype=np.float64)
    for start in range(0, n, _BLOCK):
        out[start:start + _BLOCK] = model.transform(vectors[start:start + _BLOCK])
    return out


def reduce_pca(vectors: NDArray[np.floating], seed: int) -> NDArray[np.float64]:
    """First two principal components (padded with zeros if D < 2 or N < 2)."""
    out = np.zeros((vectors.shape[0], 2))
    if vectors.shape[0] >= 2:
        p = pca(vectors, 2, seed)
        out[:, : p.shape[1]] = p[:, :2]
    return out
