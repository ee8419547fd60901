"""k-nearest-neighbour search for the t-SNE affinities: exact (BLAS) or approximate (Annoy).

Both backends return ``(indices, distances)``, each N x k, Euclidean distances in ascending order,
the point itself excluded. ``NEIGHBOR_METHODS`` maps names to them; ``resolve_neighbor_method``
turns ``"auto"`` into a name and logs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import InputError

log = logging.getLogger(__name__)

Neighbors = tuple[NDArray[np.int64], NDArray[np.float64]]
NeighborSearch = Callable[[NDArray[np.floating], int, int], Neighbors]

#: Largest N for which ``auto`` picks exact search. Exact search costs N^2 * D flops: at 10,000
#: points in 50-D 0.5 s on one core, less than Annoy (0.8 s); quadratic, so Annoy wins beyond
#: a few 10k (at 50k Annoy took 3.5-5 s; exact would need ~12 s by extrapolation).
EXACT_MAX_N = 20_000
#: Annoy trees (the t-SNE affinities use fewer: ``tsne.ANNOY_TREES``). openTSNE builds 50;
#: 30-NN recall against exact search on Fashion-MNIST PCA-50 is 0.96 (10k) and 0.94 (50k) with
#: 20 trees, 0.90 and 0.84 with 10.
ANNOY_TREES = 20


#: Distances per block of the exact search (rows x N), 128 MB of float64.
_EXACT_BLOCK = 1 << 24


def knn_of_rows(x: NDArray[np.floating], rows: NDArray[np.int64],
                k: int) -> tuple[NDArray[np.int64], NDArray[np.floating]]:
    """Brute-force k nearest other rows of ``x`` for the given ``rows`` (1 <= k < N): indices
    and squared Euclidean distances, nearest first, ties by lower index. Squared distances
    |x|^2 - 2 x.y + |y|^2 come from one BLAS product per block of rows, the k smallest by
    partition; the row itself is excluded (its duplicates are not)."""
    n = len(x)
    sq = np.einsum("nd,nd->n", x, x)
    indices = np.empty((len(rows), k), dtype=np.int64)
    distances = np.empty((len(rows), k), dtype=sq.dtype)
    step = max(1, min(len(rows), _EXACT_BLOCK // max(n, 1)))
    for start in range(0, len(rows), step):
        ids = rows[start:start + step]
        d2 = sq[ids, None] - 2 * (x[ids] @ x.T) + sq[None, :]
        d2[np.arange(len(ids)), ids] = np.inf
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        pd = np.take_along_axis(d2, part, axis=1)
        order = np.lexsort((part, pd), axis=1)
        indices[start:start + len(ids)] = np.take_along_axis(part, order, axis=1)
        distances[start:start + len(ids)] = np.take_along_axis(pd, order, axis=1)
    return indices, distances


def knn_exact(data: NDArray[np.floating], k: int, seed: int = 0) -> Neighbors:
    """Exact k-NN by brute force (``knn_of_rows`` over every row, in float64; faster than a
    k-d tree in 50-D). Deterministic for given data; ties keep the lower index."""
    del seed  # exact search has no randomness; the argument keeps the backend signature uniform
    x = np.asarray(data, dtype=np.float64)
    k = min(k, len(x) - 1)
    indices, d2 = knn_of_rows(x, np.arange(len(x)), k)
    return indices, np.sqrt(np.maximum(d2, 0.0))


def knn_annoy(data: NDArray[np.floating], k: int, seed: int = 0,
              trees: int = ANNOY_TREES) -> Neighbors:
    """Approximate k-NN with the Annoy copy that ships inside openTSNE (no extra dependency).

    Built (``trees`` trees) and queried on one thread, so the result depends only on the data
    and the seed.
    """
    from openTSNE.dependencies.annoy import AnnoyIndex

    x = np.ascontiguousarray(data, dtype=np.float32)
    n, dim = x.shape
    index = AnnoyIndex(dim, "euclidean")
    index.set_seed(int(seed) % (2**31 - 1))
    for i in range(n):
        index.add_item(i, x[i])
    index.build(trees, n_jobs=1)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float64)
    for i in range(n):
        idx, dist = index.get_nns_by_item(i, k + 1, include_distances=True)
        # Annoy usually returns the point itself first; drop it wherever it is.
        pairs = [(d, j) for j, d in zip(idx, dist, strict=True) if j != i][:k]
        indices[i] = [j for _, j in pairs]
        distances[i] = [d for d, _ in pairs]
    return indices, distances


NEIGHBOR_METHODS: dict[str, NeighborSearch] = {"exact": knn_exact, "annoy": knn_annoy}


def resolve_neighbor_method(method: str, n: int) -> str:
    """``auto``: exact search up to ``EXACT_MAX_N`` points, Annoy above."""
    if method == "auto":
        chosen = "exact" if n <= EXACT_MAX_N else "annoy"
        log.info("neighbors auto -> %s for N=%d", chosen, n)
        return chosen
    if method not in NEIGHBOR_METHODS:
        raise InputError(f"unknown neighbor method {method!r}; choose from auto, "
                         + ", ".join(NEIGHBOR_METHODS))
    return method


def nearest_neighbors(data: NDArray[np.floating], k: int, method: str = "auto",
                      seed: int = 0, *, annoy_trees: int = ANNOY_TREES) -> Neighbors:
    """The k nearest neighbours of every row (k is clipped to N - 1; ``annoy_trees`` is the
    forest's size when the search is Annoy's)."""
    k = min(k, data.shape[0] - 1)
    name = resolve_neighbor_method(method, data.shape[0])
    if name == "annoy":
        return knn_annoy(data, k, seed, trees=annoy_trees)
    return NEIGHBOR_METHODS[name](data, k, seed)


#: How many look-alikes the viewer lights up for an image ("more like this").
SIMILAR_K = 20
#: Above ``EXACT_MAX_N`` rows, Annoy searches a PCA projection to this many dimensions (Annoy's
#: cost grows with the dimension: 100,000 x 1,280 took over 4 min here, x 64 one minute) for
#: ``SIMILAR_CANDIDATES`` x k candidates, which are then ranked by exact distance in the full
#: vectors. On Fashion-MNIST (70,000 x 784) recall@20 against exact search is 0.62 from the
#: projection alone and 0.91 with 3 x k candidates re-ranked (benchmarks/viewer.py).
SIMILAR_PCA_DIMS = 50
SIMILAR_CANDIDATES = 3
_RERANK_ROWS = 1024  # rows per re-ranking block: 1,024 x 60 x 1,280 float32 is 315 MB


def similar_images(data: NDArray[np.floating], k: int = SIMILAR_K,
                   seed: int = 0) -> NDArray[np.int32]:
    """Each row's ``k`` nearest other rows, nearest first, as compact int32 indices: the
    viewer's "more like this". Exact up to ``EXACT_MAX_N`` rows; above, Annoy candidates from
    a PCA projection re-ranked in the full vectors (see ``SIMILAR_PCA_DIMS``)."""
    n = data.shape[0]
    if n < 2:
        return np.zeros((n, 0), dtype=np.int32)
    if n <= EXACT_MAX_N:
        idx, _ = nearest_neighbors(data, k, "exact", seed)
        return idx.astype(np.int32)
    from tsnegrid.reduce.pca import pca

    k = min(k, n - 1)
    reduced = pca(data, SIMILAR_PCA_DIMS, seed) if data.shape[1] > SIMILAR_PCA_DIMS else data
    candidates, _ = nearest_neighbors(reduced, min(SIMILAR_CANDIDATES * k, n - 1), "annoy",
                                      seed)
    return rerank(data, candidates, k)


def rerank(data: NDArray[np.floating], candidates: NDArray[np.int64],
           k: int) -> NDArray[np.int32]:
    """The ``k`` of each row's ``candidates`` nearest to it in ``data`` (exact distances), in
    blocks of rows so the gathered candidate vectors stay small."""
    x = np.asarray(data, dtype=np.float32)
    sq = np.einsum("nd,nd->n", x, x)
    out = np.empty((len(x), k), dtype=np.int32)
    for start in range(0, len(x), _RERANK_ROWS):
        block = candidates[start:start + _RERANK_ROWS]
        rows = x[start:start + _RERANK_ROWS]
        # |c|^2 - 2 x.c ranks candidates as |x - c|^2 does (|x|^2 is the same along a row)
        d = sq[block] - 2 * np.einsum("nd,nkd->nk", rows, x[block])
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        out[start:start + _RERANK_ROWS] = np.take_along_axis(block, order, axis=1)
    return out
