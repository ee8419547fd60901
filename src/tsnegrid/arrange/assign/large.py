"""Large mode: the exact mode's coarse-to-fine windowed auction without the final certificate.

Stops at a coarse auction step (a 1e-3 fraction of the cost scale) after a bounded number of
re-anchoring rounds per level, so time is about linear in the number of cells and memory is
O(N + M); nothing N x M is ever formed. The cost is near-optimal rather than certified; the
benchmark reports the measured gap to the exact mode.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from tsnegrid.arrange.assign.geometry import METRIC_CODES
from tsnegrid.arrange.assign.multiscale import warm_start

ANCHOR_RADIUS = 3
REL_EPS = 1e-3
MAX_ROUNDS = 6
MIN_GAIN = 1e-3


def solve_large(points: NDArray[np.float64], rows: int, cols: int, metric: str,
                *, anchor_radius: int = ANCHOR_RADIUS, max_rounds: int = MAX_ROUNDS
                ) -> NDArray[np.int64]:
    """Near-optimal assignment of ``points`` (grid units) to distinct cells, for huge grids."""
    warm = warm_start(points, rows, cols, METRIC_CODES[metric], anchor_radius, REL_EPS,
                      max_rounds, MIN_GAIN)
    return warm.assigned
