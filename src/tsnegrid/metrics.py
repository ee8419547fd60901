"""Layout quality: displacement, k-NN preservation, DPQ and grid-neighbour label agreement.

All functions are pure; positions are grid cells (row, col) and vectors the embedding.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tsnegrid.neighbors import knn_of_rows

DPQ_MAX_ROWS = 2048
#: Up to this many items the layout neighbours come from brute force (``knn_of_rows``; a
#: scipy import costs 0.5-0.7 s), above from a k-d tree.
BRUTE_MAX_N = 20_000
DPQ_BUDGET = 20_000_000


def _floats(vectors: NDArray[np.floating]) -> NDArray[np.floating]:
    """float32 kept as is (no copy of a large array), anything else as float64."""
    arr = np.asarray(vectors)
    return arr if arr.dtype == np.float32 else arr.astype(np.float64)


def cell_positions(cells: NDArray[np.int64], cols: int) -> NDArray[np.float64]:
    """Cell index to (x, y) = (col + 0.5, row + 0.5) in grid units."""
    r, c = np.divmod(np.asarray(cells, dtype=np.int64), cols)
    return np.column_stack([c + 0.5, r + 0.5]).astype(np.float64)


def displacement(points: NDArray[np.float64], cells: NDArray[np.int64],
                 cols: int) -> dict[str, float]:
    """Mean and max distance (in cells) between each fitted point and its cell centre."""
    d = np.linalg.norm(points - cell_positions(cells, cols), axis=1)
    return {"mean_displacement": float(d.mean()), "max_displacement": float(d.max())}


def _layout_neighbours(pos: NDArray[np.float64], rows_idx: NDArray[np.int64],
                       k: int) -> NDArray[np.int64]:
    """For the given rows, their k nearest other points of ``pos`` (N x 2), nearest first."""
    if len(pos) > BRUTE_MAX_N:
        from scipy.spatial import cKDTree

        _, lo = cKDTree(pos).query(pos[rows_idx], k=k + 1)
        return np.asarray(lo[:, 1:], dtype=np.int64)
    return knn_of_rows(pos, rows_idx, k)[0]


def knn_preservation(vectors: NDArray[np.floating], positions: NDArray[np.float64],
                     k: int = 10, max_rows: int = DPQ_MAX_ROWS) -> float:
    """Mean fraction of each item's k nearest neighbours in vector space that are also among
    its k nearest in ``positions`` (2-D points or grid cells). Above ``max_rows`` items the mean
    is estimated on a fixed random sample of items (their neighbours still come from all)."""
    n = len(vectors)
    k = min(k, n - 1)
    if k < 1:
        return 1.0
    rows_idx = np.arange(n)
    if n > max_rows:
        rows_idx = np.sort(np.random.default_rng(0).choice(n, max_rows, replace=False))
    hi = knn_of_rows(_floats(vectors), rows_idx, k)[0]
    # Many grid distances tie; a tiny deterministic jitter keeps the count at exactly k.
    jitter = np.random.default_rng(0).uniform(-1e-6, 1e-6, positions.shape)
    pos = positions + jitter
    lo = _layout_neighbours(pos, rows_idx, k)
    hits = [len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(hi, lo, strict=True)]
    return float(np.mean(hits) / k)


def _mean_neighbour_distances(vectors: NDArray[np.floating], rows_idx: NDArray[np.int64],
                              grid_xy: NDArray[np.float64] | None) -> NDArray[np.float64]:
    """For the given rows: mean over rows of the running mean HD distance to the k nearest
    neighbours, k = 1..N-1, nearest by HD distance (grid_xy None) or by grid distance (ties
    ordered by HD distance, as in Barthel et al.)."""
    n = len(vectors)
    acc = np.zeros(n - 1)
    sq = np.einsum("ij,ij->i", vectors, vectors)
    for start in range(0, len(rows_idx), 256):
        ids = rows_idx[start:start + 256]
        d = np.sqrt(np.maximum(sq[ids, None] - 2 * vectors[ids] @ vectors.T + sq[None, :], 0))
        d[np.arange(len(ids)), ids] = 0.0
        if grid_xy is None:
            # sorted by HD distance: the values themselves, no gather (the row's own zero first)
            d[np.arange(len(ids)), ids] = -1.0
            sd = np.sort(d, axis=1)[:, 1:]
        else:
            g = ((grid_xy[ids, None, :] - grid_xy[None, :, :]) ** 2).sum(-1)
            dmax = d.max() * 1.0001 + 1e-12
            key = g + d / dmax
            key[np.arange(len(ids)), ids] = -1.0
            order = np.argsort(key, axis=1, kind="stable")
            sd = np.take_along_axis(d, order, axis=1)[:, 1:]
        acc += (np.cumsum(sd, axis=1, dtype=np.float64) / np.arange(1, n)).sum(axis=0)
    return acc / len(rows_idx)


def dpq(vectors: NDArray[np.floating], cells: NDArray[np.int64], cols: int, p: float = 16,
        max_rows: int | None = None) -> float:
    """Distance Preservation Quality DPQ_p (Barthel et al. 2022), in [0, 1], higher is better.

    Holes do not count. Above ``max_rows`` items (default: 2,048, fewer for large N so that
    rows x N stays near 2e7) the per-row averages are estimated from a fixed random sample of
    rows (every column still counts).
    """
    x = _floats(vectors)
    n = len(x)
    if n < 3:
        return 1.0
    if max_rows is None:
        max_rows = min(DPQ_MAX_ROWS, max(32, DPQ_BUDGET // n))
    rows_idx = np.arange(n)
    if n > max_rows:
        rows_idx = np.sort(np.random.default_rng(0).choice(n, max_rows, replace=False))
    grid_xy = cell_positions(cells, cols)
    sq = np.einsum("ij,ij->i", x, x)
    sample = x[rows_idx]
    dsum = 0.0
    for start in range(0, len(rows_idx), 256):
        s = sample[start:start + 256]
        d = np.sqrt(np.maximum(sq[rows_idx[start:start + 256], None] - 2 * s @ x.T + sq, 0))
        dsum += d.sum()
    mean_d = dsum / (len(rows_idx) * (n - 1))
    if mean_d <= 0:
        return 1.0
    gain_grid = np.clip((mean_d - _mean_neighbour_distances(x, rows_idx, grid_xy)) / mean_d,
                        0, None)
    gain_best = np.clip((mean_d - _mean_neighbour_distances(x, rows_idx, None)) / mean_d, 0,
                        None)
    best = np.linalg.norm(gain_best, ord=p)
    return float(np.linalg.norm(gain_grid, ord=p) / best) if best > 0 else 1.0


def neighbour_agreement(labels: NDArray[np.generic], cells: NDArray[np.int64], rows: int,
                        cols: int) -> float:
    """Mean fraction of each image's occupied 8-neighbour cells holding the same label."""
    flat = np.full(rows * cols, -1, dtype=np.int64)
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    flat[cells] = np.arange(len(cells))
    board = flat.reshape(rows, cols)
    r, c = np.divmod(np.asarray(cells), cols)
    same = np.zeros(len(cells))
    seen = np.zeros(len(cells))
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == dc == 0:
                continue
            rr, cc = r + dr, c + dc
            inside = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
            other = np.full(len(cells), -1)
            other[inside] = board[rr[inside], cc[inside]]
            has = other >= 0
            seen += has
            same[has] += codes[other[has]] == codes[has]
    ok = seen > 0
    return float((same[ok] / seen[ok]).mean()) if ok.any() else 0.0


#: The neighbour count and DPQ exponent reported for every layout.
KNN_K = 10
DPQ_P = 16


def grid_quality(reference: NDArray[np.floating], cells: NDArray[np.int64], cols: int,
                 fitted: NDArray[np.float64] | None = None) -> dict[str, float]:
    """The metrics every layout reports: displacement from the fitted 2-D points (when given),
    ``KNN_K``-NN preservation and DPQ\\ :sub:`DPQ_P` against ``reference`` (the vectors, or the
    points when there are none)."""
    quality = displacement(fitted, cells, cols) if fitted is not None else {}
    grid_xy = cell_positions(cells, cols)
    quality[f"knn{KNN_K}_preservation"] = knn_preservation(reference, grid_xy, KNN_K)
    quality[f"dpq{DPQ_P}"] = dpq(reference, cells, cols, p=DPQ_P)
    return quality
