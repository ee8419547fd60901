"""Forward auction with epsilon scaling on a sparse, implicit candidate graph (compiled in
``_kernels``).

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
from numpy.typing import NDArray

from tsnegrid.arrange.assign._kernels import auction

__all__ = ["INFEASIBLE", "NO_CANDIDATE", "auction", "epsilon_schedule"]

INFEASIBLE = -2
NO_CANDIDATE = -1


def epsilon_schedule(start: float, stop: float, factor: float) -> NDArray[np.float64]:
    """Geometric sequence of auction steps from ``start`` down to exactly ``stop``."""
    steps = [start]
    while steps[-1] > stop * factor:
        steps.append(steps[-1] / factor)
    if steps[-1] > stop:
        steps.append(stop)
    return np.asarray(steps, dtype=np.float64)
