"""Linear assignment sorting (LAS, Barthel et al. 2022): re-sort a grid against its own blurred map.

Each round blurs the grid's vectors with a box filter (holes excluded) into a "map" of one vector
per cell, then solves the assignment of every vector to a cell that minimises the summed squared
distance from vector to map vector, and moves the vectors there. The filter radius shrinks by
``SHRINK`` per round, so the coarse order settles first and the detail comes last.

``las`` is the method as published: from a random grid, the radius starting at half the grid's
longer side, every round a full N x M assignment (scipy's dense solver, O(N^3) per round), the
anchor the benchmarks compare against. ``presort`` is what the refinement runs, before its swaps,
on vectors of few effective dimensions (``choose_path``): the same rounds started from the snapped
t-SNE grid with a smaller radius, each round solved exactly over a sparse candidate set (each
vector's ``CANDIDATES`` nearest map vectors plus its current cell, so the current layout is
always feasible) by ``tsnegrid.arrange.sparse_lap``, which costs milliseconds where the dense
solve costs a second.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from tsnegrid.arrange.smooth import box_map
from tsnegrid.errors import InputError

#: Radius factor per round (the paper's 0.9).
SHRINK = 0.9
#: First radius of ``presort`` as a share of the grid's side (sqrt of its cells; 32 x 32: 9.6,
#: 22 rounds). Measured on RGB colours (docs/quality.md): starts of 8-16 cells on 32 x 32 reach
#: DPQ16 0.954-0.958 after the swaps, 4 cells 0.950-0.951, 3 cells 0.945.
PRESORT_START = 0.3
#: ``choose_path`` sorts vectors whose top 3 principal directions hold at least this share of the
#: variance. Measured (docs/quality.md): colours (1.0) and colours plus noise (0.95 / 0.85 / 0.7)
#: gain 0.016-0.025 DPQ16 over the swaps alone, Fashion-MNIST 2,500 (0.53) and the ELPV photos
#: (0.54) 0.003 and 0.008, which puts them past LAS; sklearn digits (0.40) loses 0.003-0.005.
SORT_SHARE = 0.5
#: ... on grids up to this many cells; above, low-dimensional vectors are smoothed instead
#: (``tsnegrid.arrange.smooth``; 10,000 colours: sorting 0.960 but 2.4x the time of t-SNE + LAP,
#: smoothing 0.934).
PRESORT_LIMIT = 4096
#: Nearest map vectors each vector may move to in one ``presort`` round (16 left the ELPV photos
#: 0.002 behind LAS; 32 put them 0.0004 ahead and the colours 0.001-0.002 higher).
CANDIDATES = 32

Solver = Callable[[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]],
                  NDArray[np.int64]]


def radius_schedule(start: float, shrink: float = SHRINK) -> list[int]:
    """Integer box radii, one per round: ``start`` times ``shrink`` per round while it is >= 1
    (rounded; small radii repeat, as the shrinking real radius passes them several times)."""
    if not 0 < shrink < 1:
        raise InputError(f"sort: shrink must lie in (0, 1), got {shrink}")
    out, r = [], float(start)
    while r >= 1:
        out.append(max(1, round(r)))
        r *= shrink
    return out


def _map_costs(x: NDArray[np.float64], fmap: NDArray[np.float64]) -> NDArray[np.float64]:
    """Dense N x M squared distances from each vector to each cell's map vector."""
    sq = np.einsum("ij,ij->i", x, x)
    fq = np.einsum("ij,ij->i", fmap, fmap)
    return np.maximum(sq[:, None] - 2 * x @ fmap.T + fq[None, :], 0.0)


def solve_full(x: NDArray[np.float64], fmap: NDArray[np.float64],
               pos: NDArray[np.int64]) -> NDArray[np.int64]:
    """Cell per vector of the full assignment against the map (scipy's dense solver)."""
    from scipy.optimize import linear_sum_assignment

    rows_idx, cells = linear_sum_assignment(_map_costs(x, fmap))
    out = np.empty(len(x), dtype=np.int64)
    out[rows_idx] = cells
    return out


