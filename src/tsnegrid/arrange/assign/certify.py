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

from tsnegrid.arrange.assign._kernels import spare_cell_gap, violations

__all__ = ["spare_cell_gap", "violations"]
