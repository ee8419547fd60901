"""Driving the compiled auction: failure codes to errors, and re-anchored window rounds."""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from tsnegrid.arrange.assign.auction import INFEASIBLE, NO_CANDIDATE, auction, epsilon_schedule
from tsnegrid.errors import SolverError

log = logging.getLogger(__name__)

OWN_RADIUS = 1
EPS_FACTOR = 8.0


def run_auction(px: NDArray[np.float64], py: NDArray[np.float64], rows: int, cols: int,
                metric: int, anchor: NDArray[np.int64], own: NDArray[np.int64], wa: int,
                wb: int, xptr: NDArray[np.int64], xidx: NDArray[np.int64],
                prices: NDArray[np.float64], assigned: NDArray[np.int64],
                eps_seq: NDArray[np.float64], keep_first: bool, scale: float) -> int:
    """Call the compiled auction and turn its failure codes into errors."""
    n_dummy = rows * cols - len(px)
    cap = 1e6 * scale * (len(px) + 1)
    status = auction(px, py, rows, cols, metric, anchor, own, wa, wb, xptr, xidx, prices,
                     assigned, eps_seq, n_dummy, keep_first, scale, cap)
    if status == NO_CANDIDATE:
        raise SolverError("a point has no candidate cell")
    if status == INFEASIBLE:
        raise SolverError("candidate graph has no complete matching")
    return int(status)


def reanchor(px: NDArray[np.float64], py: NDArray[np.float64], rows: int, cols: int,
             metric: int, anchor: NDArray[np.int64], own: NDArray[np.int64], wa: int,
             prices: NDArray[np.float64], assigned: NDArray[np.int64], eps_start: float,
             eps_stop: float, scale: float, max_rounds: int, min_gain: float,
             fallback: NDArray[np.int64]) -> int:
    """Auction down to ``eps_stop``, move each window to the cell won, repeat while it pays.

    Windows only let a point move ``wa`` cells per round, so the rounds carry the bisection's
    first guess towards the optimum; prices carry over between rounds. ``fallback`` (one cell per
    point, a complete matching) stays a candidate so that every round is feasible. Returns rounds.
    """
    xptr = np.arange(len(px) + 1, dtype=np.int64)
    xidx = fallback
    before = np.inf
    eps_seq = epsilon_schedule(eps_start, eps_stop, EPS_FACTOR)
    for rounds in range(1, max_rounds + 1):
        run_auction(px, py, rows, cols, metric, anchor, own, wa, OWN_RADIUS, xptr, xidx, prices,
                    assigned, eps_seq, rounds > 1, scale)
        anchor[:] = assigned
        r, c = np.divmod(assigned, cols)
        d2 = (c + 0.5 - px) ** 2 + (r + 0.5 - py) ** 2
        cost = float((np.sqrt(d2) if metric else d2).sum())
        log.debug("reanchor round %d: cost %.10g", rounds, cost)
        if cost > before * (1.0 - min_gain):
            return rounds
        before = cost
        eps_seq = epsilon_schedule(eps_stop * EPS_FACTOR, eps_stop, EPS_FACTOR)
    return max_rounds
