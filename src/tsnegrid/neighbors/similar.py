"""The viewer's look-alikes ("more like this"): each image's nearest other images, at any N.

Exact (``knn_exact``) up to ``SIMILAR_EXACT_MAX_N`` rows. Above, three steps, all on
``n_jobs`` threads (benchmarks/neighbors.py measures them):

1. a PCA projection to ``SIMILAR_PCA_DIMS``, fitted on a seeded sample of rows;
2. a faiss IVF index over the projection (lists of about ``SIMILAR_LIST_ROWS`` rows);
3. the queries in blocks, taken in the index's list order (a block's rows are close together,
   so the full vectors their candidates name stay in cache): each row's ``SIMILAR_CANDIDATES``
   nearest in the projection, re-ranked by exact distance in the full vectors with faiss's
   ``knn_L2sqr_by_idx``, which reads the candidates' rows in place.

Apart from the input, memory holds the index (N x ``SIMILAR_PCA_DIMS`` float32 and N ids: 264
MB at 1M rows, against the 5.1 GB of 1M x 1,280 float32 input), the N x k answer, and one
block's rows at a time (PCA sample, k-means sample, queries, candidates); nothing N x
candidates x D is ever gathered. Input that is not float32 is converted once (a float64
array: half its size again).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import InputError
from tsnegrid.neighbors.exact import knn_exact
from tsnegrid.neighbors.ivf import faiss_threads, ivf_search

log = logging.getLogger(__name__)

#: How many look-alikes the viewer lights up for an image ("more like this").
SIMILAR_K = 20
#: ``auto`` searches exactly up to this many rows. Exact search costs N^2 * D flops and a
#: partition of N^2 distances; measured (2 threads, loaded machine) exact against the IVF path:
#: 5,000 x 1,280 rows 2.7 against 2.1 s, 10,000 x 1,280 15.9 against 2.6 s, 20,000 x 1,280 66
#: against 6.0 s, 20,000 x 50 16.0 against 2.2 s, and 20,000 in 2-D 8.7 against 2.0 s.
SIMILAR_EXACT_MAX_N = 5_000
#: PCA dimensions searched for candidates, and candidates re-ranked per row. The share of the
#: exact 20 nearest among the 80 nearest in the projection (500 fixed rows): real Lite0
#: vectors (4,911 x 1,280) 0.958 / 0.990 / 0.999 at 32 / 64 / 128 dimensions, Fashion-MNIST
#: pixels (20,000 x 784) 0.959 / 0.992 / 1.000; with 40 candidates at 64 dimensions 0.944 and
#: 0.938, with 160 0.999 and 1.000. The search's cost grows with both; 64 and 80 leave the IVF
#: index the main loss. (Before: 50 dimensions and 60 candidates.)
SIMILAR_PCA_DIMS = 64
SIMILAR_CANDIDATES = 80
#: PCA directions from this many sampled rows (subspace iteration on their covariance).
SIMILAR_PCA_ROWS = 20_000
#: IVF lists of about this many rows (k-means on ``SIMILAR_TRAIN_PER_LIST`` sampled rows per
#: list, ``SIMILAR_KMEANS_ITER`` rounds), ``SIMILAR_PROBES`` lists scanned per query. A query
#: costs the distances to every list's centre (one BLAS product) plus probes x list rows, so
#: lists of a fixed size keep the scan flat as N grows (``ivf_index``'s 2 sqrt(N) lists hold
#: 500 rows each at 1M). On Fashion-MNIST (70,000 x 784, PCA-64), of the 81 nearest rows in the
#: projection 12 probes found 0.983, 8 probes 0.970, and HNSW (M 16, efSearch 128) 0.985 in
#: 2.8x the time (build and search); recall@20 0.971 with 12 probes, 0.974 with 16 (search
#: 1.2x as long) and with 24 (2.0x). 25 k-means rounds instead of 10: the same recall.
SIMILAR_LIST_ROWS = 256
SIMILAR_PROBES = 12
SIMILAR_TRAIN_PER_LIST = 40
SIMILAR_KMEANS_ITER = 10
SIMILAR_METHODS = ("auto", "exact", "ivf")
_BLOCK_ROWS = 8192  # queries per block: their candidates and gathered rows, ~50 MB at 1,280-D
_PROJECT_ROWS = 16_384  # rows projected at a time (84 MB of 1,280-D float32 temporaries)


def similar_images(data: NDArray[np.floating], k: int = SIMILAR_K, seed: int = 0, *,
                   method: str = "auto", n_jobs: int | None = None) -> NDArray[np.int32]:
    """Each row's ``k`` nearest other rows (Euclidean), nearest first, as N x k int32 indices:
    the viewer's "more like this". ``method``: ``exact``, ``ivf`` (the approximate path of the
    module's doc) or ``auto`` (exact up to ``SIMILAR_EXACT_MAX_N`` rows). k is clipped to
    N - 1; threads: ``n_jobs`` (all cores by default), BLAS and faiss alike."""
    if data.ndim != 2:
        raise InputError(f"similar_images: data must be 2-D (N x D), got shape {data.shape}")
    if method not in SIMILAR_METHODS:
        raise InputError(f"similar_images: unknown method {method!r}; choose from "
                         + ", ".join(SIMILAR_METHODS))
    if k < 0:
        raise InputError(f"similar_images: k must be at least 0, got {k}")
    n, dim = data.shape
    k = min(k, n - 1)
    if k < 1:
        return np.zeros((n, max(k, 0)), dtype=np.int32)
    jobs = n_jobs or os.cpu_count() or 1
    if method == "auto":
        method = "exact" if n <= SIMILAR_EXACT_MAX_N else "ivf"
        log.info("look-alikes auto -> %s for N=%d, D=%d", method, n, dim)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=jobs), faiss_threads(jobs):
        if method == "exact":
            return knn_exact(data, k)[0].astype(np.int32)
        return _similar_ivf(np.ascontiguousarray(data, dtype=np.float32), k, seed, jobs)


def _similar_ivf(x: NDArray[np.float32], k: int, seed: int, jobs: int) -> NDArray[np.int32]:
    index = _projected_index(x, seed)
    c = min(SIMILAR_CANDIDATES + 1, len(x))  # the row itself comes back too
    out = np.empty((len(x), k), dtype=np.int32)
    for rows, queries in _list_blocks(index):
        cand, _ = ivf_search(index, queries, c, n_jobs=jobs)
        out[rows] = rerank(x, rows, cand, k)
    return out


def _projected_index(x: NDArray[np.float32], seed: int) -> Any:
    """The IVF index over the PCA projection of ``x`` (over ``x`` itself when it has no more
    than ``SIMILAR_PCA_DIMS`` columns), filled ``_PROJECT_ROWS`` rows at a time."""
    import faiss

    n, dim = x.shape
    rng = np.random.default_rng(seed)
    dims = min(SIMILAR_PCA_DIMS, dim)
    projection = None
    if dims < dim:
        fit = (x[np.sort(rng.choice(n, SIMILAR_PCA_ROWS, replace=False))]
               if n > SIMILAR_PCA_ROWS else x)
        projection = pca_directions(fit, dims, seed)

    def project(block: NDArray[np.float32]) -> NDArray[np.float32]:
        if projection is None:
            return block
        mean, directions = projection
        return np.ascontiguousarray((block - mean) @ directions)

    lists = max(1, round(n / SIMILAR_LIST_ROWS))
    train = min(n, lists * SIMILAR_TRAIN_PER_LIST)
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dims), dims, lists)
    index.cp.seed = int(seed) % (2**31 - 1)
    index.cp.niter = SIMILAR_KMEANS_ITER
    index.cp.max_points_per_centroid = math.ceil(train / lists)  # faiss samples no further
    index.cp.min_points_per_centroid = 1  # (a small N's few rows per list are no mistake)
    index.cp.verbose = False
    sample = np.sort(rng.choice(n, train, replace=False))
    index.train(np.concatenate([project(x[sample[i:i + _PROJECT_ROWS]])
                                for i in range(0, train, _PROJECT_ROWS)]))
    for start in range(0, n, _PROJECT_ROWS):
        index.add(project(x[start:start + _PROJECT_ROWS]))
    index.nprobe = min(SIMILAR_PROBES, lists)
    return index


def _list_blocks(index: Any) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
    """(row ids, their vectors as indexed) in blocks of about ``_BLOCK_ROWS`` rows, list by
    list: the index's own copy of each row is its query, so no second projection is kept."""
    import faiss

    ids: list[NDArray[np.int64]] = []
    codes: list[NDArray[np.float32]] = []
    size = 0
    for lst in range(index.nlist):
        count = index.invlists.list_size(lst)
        if count == 0:
            continue
        ids.append(faiss.rev_swig_ptr(index.invlists.get_ids(lst), count).copy())
        raw = faiss.rev_swig_ptr(index.invlists.get_codes(lst), count * index.code_size)
        codes.append(raw.view(np.float32).reshape(count, index.d).copy())
        size += count
        if size >= _BLOCK_ROWS:
            yield np.concatenate(ids), np.concatenate(codes)
            ids, codes, size = [], [], 0
    if ids:
        yield np.concatenate(ids), np.concatenate(codes)