def solve_candidates(x: NDArray[np.float64], fmap: NDArray[np.float64], pos: NDArray[np.int64],
                     k: int = CANDIDATES) -> NDArray[np.int64]:
    """Cell per vector of the best assignment of the vectors to the cells they occupy now (holes
    stay), each vector taking its current cell or one of the ``k`` occupied cells whose map
    vectors are nearest to it (``tsnegrid.arrange.sparse_lap``'s auction over those edges)."""
    from tsnegrid.arrange.sparse_lap import solve
    from tsnegrid.neighbors import knn_between

    n = len(x)
    occupied = np.sort(pos)
    k = min(k, n)
    near = knn_between(x, fmap[occupied], k)
    cand = np.sort(np.concatenate([np.searchsorted(occupied, pos)[:, None],
                                   np.asarray(near, dtype=np.int64).reshape(n, k)], axis=1),
                   axis=1)
    keep = np.ones(cand.shape, dtype=bool)
    keep[:, 1:] = cand[:, 1:] != cand[:, :-1]
    indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
    row = np.repeat(np.arange(n), cand.shape[1])[keep.ravel()]
    col = cand[keep]
    d = x[row] - fmap[occupied[col]]
    cols = solve(indptr, col, np.einsum("ij,ij->i", d, d), n)
    return occupied[cols]


def sort_rounds(board: NDArray[np.int64], pos: NDArray[np.int64], x: NDArray[np.floating],
                rows: int, cols: int, radii: list[int], solver: Solver) -> None:
    """One assignment round per radius: blur (``tsnegrid.arrange.smooth.box_map``), solve, move.
    ``board`` (image per cell or -1) and ``pos`` (cell per image) are updated in place."""
    xf = np.asarray(x, dtype=np.float32)
    x64 = xf.astype(np.float64)
    for radius in radii:
        fmap = box_map(board, xf, rows, cols, radius).astype(np.float64)
        pos[:] = solver(x64, fmap, pos)
        board[:] = -1
        board[pos] = np.arange(len(pos))


def las(vectors: NDArray[np.floating], rows: int, cols: int, *, seed: int = 0,
        shrink: float = SHRINK) -> NDArray[np.int64]:
    """LAS as published: cells (``r * cols + c`` per vector) sorted from a seeded random grid by
    full assignments, the radius from half the longer side down by ``shrink`` per round.
    O(N^3) per round: meant for grids of a few thousand cells."""
    x = np.asarray(vectors, dtype=np.float32)
    n, m = len(x), rows * cols
    if n > m:
        raise InputError(f"sort: {n} vectors do not fit a {rows}x{cols} grid")
    pos = np.random.default_rng(seed).permutation(m)[:n].astype(np.int64)
    board = np.full(m, -1, dtype=np.int64)
    board[pos] = np.arange(n)
    sort_rounds(board, pos, x - x.mean(axis=0), rows, cols,
                radius_schedule(max(rows, cols) / 2, shrink), solve_full)
    return pos


def presort(board: NDArray[np.int64], pos: NDArray[np.int64], x: NDArray[np.float32], rows: int,
            cols: int, start: float = PRESORT_START) -> None:
    """LAS rounds from the current grid (``board``/``pos``, updated in place), the radius from
    ``start`` x the grid's side shrinking by ``SHRINK`` to 1, each round solved over
    ``CANDIDATES`` nearest map cells; holes keep their cells (the swaps move them)."""
    sort_rounds(board, pos, x, rows, cols, radius_schedule(start * math.sqrt(rows * cols)),
                solve_candidates)


def choose_path(x: NDArray[np.float32], vectors: NDArray[np.floating], n_cells: int) -> str:
    """What the refinement runs before its swaps, by data shape (the share of variance in the top
    3 principal directions, ``tsnegrid.arrange.smooth.is_low_dimensional``): ``"sort"``
    (``presort``) when it is at least ``SORT_SHARE`` on up to ``PRESORT_LIMIT`` cells;
    ``"smooth"`` (``tsnegrid.arrange.smooth``) on larger grids when it is at least the smoothing's
    own ``LOW_SHARE``; else ``"none"``: on high-dimensional, clustered vectors a blurred map's
    order is worse than the t-SNE's (docs/quality.md)."""
    from tsnegrid.arrange.smooth import is_low_dimensional

    if n_cells <= PRESORT_LIMIT:
        return "sort" if is_low_dimensional(x, vectors, SORT_SHARE) else "none"
    return "smooth" if is_low_dimensional(x, vectors) else "none"
