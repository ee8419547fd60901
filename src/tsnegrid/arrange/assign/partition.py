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
def _stable_argsort(key, k, idx, tmp):  # pragma: no cover - compiled
    """Stable argsort of ``key[:k]`` by bottom-up merging; returns the buffer holding it.

    A stable order is unique, so this equals ``np.argsort(key, kind="mergesort")``, whose
    compiled form cost more compile time than the rest of the bisection.
    """
    for t in range(k):
        idx[t] = t
    src = idx
    dst = tmp
    width = 1
    while width < k:
        lo = 0
        while lo < k:
            mid = min(lo + width, k)
            hi = min(lo + 2 * width, k)
            a = lo
            b = mid
            o = lo
            while a < mid and b < hi:
                if key[src[b]] < key[src[a]]:
                    dst[o] = src[b]
                    b += 1
                else:
                    dst[o] = src[a]
                    a += 1
                o += 1
            while a < mid:
                dst[o] = src[a]
                a += 1
                o += 1
            while b < hi:
                dst[o] = src[b]
                b += 1
                o += 1
            lo += 2 * width
        src, dst = dst, src
        width *= 2
    return src


@njit(cache=True)
def _bisect(px, py, rows, cols):  # pragma: no cover - compiled
    # written with scalar loops only: array-level operations (slice assignment, tuple rows,
    # np.argsort) each compile a generic implementation that made the first run seconds slower
    n = px.size
    order = np.empty(n, dtype=np.int64)
    for t in range(n):
        order[t] = t
    out = np.empty(n, dtype=np.int64)
    key = np.empty(n, dtype=np.float64)
    seg = np.empty(n, dtype=np.int64)
    idx = np.empty(n, dtype=np.int64)
    tmp = np.empty(n, dtype=np.int64)
    # stack of (start, stop, r0, r1, c0, c1) over ``order``, flattened
    depth = 64 + 2 * int(np.log2(n + 1)) + 2 * int(np.log2(rows * cols + 1))
    stack = np.empty(6 * depth, dtype=np.int64)
    stack[0] = 0
    stack[1] = n
    stack[2] = 0
    stack[3] = rows
    stack[4] = 0
    stack[5] = cols
    top = 1
    while top > 0:
        top -= 1
        b = 6 * top
        s = stack[b]
        e = stack[b + 1]
        r0 = stack[b + 2]
        r1 = stack[b + 3]
        c0 = stack[b + 4]
        c1 = stack[b + 5]
        k = e - s
        if k == 0:
            continue
        h = r1 - r0
        w = c1 - c0
        if h * w == 1:
            out[order[s]] = r0 * cols + c0
            continue
        along_cols = w >= h
        if along_cols:
            cut = c0 + w // 2
            cap_lo = h * (cut - c0)
            cap_hi = h * (c1 - cut)
        else:
            cut = r0 + h // 2
            cap_lo = w * (cut - r0)
            cap_hi = w * (r1 - cut)
        inside = 0
        for t in range(k):
            seg[t] = order[s + t]
            key[t] = px[seg[t]] if along_cols else py[seg[t]]
            if key[t] < cut:
                inside += 1
        rank = _stable_argsort(key, k, idx, tmp)
        for t in range(k):
            order[s + t] = seg[rank[t]]
        n_lo = min(max(inside, k - cap_hi), cap_lo)
        lo_part = 6 * top
        hi_part = lo_part + 6
        stack[lo_part] = s
        stack[lo_part + 1] = s + n_lo
        stack[hi_part] = s + n_lo
        stack[hi_part + 1] = e
        if along_cols:
            stack[lo_part + 2] = r0
            stack[lo_part + 3] = r1
            stack[lo_part + 4] = c0
            stack[lo_part + 5] = cut
            stack[hi_part + 2] = r0
            stack[hi_part + 3] = r1
            stack[hi_part + 4] = cut
            stack[hi_part + 5] = c1
        else:
            stack[lo_part + 2] = r0
            stack[lo_part + 3] = cut
            stack[lo_part + 4] = c0
            stack[lo_part + 5] = c1
            stack[hi_part + 2] = cut
            stack[hi_part + 3] = r1
            stack[hi_part + 4] = c0
            stack[hi_part + 5] = c1
        top += 2
    return out


def bisection_assignment(points: NDArray[np.float64], rows: int, cols: int) -> NDArray[np.int64]:
    """One distinct cell per point (row-major index) by recursive bisection of the grid."""
    return _bisect(np.ascontiguousarray(points[:, 0]), np.ascontiguousarray(points[:, 1]),
                   rows, cols)
