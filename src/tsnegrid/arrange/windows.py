"""Numba kernels shared by the refinement swaps and the map smoothing: a tiny exact LAP and the
random draw of a window group of cells."""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray


@njit(cache=True)
def hungarian(cost: NDArray[np.float64], k: int) -> NDArray[np.int64]:
    """Minimum-cost perfect matching of a k x k matrix (rows to columns), O(k^3)."""
    # buffers filled by scalar loops (np.zeros/np.full each compile a generic version)
    inf = 1e300
    u = np.empty(k + 1, np.float64)
    v = np.empty(k + 1, np.float64)
    p = np.empty(k + 1, np.int64)
    way = np.empty(k + 1, np.int64)
    minv = np.empty(k + 1, np.float64)
    used = np.empty(k + 1, np.bool_)
    for j in range(k + 1):
        u[j] = 0.0
        v[j] = 0.0
        p[j] = 0
        way[j] = 0
    for i in range(1, k + 1):
        p[0] = i
        j0 = 0
        for j in range(k + 1):
            minv[j] = inf
            used[j] = False
        while True:
            used[j0] = True
            i0 = p[j0]
            delta = inf
            j1 = 0
            for j in range(1, k + 1):
                if not used[j]:
                    cur = cost[i0 - 1, j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(k + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while True:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
            if j0 == 0:
                break
    row_to_col = np.empty(k, np.int64)
    for j in range(1, k + 1):
        row_to_col[p[j] - 1] = j - 1
    return row_to_col


@njit(cache=True)
def draw_window(group: NDArray[np.int64], in_group: NDArray[np.bool_], g: int | np.int64,
                cr: int, cc: int, board: NDArray[np.int64], movable: NDArray[np.bool_],
                rows: int, cols: int, reach: int) -> int:
    """Add up to ``len(group) - g`` cells drawn at random from the (2 reach + 1)^2 window around
    (cr, cc) to ``group`` (holes and cells of ``movable`` images only, none twice; at most
    4 x ``len(group)`` draws); returns the new group size."""
    k = len(group)
    side = 2 * reach + 1
    tries = 0
    while g < k and tries < 4 * k:
        tries += 1
        r = cr + np.random.randint(side) - reach
        c = cc + np.random.randint(side) - reach
        if r < 0 or r >= rows or c < 0 or c >= cols:
            continue
        cell = r * cols + c
        if not in_group[cell] and (board[cell] < 0 or movable[board[cell]]):
            in_group[cell] = True
            group[g] = cell
            g += 1
    return int(g)
