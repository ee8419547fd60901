"""Sparse square assignment by a forward auction with epsilon scaling (Bertsekas), compiled in
``tsnegrid.arrange._kernels``.

Used by the LAS rounds of ``tsnegrid.arrange.sort``: each round offers every vector a few
candidate cells and solves the assignment exactly over those edges. scipy's sparse solver
(``min_weight_full_bipartite_matching``) took 0.1-0.3 s per 1,024-vector round on the shared
2-core machine; this auction takes milliseconds. The result is epsilon-optimal: its total cost is
within ``n x eps_end`` of the best over the same edges. The caller guarantees that a perfect
matching exists (the sort offers each vector its current cell).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tsnegrid.arrange._kernels import sparse_auction

#: Epsilon of the first and last phase, as shares of the mean edge cost, and the factor between.
EPS_START = 0.1
EPS_END = 1e-7
EPS_FACTOR = 5.0


def solve(indptr: NDArray[np.int64], indices: NDArray[np.int64], cost: NDArray[np.float64],
          n: int, prices: NDArray[np.float64] | None = None) -> NDArray[np.int64]:
    """Column per row of a minimum-cost perfect matching of the n x n CSR graph (epsilon scaling
    from ``EPS_START`` to ``EPS_END`` of the mean edge cost); ``prices`` warm-start the auction
    and are updated in place."""
    scale = float(np.mean(cost)) if len(cost) else 1.0
    scale = scale if scale > 0 else 1.0
    if prices is None:
        prices = np.zeros(n)
    spread = float(np.ptp(cost)) if len(cost) else 1.0
    return sparse_auction(np.ascontiguousarray(indptr, dtype=np.int64),
                    np.ascontiguousarray(indices, dtype=np.int64),
                    np.ascontiguousarray(cost, dtype=np.float64), n, prices,
                    EPS_START * scale, EPS_END * scale, EPS_FACTOR, spread + scale)
