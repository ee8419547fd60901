"""Exact mode: sparse auction on local candidates, certified optimal against all cells.

1. ``multiscale.warm_start``: each point's candidates are a window around an anchor cell and the
   cells around the point itself (implicit, no stored edges); windowed auction rounds, seeded
   coarse-to-fine, move the anchors to a near-optimal assignment at a coarse step eps_mid.
2. Auction with epsilon scaling refines it to an eps_final-optimal assignment over the candidates.
3. The certificate (``certify.violations``) checks eps-slackness against every cell; cells that
   break it become extra candidates of their point, which bids again. Repeat until none.

The result is within ``(N + spare cells) * eps_final`` of the true optimum, with ``eps_final`` a
1e-10 fraction of the cost scale: equal to any exact solver's cost to float tolerance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tsnegrid.arrange.assign.auction import epsilon_schedule
from tsnegrid.arrange.assign.certify import spare_cell_gap, violations
from tsnegrid.arrange.assign.geometry import METRIC_CODES
from tsnegrid.arrange.assign.multiscale import warm_start
from tsnegrid.arrange.assign.rounds import EPS_FACTOR, OWN_RADIUS, run_auction
from tsnegrid.errors import SolverError

log = logging.getLogger(__name__)

ANCHOR_RADIUS = 3
REL_EPS_FINAL = 1e-10
REL_EPS_MID = 1e-3
MAX_REANCHOR = 30
MIN_GAIN = 1e-4
KEEP_VIOLATIONS = 8
CHECK_SLACK = 0.01  # absorbs float rounding in bids (~1e-6 of eps)
MAX_ROUNDS = 50


@dataclass(frozen=True)
class ExactResult:
    """Assignment plus the evidence that it is optimal."""

    cells: NDArray[np.int64]
    prices: NDArray[np.float64]
    eps: float
    gap_bound: float
    rounds: int
    extra_edges: int


def _merge_edges(xptr: NDArray[np.int64], xidx: NDArray[np.int64],
                 new: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Append each row's new cells (N x k, -1 padded) to a CSR list of extra candidates."""
    n = len(xptr) - 1
    old_counts = np.diff(xptr)
    new_counts = (new >= 0).sum(axis=1)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(old_counts + new_counts, out=ptr[1:])
    idx = np.empty(ptr[-1], dtype=np.int64)
    rows_old = np.repeat(np.arange(n), old_counts)
    pos_old = ptr[rows_old] + (np.arange(len(xidx)) - xptr[rows_old])
    idx[pos_old] = xidx
    r, c = np.nonzero(new >= 0)
    rank = np.arange(len(r)) - np.repeat(np.cumsum(new_counts) - new_counts, new_counts)
    idx[ptr[r] + old_counts[r] + rank] = new[r, c]
    return ptr, idx


def solve_exact(points: NDArray[np.float64], rows: int, cols: int, metric: str,
                *, anchor_radius: int = ANCHOR_RADIUS) -> ExactResult:
    """Certified-optimal assignment of ``points`` (grid units) to distinct cells."""
    n = len(points)
    m = rows * cols
    code = METRIC_CODES[metric]
    px = np.ascontiguousarray(points[:, 0])
    py = np.ascontiguousarray(points[:, 1])
    warm = warm_start(points, rows, cols, code, anchor_radius, REL_EPS_MID, MAX_REANCHOR,
                      MIN_GAIN)
    scale, prices, assigned = warm.scale, warm.prices, warm.assigned
    anchor, own = warm.anchor, warm.own
    eps_final = REL_EPS_FINAL * scale
    eps_check = eps_final * (1.0 + CHECK_SLACK)
    xptr = np.zeros(n + 1, dtype=np.int64)
    xidx = np.zeros(0, dtype=np.int64)
    bids = run_auction(px, py, rows, cols, code, anchor, own, anchor_radius, OWN_RADIUS, xptr,
                       xidx, prices, assigned,
                       epsilon_schedule(REL_EPS_MID * scale, eps_final, EPS_FACTOR), True, scale)
    for rounds in range(1, MAX_ROUNDS + 1):
        bad, count, worst = violations(px, py, rows, cols, code, assigned, prices, eps_check,
                                       KEEP_VIOLATIONS)
        spare = spare_cell_gap(m, assigned, prices)
        log.debug("exact round %d: %d bids, %d violating pairs (worst %.3g), spare gap %.3g",
                  rounds, bids, count, worst, spare)
        if count == 0:
            if spare > eps_check:
                raise SolverError(f"spare cells priced {spare:.3g} above used ones")
            return ExactResult(assigned, prices, eps_final, m * eps_check, rounds, len(xidx))
        xptr, xidx = _merge_edges(xptr, xidx, bad)
        # violators bid again; big violations re-run the scaling from their size
        assigned[(bad >= 0).any(axis=1)] = -1
        restart = epsilon_schedule(min(max(worst, eps_final), scale / 4.0), eps_final,
                                   EPS_FACTOR)
        bids = run_auction(px, py, rows, cols, code, anchor, own, anchor_radius, OWN_RADIUS,
                           xptr, xidx, prices, assigned, restart, True, scale)
    raise SolverError(f"no certificate after {MAX_ROUNDS} rounds")
