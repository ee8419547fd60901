"""Point-to-cell costs on a regular grid (the compiled kernels in ``_kernels`` compute the same
costs inline).

Cells are indexed row-major (``r * cols + c``) with centres at ``(c + 0.5, r + 0.5)``; metric
code 0 is squared Euclidean, 1 is Euclidean. Costs are computed on the fly: no kernel stores an
N x M matrix.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

METRIC_CODES = {"sqeuclidean": 0, "euclidean": 1}


def own_cells(points: NDArray[np.float64], rows: int, cols: int) -> NDArray[np.int64]:
    """Index of the cell that contains each point (points on the border go to the nearest cell)."""
    c = np.clip(np.floor(points[:, 0]), 0, cols - 1).astype(np.int64)
    r = np.clip(np.floor(points[:, 1]), 0, rows - 1).astype(np.int64)
    return r * cols + c


def assignment_cost(points: NDArray[np.float64], cells: NDArray[np.int64], cols: int,
                    metric: str) -> float:
    """Total cost of an assignment (points in grid units, cells as row-major indices)."""
    r, c = np.divmod(np.asarray(cells, dtype=np.int64), cols)
    d2 = (c + 0.5 - points[:, 0]) ** 2 + (r + 0.5 - points[:, 1]) ** 2
    return float(np.sqrt(d2).sum() if metric == "euclidean" else d2.sum())
