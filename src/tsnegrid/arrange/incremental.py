"""Incremental add: place new images into an existing layout without a full rebuild.

Old images keep their cells, except a bounded number next to where new images land, which may
move when that improves the layout. Each new image targets the mean cell of its nearest old
images (in PCA space of the embeddings); new images go to the free cells nearest their targets
(an exact LAP; the grid grows by whole rows at the bottom when it lacks free cells), then the
refinement of ``tsnegrid.arrange.refine`` moves only new images, holes and the budgeted old images.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from tsnegrid.arrange import refine as refine_mod
from tsnegrid.errors import InputError
from tsnegrid.settings import MAX_MOVED

log = logging.getLogger(__name__)

#: Old images whose mean cell is a new image's target.
NEIGHBOURS = 5
#: Grid distance (cells) from a new image's target within which old images may move.
REACH_MOVED = 3.0
#: Refinement passes over the movable images.
PASSES = 8


@dataclass(frozen=True)
class Placement:
    """Cells of old and new images on a grid of ``rows`` x the old columns."""

    old_cells: NDArray[np.int64]
    new_cells: NDArray[np.int64]
    rows: int
    moved: int
    """Old images that changed cell."""


def cell_xy(cells: NDArray[np.int64], cols: int) -> NDArray[np.float64]:
    """Cell centres (x = col + 0.5, y = row + 0.5)."""
    r, c = np.divmod(cells, cols)
    return np.column_stack([c + 0.5, r + 0.5]).astype(np.float64)


def _misfit(x: NDArray[np.float64], cells: NDArray[np.int64], rows: int,
            cols: int) -> NDArray[np.float64]:
    """Mean distance of each image to its occupied 8-neighbours (0 when it has none)."""
    board = np.full(rows * cols, -1, dtype=np.int64)
    board[cells] = np.arange(len(cells))
    r, c = np.divmod(cells, cols)
    total, count = np.zeros(len(cells)), np.zeros(len(cells))
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            rr, cc = r + dr, c + dc
            ok = (dr or dc) & (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
            other = np.full(len(cells), -1)
            other[ok] = board[rr[ok] * cols + cc[ok]]
            has = other >= 0
            total[has] += np.linalg.norm(x[has] - x[other[has]], axis=1)
            count += has
    return total / np.maximum(count, 1)


def place(old_vectors: NDArray[np.floating], old_cells: NDArray[np.int64], rows: int, cols: int,
          new_vectors: NDArray[np.floating], *, seed: int = 0,
          max_moved: float = MAX_MOVED) -> Placement:
    """Place ``new_vectors`` into the layout of ``old_vectors`` (cells on a rows x cols grid)."""
    old_cells = np.asarray(old_cells, dtype=np.int64)
    n_old, n_new = len(old_cells), len(new_vectors)
    if len(old_vectors) != n_old:
        raise InputError(f"{len(old_vectors)} old vectors for {n_old} placed images")
    if n_new == 0:
        return Placement(old_cells.copy(), np.zeros(0, np.int64), rows, 0)
    if n_old == 0:
        raise InputError("the layout has no images to add to")
    x = refine_mod.reduce_for_refine(np.vstack([old_vectors, new_vectors]), seed)
    xo, xn = x[:n_old].astype(np.float64), x[n_old:].astype(np.float64)
    k = min(NEIGHBOURS, n_old)
    old_xy = cell_xy(old_cells, cols)
    target = np.empty((n_new, 2))
    sq = (xo**2).sum(1)
    for start in range(0, n_new, 256):
        q = xn[start:start + 256]
        d = (q**2).sum(1)[:, None] - 2 * q @ xo.T + sq[None, :]
        target[start:start + 256] = old_xy[np.argsort(d, axis=1, kind="stable")[:, :k]].mean(1)

    free = np.setdiff1d(np.arange(rows * cols), old_cells)
    if len(free) < n_new:
        grow = math.ceil((n_new - len(free)) / cols)
        log.info("grid full: adding %d row(s) to %d x %d", grow, rows, cols)
        free = np.concatenate([free, np.arange(rows * cols, (rows + grow) * cols)])
        rows += grow
    cost = ((target[:, None, :] - cell_xy(free, cols)[None, :, :]) ** 2).sum(-1)
    cells = np.concatenate([old_cells, free[linear_sum_assignment(cost)[1]]])

    # Old images that may move: near a new image's target, those that fit their neighbours
    # worst (they lose least by leaving and free the best spots).
    movable = np.zeros(n_old + n_new, dtype=np.bool_)
    movable[n_old:] = True
    budget = int(math.floor(max_moved * n_old))
    if budget:
        gap = np.full(n_old, np.inf)
        for start in range(0, n_new, 256):
            t = target[start:start + 256]
            gap = np.minimum(gap, ((old_xy[:, None, :] - t[None]) ** 2).sum(-1).min(axis=1))
        score = np.where(gap <= REACH_MOVED**2, _misfit(xo, old_cells, rows, cols), -np.inf)
        chosen = np.lexsort((np.arange(n_old), -score))[:budget]
        movable[chosen[np.isfinite(score[chosen])]] = True
    out = refine_mod.refine(np.vstack([old_vectors, new_vectors]), cells, rows, cols,
                            seed=seed, movable=movable, max_passes=PASSES, min_gain=0.0)
    moved = int((out.cells[:n_old] != old_cells).sum())
    log.info("placed %d new images; %d of %d old images moved", n_new, moved, n_old)
    return Placement(out.cells[:n_old], out.cells[n_old:], rows, moved)
