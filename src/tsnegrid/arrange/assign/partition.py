"""Recursive bisection: a fast, balanced first assignment that seeds the auction's candidates.

The grid rectangle is halved across its longer side; points are ranked along that axis and the
first ones go to the first half: as many as lie geometrically inside it, clamped so that neither
half gets more points than cells. Full grids therefore split by exact counts (1-D optimal
transport along the axis); grids with spare cells leave the spare cells where points are sparse.
O(N log^2 N) time, O(N) memory.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray


@njit(cache=True)
def _bisect(px, py, rows, cols):  # pragma: no cover - compiled
    n = px.size
    order = np.arange(n)
    out = np.empty(n, dtype=np.int64)
    # stack of (start, stop, r0, r1, c0, c1) over ``order``
    stack = np.empty((64 + 2 * int(np.log2(n + 1)) + 2 * int(np.log2(rows * cols + 1)), 6),
                     dtype=np.int64)
    stack[0] = (0, n, 0, rows, 0, cols)
    top = 1
    while top > 0:
        top -= 1
        s, e, r0, r1, c0, c1 = stack[top]
        k = e - s
        if k == 0:
            continue
        h = r1 - r0
        w = c1 - c0
        if h * w == 1:
            out[order[s]] = r0 * cols + c0
            continue
        seg = order[s:e]
        if w >= h:
            mid = c0 + w // 2
            cap_lo = h * (mid - c0)
            cap_hi = h * (c1 - mid)
            key = px[seg]
        else:
            mid = r0 + h // 2
            cap_lo = w * (mid - r0)
            cap_hi = w * (r1 - mid)
            key = py[seg]
        rank = np.argsort(key, kind="mergesort")
        order[s:e] = seg[rank]
        inside = 0
        for t in range(k):
            if key[t] < mid:
                inside += 1
        n_lo = min(max(inside, k - cap_hi), cap_lo)
        if w >= h:
            stack[top] = (s, s + n_lo, r0, r1, c0, mid)
            stack[top + 1] = (s + n_lo, e, r0, r1, mid, c1)
        else:
            stack[top] = (s, s + n_lo, r0, mid, c0, c1)
            stack[top + 1] = (s + n_lo, e, mid, r1, c0, c1)
        top += 2
    return out


def bisection_assignment(points: NDArray[np.float64], rows: int, cols: int) -> NDArray[np.int64]:
    """One distinct cell per point (row-major index) by recursive bisection of the grid."""
    return _bisect(np.ascontiguousarray(points[:, 0]), np.ascontiguousarray(points[:, 1]),
                   rows, cols)
