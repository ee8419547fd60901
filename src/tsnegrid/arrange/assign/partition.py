"""Recursive bisection: a fast, balanced first assignment that seeds the auction's candidates.

The grid rectangle is halved across its longer side; points are ranked along that axis and the
first ones go to the first half: as many as lie geometrically inside it, clamped so that neither
half gets more points than cells. Full grids therefore split by exact counts (1-D optimal
transport along the axis); grids with spare cells leave the spare cells where points are sparse.
O(N log^2 N) time, O(N) memory.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tsnegrid.arrange.assign._kernels import bisect


def bisection_assignment(points: NDArray[np.float64], rows: int, cols: int) -> NDArray[np.int64]:
    """One distinct cell per point (row-major index) by recursive bisection of the grid."""
    return bisect(np.ascontiguousarray(points[:, 0]), np.ascontiguousarray(points[:, 1]),
                   rows, cols)
