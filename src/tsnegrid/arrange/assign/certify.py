"""Optimality certificate for an auction result, checked against every (point, cell) pair.

With cell prices p, point i holding cell s(i) and t_i = cost(i, s(i)) + p[s(i)], the assignment is
within ``(N + spare cells) * eps`` of the optimum over ALL assignments when

* cost(i, j) + p[j] >= t_i - eps for every point i and every cell j (not just candidates), and
* every unused cell costs at most ``eps`` more than the cheapest used one.

These are the LP duals u_i = -t_i, v_j = -p_j made eps-feasible. Prices are >= min(p), so only
cells with cost(i, j) < t_i - min(p) can violate the first condition: the check scans that ball
around each point in parallel and never forms an N x M matrix.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tsnegrid.arrange.assign.geometry import pair_cost


@njit(cache=True, parallel=True)
def violations(px, py, rows, cols, metric, assigned, prices, eps,
               keep):  # pragma: no cover - compiled
    """For each point, up to ``keep`` cells that break eps-slackness, most violated first.

    Returns (cells, n_violations, worst) where ``cells`` is N x keep with -1 padding,
    ``n_violations`` counts all violating pairs and ``worst`` is the largest violation beyond eps.
    """
    # scalar loops around the parallel one, no array-level calls: each of those compiled a
    # generic implementation, and they were most of this kernel's first-run compile time
    n = px.size
    pmin = np.inf
    for j in range(prices.size):
        pmin = min(pmin, prices[j])
    out = np.empty((n, keep), dtype=np.int64)
    vals = np.empty((n, keep), dtype=np.float64)
    counts = np.empty(n, dtype=np.int64)
    worst = np.empty(n, dtype=np.float64)
    for i in prange(n):
        for q in range(keep):
            out[i, q] = -1
            vals[i, q] = np.inf
        counts[i] = 0
        worst[i] = 0.0
    for i in prange(n):
        x = px[i]
        y = py[i]
        s = assigned[i]
        sr = s // cols
        t = pair_cost(x, y, sr, s - sr * cols, metric) + prices[s]
        limit = t - eps
        reach = limit - pmin
        if reach <= 0.0:
            continue
        rad = np.sqrt(reach) if metric == 0 else reach
        r_lo = max(int(np.floor(y - rad - 0.5)), 0)
        r_hi = min(int(np.ceil(y + rad - 0.5)), rows - 1)
        c_lo = max(int(np.floor(x - rad - 0.5)), 0)
        c_hi = min(int(np.ceil(x + rad - 0.5)), cols - 1)
        for r in range(r_lo, r_hi + 1):
            for c in range(c_lo, c_hi + 1):
                cost = pair_cost(x, y, r, c, metric)
                if cost >= reach:
                    continue
                j = r * cols + c
                v = cost + prices[j]
                if v < limit:
                    counts[i] += 1
                    worst[i] = max(worst[i], limit - v)
                    # keep the most violated cells: replace the largest stored value
                    slot = 0
                    for q in range(1, keep):
                        if vals[i, q] > vals[i, slot]:
                            slot = q
                    if v < vals[i, slot]:
                        vals[i, slot] = v
                        out[i, slot] = j
    count = 0
    most = 0.0
    for i in range(n):
        count += counts[i]
        most = max(most, worst[i])
    return out, count, most


@njit(cache=True)
def spare_cell_gap(n_cells, assigned, prices):  # pragma: no cover - compiled
    """max(price of unused cells) - min(price of used cells): <= eps when spare cells are slack."""
    used = np.zeros(n_cells, dtype=np.bool_)
    for i in range(assigned.size):
        used[assigned[i]] = True
    hi = -np.inf
    lo = np.inf
    for j in range(n_cells):
        if used[j]:
            lo = min(lo, prices[j])
        else:
            hi = max(hi, prices[j])
    if hi == -np.inf:
        return -np.inf
    return hi - lo
