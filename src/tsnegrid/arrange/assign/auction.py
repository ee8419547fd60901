"""Forward auction with epsilon scaling on a sparse, implicit candidate graph (compiled).

Persons are points, objects are cells, and a person's price-adjusted cost for cell j is
``cost(i, j) + prices[j]``. Each point may only take cells in its candidate set: a square window of
radius ``wa`` around its anchor cell, a window of radius ``wb`` around the cell it lies in, and an
optional list of extra cells (CSR ``xptr``/``xidx``). Costs are computed on the fly, so memory is
O(N + M + extra edges). When there are more cells than points, the surplus is held by one class of
``n_dummy`` identical zero-cost persons (Bertsekas' "similar persons"), which always bids for the
cheapest cell it does not hold, found through a lazy min-heap of prices.

At the end of a phase with step ``eps`` every real point holds a cell within ``eps`` of its best
candidate (eps-complementary slackness), and every dummy-held cell costs at most ``eps`` more
than the cheapest cell not held by the dummies, so the assignment is within
``(N + n_dummy) * eps`` of the optimum over the candidate graph.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from tsnegrid.arrange.assign.geometry import pair_cost

INFEASIBLE = -2
NO_CANDIDATE = -1


@njit(cache=True, inline="always")
def _in_window(r: int, c: int, cr: int, cc: int, w: int) -> bool:
    return abs(r - cr) <= w and abs(c - cc) <= w


@njit(cache=True)
def scan(i, px, py, rows, cols, metric, anchor, own, wa, wb, xptr, xidx,
         prices):  # pragma: no cover - compiled
    """Best cell, its price-adjusted cost and the second-best cost among i's candidates."""
    x = px[i]
    y = py[i]
    ar = anchor[i] // cols
    ac = anchor[i] - ar * cols
    orr = own[i] // cols
    oc = own[i] - orr * cols
    b1 = np.inf
    b2 = np.inf
    j1 = -1
    for r in range(max(ar - wa, 0), min(ar + wa, rows - 1) + 1):
        for c in range(max(ac - wa, 0), min(ac + wa, cols - 1) + 1):
            j = r * cols + c
            v = pair_cost(x, y, r, c, metric) + prices[j]
            if v < b1:
                b2 = b1
                b1 = v
                j1 = j
            elif v < b2:
                b2 = v
    for r in range(max(orr - wb, 0), min(orr + wb, rows - 1) + 1):
        for c in range(max(oc - wb, 0), min(oc + wb, cols - 1) + 1):
            if _in_window(r, c, ar, ac, wa):
                continue
            j = r * cols + c
            v = pair_cost(x, y, r, c, metric) + prices[j]
            if v < b1:
                b2 = b1
                b1 = v
                j1 = j
            elif v < b2:
                b2 = v
    for k in range(xptr[i], xptr[i + 1]):
        j = xidx[k]
        r = j // cols
        c = j - r * cols
        if _in_window(r, c, ar, ac, wa) or _in_window(r, c, orr, oc, wb):
            continue
        v = pair_cost(x, y, r, c, metric) + prices[j]
        if v < b1:
            b2 = b1
            b1 = v
            j1 = j
        elif v < b2:
            b2 = v
    return j1, b1, b2


@njit(cache=True)
def _heap_push(hk, hv, size, key, val):  # pragma: no cover - compiled
    """Push onto a binary min-heap stored in (hk, hv); returns the new size."""
    k = size
    hk[k] = key
    hv[k] = val
    while k > 0:
        parent = (k - 1) >> 1
        if hk[parent] < hk[k] or (hk[parent] == hk[k] and hv[parent] <= hv[k]):
            break
        hk[parent], hk[k] = hk[k], hk[parent]
        hv[parent], hv[k] = hv[k], hv[parent]
        k = parent
    return size + 1


@njit(cache=True)
def _heap_pop(hk, hv, size):  # pragma: no cover - compiled
    """Remove the top of the heap; returns the new size."""
    size -= 1
    hk[0] = hk[size]
    hv[0] = hv[size]
    k = 0
    while True:
        left = 2 * k + 1
        if left >= size:
            break
        best = left
        right = left + 1
        if right < size and (hk[right] < hk[left] or (hk[right] == hk[left]
                                                      and hv[right] < hv[left])):
            best = right
        if hk[k] < hk[best] or (hk[k] == hk[best] and hv[k] <= hv[best]):
            break
        hk[best], hk[k] = hk[k], hk[best]
        hv[best], hv[k] = hv[k], hv[best]
        k = best
    return size


