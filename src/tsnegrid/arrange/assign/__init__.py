"""Grid assignment: snap 2-D points to the cells of a rows x cols grid, one point per cell.

Points are given in grid units: x runs along columns in [0, cols], y along rows in [0, rows];
cell (r, c) has its centre at (c + 0.5, r + 0.5). The result holds, for each point, the index
``r * cols + c`` of its cell. Solvers plug in through the ``SOLVERS`` registry:

* ``exact``: sparse auction with an optimality certificate over all pairs (``exact.py``);
* ``large``: the same coarse-to-fine auction without the certificate, near-optimal, O(N + M)
  memory, for grids of up to millions of cells (``large.py``);
* ``scipy``: dense ``linear_sum_assignment``, the small-grid reference (N x M matrix in memory).

``auto`` picks ``exact`` up to ``EXACT_LIMIT`` cells and ``large`` above.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import GridError, InputError
from tsnegrid.settings import ASSIGN_METRICS

log = logging.getLogger(__name__)

Solver = Callable[[NDArray[np.float64], int, int, str], NDArray[np.int64]]

METRICS = ASSIGN_METRICS


def cell_centres(rows: int, cols: int) -> NDArray[np.float64]:
    """Centres of all cells in row-major order, as (x, y) in grid units."""
    r, c = np.divmod(np.arange(rows * cols), cols)
    return np.column_stack([c + 0.5, r + 0.5]).astype(np.float64)


def _solve_scipy(
    points: NDArray[np.float64], rows: int, cols: int, metric: str
) -> NDArray[np.int64]:
    """Dense exact solver (scipy's Jonker-Volgenant variant): reference for small grids."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    cost = cdist(points, cell_centres(rows, cols), metric=metric)
    row_ind, col_ind = linear_sum_assignment(cost)
    out = np.empty(len(points), dtype=np.int64)
    out[row_ind] = col_ind
    return out


def _solve_exact(
    points: NDArray[np.float64], rows: int, cols: int, metric: str
) -> NDArray[np.int64]:
    """Certified-optimal sparse auction (see ``tsnegrid.arrange.assign.exact``)."""
    from tsnegrid.arrange.assign.exact import solve_exact

    return solve_exact(points, rows, cols, metric).cells


def _solve_large(
    points: NDArray[np.float64], rows: int, cols: int, metric: str
) -> NDArray[np.int64]:
    """Near-optimal coarse-to-fine auction for huge grids (``tsnegrid.arrange.assign.large``)."""
    from tsnegrid.arrange.assign.large import solve_large

    return solve_large(points, rows, cols, metric)


SOLVERS: dict[str, Solver] = {"exact": _solve_exact, "large": _solve_large,
                              "scipy": _solve_scipy}

EXACT_LIMIT = 20_000


def resolve_method(method: str, n_cells: int) -> str:
    """Turn ``auto`` into a concrete solver name (and check that a named one exists)."""
    if method == "auto":
        chosen = "exact" if n_cells <= EXACT_LIMIT else "large"
        log.info("assignment method auto -> %s for %d cells", chosen, n_cells)
        return chosen
    if method not in SOLVERS:
        raise InputError(f"unknown assignment method {method!r}; choose from auto, "
                         + ", ".join(sorted(SOLVERS)))
    return method


def validate_points(points: NDArray[np.floating], rows: int, cols: int) -> NDArray[np.float64]:
    """Check shape and values; return a float64 copy."""
    arr = np.asarray(points)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputError(f"points must be an N x 2 array, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InputError("points array is empty")
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"points must be numeric, got dtype {arr.dtype}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InputError(f"points contain NaN or inf in {int(bad.sum())} row(s), first at row "
                         f"{int(np.flatnonzero(bad)[0])}")
    if rows < 1 or cols < 1:
        raise GridError(f"grid must have at least one row and column, got {rows}x{cols}")
    if rows * cols < arr.shape[0]:
        raise GridError(f"grid {rows}x{cols} has {rows * cols} cells, fewer than the "
                        f"{arr.shape[0]} points")
    return arr.astype(np.float64)


def assign(
    points: NDArray[np.floating],
    rows: int,
    cols: int,
    *,
    method: str = "auto",
    metric: str = "sqeuclidean",
) -> NDArray[np.int64]:
    """Assign each point (grid units) to a distinct cell, minimising the total cost."""
    pts = validate_points(points, rows, cols)
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    solver = SOLVERS[resolve_method(method, rows * cols)]
    return solver(pts, rows, cols, metric)
