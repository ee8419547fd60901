"""Map smoothing before the swaps, for low-dimensional data: FLAS-style re-sorting of a grid
against its own blurred map.

On a continuum of few dimensions (a cube of RGB colours) t-SNE tears the space into clumps, and
the local swaps polish each clump but cannot straighten the seams. This pass does what Barthel
et al.'s FLAS does from a random start, but from the snapped grid: each round blurs the grid's
vectors with a box filter (holes excluded) into a "map", then re-assigns the images of small
random groups of nearby cells to those cells by an exact LAP against the map (cost: squared
distance from image to map vector). The filter radius shrinks over the rounds, so the seams are
pulled smooth first and the detail returns last. On high-dimensional, clustered vectors the
t-SNE order is better than what smoothing makes of it (DPQ16 falls by 0.003-0.013 on digits, emoji,
Fashion-MNIST), so the pass runs only when a few principal directions hold nearly all variance.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from tsnegrid.arrange._kernels import smooth_pass

#: The pass runs when the top ``LOW_DIMS`` principal directions hold at least ``LOW_SHARE`` of
#: the variance (RGB colours: 1.0; sklearn digits 0.41, Fashion-MNIST 0.64, emoji 0.41).
LOW_DIMS = 3
LOW_SHARE = 0.9
#: First filter radius as a share of the grid's side (sqrt of its cells), and its shrink factor
#: per round (32 x 32: radii 8, 6, 4, 3, 2, 1).
START = 0.25
SHRINK = 0.7
#: Groups per round (x N / ``CELLS``), cells per group and the half-width they are drawn from.
SWEEPS = 3.0
CELLS = 9
REACH = 2


def is_low_dimensional(x: NDArray[np.float32], vectors: NDArray[np.floating],
                       share: float = LOW_SHARE) -> bool:
    """Whether the top ``LOW_DIMS`` principal directions of ``x`` (the refine projection of
    ``vectors``) hold at least ``share`` of the variance of ``vectors``."""
    total = float(np.asarray(vectors, dtype=np.float64).var(axis=0).sum())
    if total <= 0 or len(x) < 2:
        return False
    top = np.sort(np.linalg.eigvalsh(np.atleast_2d(np.cov(x.T.astype(np.float64)))))[::-1]
    return float(top[:LOW_DIMS].sum()) * (len(x) - 1) / len(x) / total >= share


def radii(rows: int, cols: int) -> list[int]:
    """Filter radii, largest first: from ``START`` x the grid's side, times ``SHRINK``, to 1."""
    out, r = [], START * math.sqrt(rows * cols)
    while r >= 1:
        out.append(round(r))
        r *= SHRINK
    return out


def box_map(board: NDArray[np.int64], x: NDArray[np.float32], rows: int, cols: int,
            radius: int) -> NDArray[np.float32]:
    """Mean of the occupied cells' vectors in the (2 radius + 1)^2 window around each cell
    (clipped at the border); cells whose window is empty get zeros."""
    d = x.shape[1]
    occ = (board >= 0).reshape(rows, cols)
    grid = np.zeros((rows, cols, d))
    grid[occ] = x[board[board >= 0]]
    s = np.zeros((rows + 1, cols + 1, d))
    s[1:, 1:] = grid.cumsum(0).cumsum(1)
    c = np.zeros((rows + 1, cols + 1))
    c[1:, 1:] = occ.cumsum(0).cumsum(1)
    r0 = np.clip(np.arange(rows) - radius, 0, rows)
    r1 = np.clip(np.arange(rows) + radius + 1, 0, rows)
    c0 = np.clip(np.arange(cols) - radius, 0, cols)
    c1 = np.clip(np.arange(cols) + radius + 1, 0, cols)
    tot = s[r1][:, c1] - s[r0][:, c1] - s[r1][:, c0] + s[r0][:, c0]
    cnt = c[r1][:, c1] - c[r0][:, c1] - c[r1][:, c0] + c[r0][:, c0]
    out = tot / np.maximum(cnt, 1)[:, :, None]
    return np.ascontiguousarray(out.reshape(rows * cols, d), dtype=np.float32)


def smooth(board: NDArray[np.int64], pos: NDArray[np.int64], x: NDArray[np.float32], rows: int,
           cols: int, seed: int) -> None:
    """Re-sort the grid (``board``: image per cell or -1; ``pos``: cell per image; both updated
    in place) against its blurred map, one round per radius of ``radii``."""
    rng = np.random.default_rng(seed)
    n_groups = max(1, math.ceil(SWEEPS * len(pos) / CELLS))
    for radius in radii(rows, cols):
        smooth_pass(board, pos, x, box_map(board, x, rows, cols, radius), rows, cols, REACH,
                     n_groups, CELLS, int(rng.integers(2**31 - 1)))
