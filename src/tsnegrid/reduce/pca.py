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


#: Up to this many columns the directions are the covariance matrix's exact eigenvectors (D^2 N +
#: D^3 flops: 0.1 s at 784-D); wider input (1,280-D embeddings) uses the randomized SVD.
EXACT_MAX_D = 1000
_OVERSAMPLE = 10


def top_directions(x: NDArray[np.floating], k: int, seed: int,
                   power_iterations: int | None = None) -> NDArray[np.floating]:
    """The ``k`` leading principal directions (k x D, orthonormal rows) of the centred rows
    ``x``, each signed so that its largest entry is positive (deterministic for a seed).

    Exact (covariance eigenvectors) up to ``EXACT_MAX_D`` columns unless ``power_iterations``
    is given; otherwise the randomized range finder of Halko, Martinsson and Tropp (2011)
    with 10 extra columns and QR-normalised power iterations (7 when k is under a tenth of
    min(N, D), else 4: scikit-learn's rule), all in numpy (no scikit-learn import, which costs
    more than the whole reduction of a few thousand points)."""
    n, d = x.shape
    k = min(k, n, d)
    if power_iterations is None and d <= EXACT_MAX_D:
        x64 = np.asarray(x, dtype=np.float64)
        _, vectors = np.linalg.eigh(x64.T @ x64)
        directions = vectors[:, ::-1][:, :k].T
    else:
        if power_iterations is None:
            power_iterations = 7 if k < 0.1 * min(n, d) else 4
        width = min(k + _OVERSAMPLE, n, d)
        omega = np.random.default_rng(seed).standard_normal((d, width)).astype(x.dtype)
        q, _ = np.linalg.qr(x @ omega)
        for _ in range(power_iterations):
            q, _ = np.linalg.qr(x.T @ q)
            q, _ = np.linalg.qr(x @ q)
        _, _, vt = np.linalg.svd(q.T @ x, full_matrices=False)
        directions = vt[:k]
    rows = np.arange(len(directions))
    signs = np.sign(directions[rows, np.argmax(np.abs(directions), axis=1)])
    signs[signs == 0] = 1
    return np.ascontiguousarray(directions * signs[:, None])


def pca(vectors: NDArray[np.floating], n_components: int, seed: int) -> NDArray[np.float64]:
    """Centred PCA (``top_directions``), at most min(N, D) components, as float64.

    Returns the input, centred, when it already has no more than ``n_components`` columns.
    """
    n, d = vectors.shape
    if d <= n_components:
        x = np.asarray(vectors, dtype=np.float64)
        return x - x.mean(axis=0)
    k = min(n_components, n, d)
    dtype = np.float32 if vectors.dtype == np.float32 else np.float64
    sample = np.asarray(vectors, dtype=dtype)
    if n > PCA_FIT_MAX:
        log.info("PCA fitted on %d of %d rows", PCA_FIT_MAX, n)
        sample = sample[np.sort(np.random.default_rng(seed).choice(n, PCA_FIT_MAX,
                                                                    replace=False))]
    mean = sample.mean(axis=0)
    directions = top_directions(sample - mean, k, seed).astype(dtype)
    out = np.empty((n, k), dtype=np.float64)
    for start in range(0, n, _BLOCK):
        block = np.asarray(vectors[start:start + _BLOCK], dtype=dtype)
        out[start:start + _BLOCK] = (block - mean) @ directions.T
    return out


def reduce_pca(vectors: NDArray[np.floating], seed: int) -> NDArray[np.float64]:
    """First two principal components (padded with zeros if D < 2 or N < 2)."""
    out = np.zeros((vectors.shape[0], 2))
    if vectors.shape[0] >= 2:
        p = pca(vectors, 2, seed)
        out[:, : p.shape[1]] = p[:, :2]
    return out