@njit(cache=True)
def _heap_valid_top(hk, hv, size, prices, owner, dummy):  # pragma: no cover - compiled
    """Drop entries of dummy-held cells and refresh stale prices until the top is current.

    Prices only rise, so a stale entry sits too high in the heap order and is simply re-pushed.
    Returns (top cell or -1, new size).
    """
    while size > 0:
        j = hv[0]
        if owner[j] == dummy:
            size = _heap_pop(hk, hv, size)
        elif hk[0] != prices[j]:
            size = _heap_pop(hk, hv, size)
            size = _heap_push(hk, hv, size, prices[j], j)
        else:
            return j, size
    return -1, size


@njit(cache=True)
def auction(px, py, rows, cols, metric, anchor, own, wa, wb, xptr, xidx, prices, assigned,
            eps_seq, n_dummy, keep_first, lone_gap, price_cap):  # pragma: no cover - compiled
    """Run one auction phase per entry of ``eps_seq``; updates ``prices`` and ``assigned``.

    Each phase keeps the points whose cell is still eps-optimal and lets the others bid; without
    ``keep_first`` the first phase starts from an empty assignment. Spare cells are re-bid by the
    dummies in every phase.
    Returns the number of bids, NO_CANDIDATE if a point has no candidate cell, or INFEASIBLE if a
    price passes ``price_cap`` (the candidate graph has no complete matching).
    """
    n = px.size
    m = rows * cols
    dummy = n
    owner = np.empty(m, dtype=np.int64)
    queue = np.empty(n + 1, dtype=np.int64)
    hk = np.empty(m + 1, dtype=np.float64)
    hv = np.empty(m + 1, dtype=np.int64)
    bids = 0
    for phase in range(eps_seq.size):
        eps = eps_seq[phase]
        if phase == 0 and not keep_first:
            for i in range(n):
                assigned[i] = -1
        for j in range(m):
            owner[j] = -1
        head = 0
        count = 0
        for i in range(n):
            s = assigned[i]
            if s >= 0:
                # keep the cell only if it is still within eps of the point's best candidate
                _, b1, _ = scan(i, px, py, rows, cols, metric, anchor, own, wa, wb, xptr, xidx,
                                prices)
                sr = s // cols
                if pair_cost(px[i], py[i], sr, s - sr * cols, metric) + prices[s] <= b1 + eps:
                    owner[s] = i
                    continue
                assigned[i] = -1
            queue[(head + count) % (n + 1)] = i
            count += 1
        free_dummy = n_dummy
        dummy_queued = False
        size = np.int64(0)  # not a literal: one compiled version of the heap helpers
        if n_dummy > 0:
            for j in range(m):
                size = _heap_push(hk, hv, size, prices[j], j)
            queue[(head + count) % (n + 1)] = dummy
            count += 1
            dummy_queued = True
        while count > 0:
            i = queue[head]
            head = (head + 1) % (n + 1)
            count -= 1
            bids += 1
            if i < n:
                j1, b1, b2 = scan(i, px, py, rows, cols, metric, anchor, own, wa, wb, xptr,
                                  xidx, prices)
                if j1 < 0:
                    return NO_CANDIDATE
                if b2 == np.inf:
                    b2 = b1 + lone_gap
                prices[j1] += b2 - b1 + eps
                if prices[j1] > price_cap:
                    return INFEASIBLE
                prev = owner[j1]
                owner[j1] = i
                assigned[i] = j1
                if prev == dummy:
                    free_dummy += 1
                    size = _heap_push(hk, hv, size, prices[j1], j1)
                    if not dummy_queued:
                        queue[(head + count) % (n + 1)] = dummy
                        count += 1
                        dummy_queued = True
                elif prev >= 0:
                    assigned[prev] = -1
                    queue[(head + count) % (n + 1)] = prev
                    count += 1
            else:
                dummy_queued = False
                while free_dummy > 0:
                    j1, size = _heap_valid_top(hk, hv, size, prices, owner, dummy)
                    size = _heap_pop(hk, hv, size)
                    j2, size = _heap_valid_top(hk, hv, size, prices, owner, dummy)
                    p2 = prices[j2] if j2 >= 0 else prices[j1]
                    prices[j1] = max(prices[j1], p2) + eps
                    prev = owner[j1]
                    owner[j1] = dummy
                    free_dummy -= 1
                    if prev >= 0:
                        assigned[prev] = -1
                        queue[(head + count) % (n + 1)] = prev
                        count += 1
    return bids


def epsilon_schedule(start: float, stop: float, factor: float) -> NDArray[np.float64]:
    """Geometric sequence of auction steps from ``start`` down to exactly ``stop``."""
    steps = [start]
    while steps[-1] > stop * factor:
        steps.append(steps[-1] / factor)
    if steps[-1] > stop:
        steps.append(stop)
    return np.asarray(steps, dtype=np.float64)
