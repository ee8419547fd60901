"""Grid refinement: LAS-style swaps in the original vector space, seeded from the snapped grid.

The 2-D reduction throws away neighbourhood information that the grid can win back. Starting
from the assigned cells, each move takes a small group of cells (cells near a random cell, or a
random image's cell plus the cells around one of its nearest neighbours in PCA space), re-solves
which of the group's images goes where against their fixed outside neighbours (a tiny exact LAP,
as in Barthel et al.'s LAS/FLAS), and keeps the result only if the summed distance between
8-neighbours drops. So the t-SNE grid's global order stays while local order improves, and
stranded images jump next to their look-alikes. Holes may move; a seed fixes the result; each
pass costs O(N x dims). On low-dimensional vectors the swaps start from a grid first re-sorted
against its own blurred map (``tsnegrid.arrange.sort.choose_path``: LAS rounds of
``tsnegrid.arrange.sort``, or ``tsnegrid.arrange.smooth`` on large grids), which straightens
t-SNE's tears.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tsnegrid.arrange._kernels import swap_pass
from tsnegrid.errors import InputError
from tsnegrid.settings import REFINE_MODES

log = logging.getLogger(__name__)

#: ``auto`` refines grids up to this many cells (above, a pass costs seconds and the grid's
#: local order is already set by the t-SNE layout's sampled placement).
AUTO_LIMIT = 250_000
#: PCA dimensions the swaps compare (DPQ on the full vectors moved < 0.002 between 32 and 64).
DIMS = 32
#: Rows the principal directions are fitted on.
PCA_FIT = 1000
#: Cells re-solved together in one move (FLAS's default is 9; the neighbour moves use 10).
SWAP_CELLS = 10
#: Half-width of the window the local moves draw their cells from.
REACH = 2
#: Nearest neighbours (in the PCA space) an image may be pulled next to.
KNN = 8
#: Weight of diagonal neighbours in the objective.
WDIAG = 0.5
#: Moves per pass (x N), the pass budget and the relative gain below which passes stop.
SWEEPS = 1.0
MAX_PASSES = 30
MIN_GAIN = 0.001


@dataclass(frozen=True)
class Refined:
    """Refined cells (same meaning as the input), how many images changed cell, passes run."""

    cells: NDArray[np.int64]
    moved: int
    passes: int


def resolve_refine(mode: str, n_cells: int) -> bool:
    """Turn the ``refine`` setting into on/off; ``auto`` refines up to ``AUTO_LIMIT`` cells."""
    if mode not in REFINE_MODES:
        raise InputError(f"refine must be one of {', '.join(REFINE_MODES)}, got {mode!r}")
    if mode != "auto":
        return mode == "on"
    chosen = n_cells <= AUTO_LIMIT
    log.info("refine auto -> %s for %d cells", "on" if chosen else "off", n_cells)
    return chosen


def reduce_for_refine(vectors: NDArray[np.floating], seed: int,
                      dims: int = DIMS) -> NDArray[np.float32]:
    """Centred projection on the top ``dims`` principal directions, as float32: the space the
    swaps compare in. The directions come from a randomized SVD of at most ``PCA_FIT`` seeded
    sample rows (the full fit cost more than all the passes), on one BLAS thread (on a busy
    2-core machine two threads made these small factorisations 50x slower). Narrow input is
    only centred."""
    from threadpoolctl import threadpool_limits

    from tsnegrid.reduce.pca import top_directions

    x = np.asarray(vectors, dtype=np.float32)
    x = x - x.mean(axis=0)
    if x.shape[1] > dims and x.shape[0] > dims:
        sample = x
        if len(x) > PCA_FIT:
            rows = np.random.default_rng(seed).choice(len(x), PCA_FIT, replace=False)
            sample = x[np.sort(rows)]
        with threadpool_limits(1):
            x = x @ top_directions(sample, dims, seed, power_iterations=2).T
    return np.ascontiguousarray(x, dtype=np.float32)


def refine(
    vectors: NDArray[np.floating],
    cells: NDArray[np.int64],
    rows: int,
    cols: int,
    *,
    seed: int = 0,
    dims: int = DIMS,
    max_passes: int = MAX_PASSES,
    movable: NDArray[np.bool_] | None = None,
    min_gain: float = MIN_GAIN,
) -> Refined:
    """Improve a grid layout of ``vectors`` (N x D, one per placed image) by local swaps.

    ``cells[i]`` is image i's cell ``r * cols + c``; holes are the unused cells. Each pass
    makes ``SWEEPS`` x N moves; passes stop when one gains less than ``min_gain`` of the summed
    neighbour distance, or after ``max_passes``. With ``movable`` (one flag per image), only
    those images (and holes) change cells. Without it, low-dimensional vectors are first
    re-sorted against their blurred map (``tsnegrid.arrange.sort.choose_path``; RGB colours:
    DPQ16 0.934 with swaps alone, 0.943 after FLAS-style smoothing, 0.95x after LAS rounds).
    """
    cells = np.asarray(cells, dtype=np.int64)
    n, m = len(cells), rows * cols
    if len(vectors) != n:
        raise InputError(f"refine: {len(vectors)} vectors for {n} cells")
    if n and (cells.min() < 0 or cells.max() >= m or len(np.unique(cells)) != n):
        raise InputError("refine: cells must be distinct indices into the grid")
    if n < 3 or m < 4:
        return Refined(cells.copy(), 0, 0)
    from tsnegrid.neighbors import nearest_neighbors

    x = reduce_for_refine(vectors, seed, dims)
    knn = np.ascontiguousarray(nearest_neighbors(x, KNN, seed=seed)[0], dtype=np.int64)
    board = np.full(m, -1, dtype=np.int64)
    board[cells] = np.arange(n)
    pos = cells.copy()
    mobile = (np.ones(n, dtype=np.bool_) if movable is None
              else np.ascontiguousarray(movable, dtype=np.bool_))
    if len(mobile) != n:
        raise InputError(f"refine: {len(mobile)} movable flags for {n} images")
    if movable is None:
        from tsnegrid.arrange import smooth, sort

        path = sort.choose_path(x, vectors, m)
        if path == "sort":
            sort.presort(board, pos, x, rows, cols)
        elif path == "smooth":
            smooth.smooth(board, pos, x, rows, cols, seed)
        log.info("refine path for %d vectors on %dx%d: %s, then swaps", n, rows, cols, path)
    rng = np.random.default_rng(seed)
    n_steps = max(1, math.ceil(SWEEPS * int(mobile.sum())))
    energy = grid_energy(board, x, rows, cols)
    passes = 0
    while passes < max_passes:
        swap_pass(board, pos, x, knn, mobile.view(np.uint8), rows, cols, REACH, n_steps,
                  SWAP_CELLS, WDIAG, int(rng.integers(2**31 - 1)))
        passes += 1
        new = grid_energy(board, x, rows, cols)
        gain, energy = (energy - new) / max(energy, 1e-12), new
        if gain < min_gain:
            break
    moved = int((pos != cells).sum())
    log.info("refined %d images on %dx%d in %d passes, %d moved", n, rows, cols, passes, moved)
    return Refined(pos, moved, passes)


def grid_energy(board: NDArray[np.int64], x: NDArray[np.float32], rows: int,
                cols: int) -> float:
    """Summed distance between every pair of occupied 8-neighbour cells (diagonals weighted
    ``WDIAG``): what the swaps lower."""
    b = board.reshape(rows, cols)
    total = 0.0
    for dr, dc, w in ((0, 1, 1.0), (1, 0, 1.0), (1, 1, WDIAG), (1, -1, WDIAG)):
        a = b[:rows - dr, max(0, -dc):cols - max(0, dc)]
        o = b[dr:, max(0, dc):cols + min(0, dc)]
        ok = (a >= 0) & (o >= 0)
        total += w * float(np.linalg.norm(x[a[ok]] - x[o[ok]], axis=1).sum())
    return total
