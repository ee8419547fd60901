"""Exact k-nearest-neighbour search by brute force: one BLAS product per block of rows and a
partition of the distances (faster than a k-d tree in 30-50 dimensions, and no scipy import)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: Every search backend's answer: indices and Euclidean distances, each N x k, nearest first,
#: the row itself excluded.
Neighbors = tuple[NDArray[np.int64], NDArray[np.float64]]

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


def knn_between(queries: NDArray[np.floating], points: NDArray[np.floating],
                k: int) -> NDArray[np.int64]:
    """Brute-force indices of the ``k`` rows of ``points`` nearest to each row of ``queries``
    (as a set per row, in no particular order): one BLAS product and a partition per block of
    queries, in the inputs' precision. In 32-D over 2,500 points it is 2.4x faster than a k-d
    tree, and it needs no scipy import. (In float32 it is twice as fast again, but near-ties
    then pick other cells: ELPV's refined grid lost 0.0017 DPQ16.)"""
    k = min(k, len(points))
    pq = np.einsum("nd,nd->n", points, points)
    out = np.empty((len(queries), k), dtype=np.int64)
    step = max(1, _EXACT_BLOCK // max(len(points), 1))
    for start in range(0, len(queries), step):
        d2 = pq[None, :] - 2 * (queries[start:start + step] @ points.T)
        out[start:start + step] = (np.argpartition(d2, k - 1, axis=1)[:, :k]
                                   if k < len(points) else np.arange(k))
    return out


def knn_exact(data: NDArray[np.floating], k: int, seed: int = 0, n_jobs: int = 1) -> Neighbors:
    """Exact k-NN by brute force (``knn_of_rows`` over every row, in float64; faster than a
    k-d tree in 50-D). Deterministic for given data; ties keep the lower index."""
    del seed, n_jobs  # no randomness, and the BLAS threads follow the caller's limits
    x = np.asarray(data, dtype=np.float64)
    k = min(k, len(x) - 1)
    indices, d2 = knn_of_rows(x, np.arange(len(x)), k)
    return indices, np.sqrt(np.maximum(d2, 0.0))
