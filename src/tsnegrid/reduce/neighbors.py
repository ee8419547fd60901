"""k-nearest-neighbour search for the t-SNE affinities: exact (BLAS) or approximate (faiss).

Both backends return ``(indices, distances)``, each N x k, Euclidean distances in ascending order,
the point itself excluded. ``NEIGHBOR_METHODS`` maps names to them; ``resolve_neighbor_method``
turns ``"auto"`` into a name and logs it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import InputError

log = logging.getLogger(__name__)

Neighbors = tuple[NDArray[np.int64], NDArray[np.float64]]
#: A backend: (data, k, seed, n_jobs) -> the k nearest neighbours of every row.
NeighborSearch = Callable[[NDArray[np.floating], int, int, int], Neighbors]

#: Largest N for which ``auto`` picks exact search (the refinement's, the duplicate search's and
#: the viewer's neighbours; the t-SNE affinities choose by their gradient, ``tsne``). Exact
#: search costs N^2 * D flops and a partition of N^2 distances: at 10,000 points in 50-D 1-2 s
#: on one core here, faiss's IVF search 0.1 s.
EXACT_MAX_N = 20_000
#: faiss IVF index: about this many k-means cells per sqrt(N) (each at least ``IVF_MIN_LIST``
#: rows, below which faiss's training warns), ``IVF_PROBES`` of them scanned per query.
#: 30-NN recall against exact search on Fashion-MNIST PCA-50: 0.995, 0.993 and 0.989 at 10k,
#: 50k and 70k, in 0.16, 1.4 and 2.3 s on one thread (8 probes: 0.98-0.97 in 0.1-2.1 s, but
#: 0.89 on structureless 10-D Gaussian data, where 12 reach 0.95; the 10-tree Annoy forest
#: used before: 0.90 and 0.84 at 10k and 50k, 2.4 s at 50k).
IVF_LISTS = 2.0
IVF_MIN_LIST = 39
IVF_PROBES = 12


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


def ivf_index(reference: NDArray[np.floating], seed: int = 0, n_jobs: int = 1) -> Any:
    """A faiss inverted-file index (``IndexIVFFlat``) over the rows of ``reference``: k-means
    (seeded) cuts the space into about ``IVF_LISTS`` x sqrt(N) cells, and a query scans the
    ``IVF_PROBES`` cells nearest to it. Built on ``n_jobs`` threads."""
    import faiss

    x = np.ascontiguousarray(reference, dtype=np.float32)
    n, dim = x.shape
    lists = int(max(1, min(IVF_LISTS * math.sqrt(n), n // IVF_MIN_LIST)))
    with _threads(faiss, n_jobs):
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, lists)
        index.cp.seed = int(seed) % (2**31 - 1)
        index.cp.verbose = False
        index.train(x)
        index.add(x)
    index.nprobe = min(IVF_PROBES, lists)
    return index


def ivf_search(index: Any, queries: NDArray[np.floating], k: int,
               n_jobs: int = 1) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """The ``k`` nearest indexed rows of each query (squared distances, nearest first);
    queries whose probed cells hold fewer than ``k`` rows are searched again in every cell."""
    import faiss

    q = np.ascontiguousarray(queries, dtype=np.float32)
    with _threads(faiss, n_jobs):
        d2, idx = index.search(q, k)
        short = np.flatnonzero((idx < 0).any(axis=1))
        if len(short):
            probes, index.nprobe = index.nprobe, index.nlist
            d2[short], idx[short] = index.search(q[short], k)
            index.nprobe = probes
    return idx.astype(np.int64), d2


@contextmanager
def _threads(faiss: Any, n: int) -> Iterator[None]:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def knn_ivf(data: NDArray[np.floating], k: int, seed: int = 0, n_jobs: int = 1) -> Neighbors:
    """Approximate k-NN of every row with faiss's inverted-file index (``ivf_index``). Each
    row's own entry is dropped wherever it ranks (duplicates tie with it)."""
    n = len(data)
    index = ivf_index(data, seed, n_jobs)
    idx, d2 = ivf_search(index, data, k + 1, n_jobs)
    keep = np.argsort(idx == np.arange(n)[:, None], axis=1, kind="stable")[:, :k]
    idx = np.take_along_axis(idx, keep, axis=1)
    dist = np.sqrt(np.maximum(np.take_along_axis(d2, keep, axis=1), 0.0)).astype(np.float64)
    return idx, dist


NEIGHBOR_METHODS: dict[str, NeighborSearch] = {"exact": knn_exact, "ivf": knn_ivf}


def resolve_neighbor_method(method: str, n: int) -> str:
    """``auto``: exact search up to ``EXACT_MAX_N`` points, faiss's IVF index above."""
    if method == "auto":
        chosen = "exact" if n <= EXACT_MAX_N else "ivf"
        log.info("neighbors auto -> %s for N=%d", chosen, n)
        return chosen
    if method not in NEIGHBOR_METHODS:
        raise InputError(f"unknown neighbor method {method!r}; choose from auto, "
                         + ", ".join(NEIGHBOR_METHODS))
    return method


def nearest_neighbors(data: NDArray[np.floating], k: int, method: str = "auto",
                      seed: int = 0, *, n_jobs: int = 1) -> Neighbors:
    """The k nearest neighbours of every row (k is clipped to N - 1; the IVF search runs on
    ``n_jobs`` threads)."""
    k = min(k, data.shape[0] - 1)
    return NEIGHBOR_METHODS[resolve_neighbor_method(method, data.shape[0])](data, k, seed, n_jobs)


#: How many look-alikes the viewer lights up for an image ("more like this").
SIMILAR_K = 20
#: Above ``EXACT_MAX_N`` rows, the IVF index searches a PCA projection to this many dimensions
#: (the search's cost grows with the dimension; with the Annoy forest used before, 100,000 x
#: 1,280 took over 4 min here, x 64 one minute) for ``SIMILAR_CANDIDATES`` x k candidates,
#: which are then ranked by exact distance in the full vectors. On Fashion-MNIST (70,000 x
#: 784) recall@20 against exact search was 0.62 from the projection alone and 0.91 with 3 x k
#: candidates re-ranked, both with Annoy (benchmarks/viewer.py).
SIMILAR_PCA_DIMS = 50
SIMILAR_CANDIDATES = 3
_RERANK_ROWS = 1024  # rows per re-ranking block: 1,024 x 60 x 1,280 float32 is 315 MB


def similar_images(data: NDArray[np.floating], k: int = SIMILAR_K,
                   seed: int = 0) -> NDArray[np.int32]:
    """Each row's ``k`` nearest other rows, nearest first, as compact int32 indices: the
    viewer's "more like this". Exact up to ``EXACT_MAX_N`` rows; above, IVF candidates from
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
    candidates, _ = nearest_neighbors(reduced, min(SIMILAR_CANDIDATES * k, n - 1), "ivf",
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
