"""Reduction: high-dimensional vectors to 2-D points (t-SNE by default; UMAP and PCA as options).

Every reducer is a pure function ``(vectors, seed) -> N x 2 float64``; ``REDUCERS`` maps names to
them. Same inputs and seed give identical output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import InputError, MissingDependencyError

log = logging.getLogger(__name__)

Reducer = Callable[[NDArray[np.float64], int], NDArray[np.float64]]

PCA_DIMS = 50


def validate_vectors(vectors: NDArray[np.floating]) -> NDArray[np.float64]:
    """Check an N x D numeric array with finite values; return float64."""
    arr = np.asarray(vectors)
    if arr.ndim != 2:
        raise InputError(f"vectors must be a 2-D array (N x D), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError("vectors array is empty")
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"vectors must be numeric, got dtype {arr.dtype}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InputError(f"vectors contain NaN or inf in {int(bad.sum())} row(s), first at row "
                         f"{int(np.flatnonzero(bad)[0])}")
    return arr.astype(np.float64)


def pca(vectors: NDArray[np.float64], n_components: int, seed: int) -> NDArray[np.float64]:
    """Centred PCA via SVD (deterministic sign), at most min(N, D) components."""
    from sklearn.decomposition import PCA

    k = min(n_components, vectors.shape[0], vectors.shape[1])
    out = PCA(n_components=k, random_state=seed).fit_transform(vectors)
    return np.asarray(out, dtype=np.float64)


def resolve_perplexity(n: int, perplexity: float | str = "auto") -> float:
    """``auto``: 30, lowered for small N so that 3 * perplexity < N."""
    if perplexity == "auto":
        value = float(min(30.0, max(1.0, (n - 1) / 3.0)))
        log.info("perplexity auto -> %.1f for N=%d", value, n)
        return value
    return float(perplexity)


def reduce_pca(vectors: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
    """First two principal components (padded with zeros if D < 2 or N < 2)."""
    out = np.zeros((vectors.shape[0], 2))
    if vectors.shape[0] >= 2:
        p = pca(vectors, 2, seed)
        out[:, : p.shape[1]] = p
    return out


def reduce_tsne(vectors: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
    """openTSNE on the first 50 principal components, PCA initialisation."""
    from openTSNE import TSNE

    n = vectors.shape[0]
    if n < 4:
        log.info("N=%d is too small for t-SNE; using PCA", n)
        return reduce_pca(vectors, seed)
    x = pca(vectors, PCA_DIMS, seed)
    tsne = TSNE(perplexity=resolve_perplexity(n), initialization="pca", random_state=seed,
                n_jobs=1, verbose=False)
    return np.asarray(tsne.fit(x), dtype=np.float64)


def reduce_umap(vectors: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
    """UMAP (optional extra ``tsnegrid[umap]``)."""
    try:
        import umap
    except ImportError as exc:
        raise MissingDependencyError("umap-learn", extra="umap") from exc
    n = vectors.shape[0]
    if n < 4:
        return reduce_pca(vectors, seed)
    x = pca(vectors, PCA_DIMS, seed)
    model = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed)
    return np.asarray(model.fit_transform(x), dtype=np.float64)


REDUCERS: dict[str, Reducer] = {"tsne": reduce_tsne, "umap": reduce_umap, "pca": reduce_pca}


def reduce(vectors: NDArray[np.floating], method: str = "tsne", seed: int = 0) -> NDArray[np.float64]:
    """Reduce N x D vectors to N x 2 points with the named method."""
    if method not in REDUCERS:
        raise InputError(f"unknown reducer {method!r}; choose from {', '.join(REDUCERS)}")
    x = validate_vectors(vectors)
    return REDUCERS[method](x, seed)