def rerank(x: NDArray[np.float32], rows: NDArray[np.int64], candidates: NDArray[np.int64],
           k: int) -> NDArray[np.int32]:
    """The ``k`` of each query row's ``candidates`` (ids into ``x``, -1 past the last)
    nearest to it in ``x``, nearest first, the row itself left out: faiss's
    ``knn_L2sqr_by_idx`` computes the distances from the rows of ``x`` in place."""
    import faiss

    nq, c = candidates.shape
    queries = np.ascontiguousarray(x[rows])
    cand = np.ascontiguousarray(candidates, dtype=np.int64)
    kk = min(k + 1, c)
    dist = np.empty((nq, kk), dtype=np.float32)
    found = np.empty((nq, kk), dtype=np.int64)
    by_idx = faiss.knn_L2sqr_by_idx  # type: ignore[attr-defined]  # not in faiss's stubs
    # the last argument strides the candidates by c (its default strides by N)
    by_idx(faiss.swig_ptr(queries), faiss.swig_ptr(x), faiss.swig_ptr(cand), x.shape[1], nq,
           len(x), c, kk, faiss.swig_ptr(dist), faiss.swig_ptr(found), c)
    # the row's own entry (distance 0, or tied with its duplicates) goes last, wherever it is
    keep = np.argsort(found == rows[:, None], axis=1, kind="stable")[:, :k]
    return np.take_along_axis(found, keep, axis=1).astype(np.int32)


def pca_directions(x: NDArray[np.float32], dims: int,
                   seed: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The mean of ``x``'s rows and its ``dims`` leading principal directions (D x dims):
    three rounds of subspace iteration on the covariance with 10 extra columns, then the
    Rayleigh-Ritz eigenvectors. Only the subspace matters here (it chooses candidates): on
    1,280-d vectors this takes 0.05 s where a full eigendecomposition takes 0.5-6 s."""
    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    centred = x - mean
    cov = centred.T @ centred
    width = min(dims + 10, x.shape[1])
    basis = np.random.default_rng(seed).standard_normal((x.shape[1], width)).astype(np.float32)
    q, _ = np.linalg.qr(cov @ basis)
    for _ in range(3):
        q, _ = np.linalg.qr(cov @ q)
    _, vectors = np.linalg.eigh((q.T @ cov @ q).astype(np.float64))
    return mean, np.ascontiguousarray(q @ vectors[:, ::-1][:, :dims].astype(np.float32))
