"""Coarse-to-fine start for the auction: prices from a half-size problem, windows where they point.

Windowed auction rounds move a point a few cells per round, so a first guess that is wrong by
tens of cells (recursive bisection on big grids) costs tens of rounds. Instead, one point per
2 x 2 block of the bisection (a spatially stratified quarter of the points) is solved on the
half-size grid, recursively; each 2 x 2 block then follows its representative, and the coarse
cell prices, interpolated and rescaled, become the fine prices. The fine rounds only fix local
detail. The bisection cell stays a candidate of each point, so the candidate graph always has a
complete matching. Memory stays O(N + M).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tsnegrid.arrange.assign.geometry import own_cells
from tsnegrid.arrange.assign.partition import bisection_assignment
from tsnegrid.arrange.assign.rounds import reanchor

log = logging.getLogger(__name__)

BASE_CELLS = 4096
REL_EPS_START = 1e-2  # first auction step on a level that inherits prices, as a fraction of scale


@dataclass(frozen=True)
class Warm:
    """An eps-optimal windowed assignment with its prices and cost scale."""

    assigned: NDArray[np.int64]
    prices: NDArray[np.float64]
    anchor: NDArray[np.int64]
    own: NDArray[np.int64]
    scale: float


def _follow_blocks(anchor: NDArray[np.int64], sub: NDArray[np.int64],
                   coarse_cells: NDArray[np.int64], rows: int, cols: int,
                   ccol: int) -> NDArray[np.int64]:
    """Move every 2 x 2 block of the fine assignment to where its representative went.

    The representative is the point in the block's top-left cell; points keep their offset in the
    block. On a full grid with even sides this maps a permutation to a permutation.
    """
    r0, c0 = np.divmod(anchor, cols)
    block = (r0 // 2) * ccol + c0 // 2
    target = np.full((rows + 1) // 2 * ccol, -1, dtype=np.int64)
    target[block[sub]] = coarse_cells
    moved = target[block]
    has = moved >= 0
    tr, tc = np.divmod(moved[has], ccol)
    out = anchor.copy()
    out[has] = (np.minimum(2 * tr + r0[has] % 2, rows - 1) * cols
                + np.minimum(2 * tc + c0[has] % 2, cols - 1))
    return out


def _upsample(coarse: NDArray[np.float64], rows: int, cols: int, crow: int,
              ccol: int) -> NDArray[np.float64]:
    """Bilinear interpolation of a crow x ccol field at the centres of a rows x cols grid."""
    grid = coarse.reshape(crow, ccol)
    y = np.clip((np.arange(rows) + 0.5) * crow / rows - 0.5, 0, crow - 1)
    x = np.clip((np.arange(cols) + 0.5) * ccol / cols - 0.5, 0, ccol - 1)
    y0 = np.minimum(np.floor(y).astype(np.int64), max(crow - 2, 0))
    x0 = np.minimum(np.floor(x).astype(np.int64), max(ccol - 2, 0))
    y1 = np.minimum(y0 + 1, crow - 1)
    x1 = np.minimum(x0 + 1, ccol - 1)
    fy = (y - y0)[:, None]
    fx = (x - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return (top * (1 - fy) + bottom * fy).ravel()


def warm_start(points: NDArray[np.float64], rows: int, cols: int, metric: int, wa: int,
               rel_eps_stop: float, max_rounds: int, min_gain: float) -> Warm:
    """Windowed auction to ``rel_eps_stop * scale``, seeded coarse-to-fine on big grids."""
    n = len(points)
    px = np.ascontiguousarray(points[:, 0])
    py = np.ascontiguousarray(points[:, 1])
    anchor = bisection_assignment(points, rows, cols)
    own = own_cells(points, rows, cols)
    r0, c0 = np.divmod(anchor, cols)
    d2 = (c0 + 0.5 - px) ** 2 + (r0 + 0.5 - py) ** 2
    scale = float(max(1.0, (np.sqrt(d2) if metric else d2).max()))
    prices = np.zeros(rows * cols)
    seed = anchor
    eps_start = scale / 4.0
    crow, ccol = (rows + 1) // 2, (cols + 1) // 2
    sub = np.flatnonzero((r0 % 2 == 0) & (c0 % 2 == 0))
    if rows * cols > BASE_CELLS and min(crow, ccol) >= 2 and len(sub) >= 2:
        coarse_pts = points[sub] * np.array([ccol / cols, crow / rows])
        coarse = warm_start(coarse_pts, crow, ccol, metric, wa, rel_eps_stop, max_rounds,
                            min_gain)
        stretch = np.sqrt(rows * cols / (crow * ccol))
        prices = _upsample(coarse.prices, rows, cols, crow, ccol) * (
            stretch if metric else stretch**2)
        seed = anchor
        anchor = _follow_blocks(anchor, sub, coarse.assigned, rows, cols, ccol)
        eps_start = REL_EPS_START * scale
    assigned = np.full(n, -1, dtype=np.int64)
    rounds = reanchor(px, py, rows, cols, metric, anchor, own, wa, prices, assigned,
                      eps_start, rel_eps_stop * scale, scale, max_rounds, min_gain, seed)
    log.debug("warm start %dx%d: %d points, %d rounds", rows, cols, n, rounds)
    return Warm(assigned, prices, anchor, own, scale)

