"""Exact mode: sparse auction on local candidates, certified optimal against all cells.

1. Recursive bisection gives a first assignment; each point's candidates are the cells near that
   cell and the cells near the point itself (implicit windows, no stored edges).
2. Auction with epsilon scaling finds an eps-optimal assignment over the candidates.
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

from tsnegrid.assign.auction import INFEASIBLE, NO_CANDIDATE, auction, epsilon_schedule
from tsnegrid.assign.certify import spare_cell_gap, violations
from tsnegrid.assign.geometry import METRIC_CODES, own_cells
from tsnegrid.assign.partition import bisection_assignment
from tsnegrid.errors import TsnegridError

log = logging.getLogger(__name__)

ANCHOR_RADIUS = 3
OWN_RADIUS = 1
EPS_FACTOR = 8.0
REL_EPS_FINAL = 1e-10
REL_EPS_MID = 1e-3
MAX_REANCHOR = 30
MIN_GAIN = 1e-4
KEEP_VIOLATIONS = 8
CHECK_SLACK = 0.01  # absorbs float rounding in bids (~1e-6 of eps)
MAX_ROUNDS = 50


class SolverError(TsnegridError):
    """A solver failed to reach its guarantee (a bug, not bad input)."""


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
             eps_stop: float, scale: float, max_rounds: int, min_gain: float) -> int:
    """Auction down to ``eps_stop``, move each window to the cell won, repeat while it pays.

    Windows only let a point move ``wa`` cells per round, so the rounds carry the bisection's
    first guess towards the optimum; prices carry over between rounds. Returns rounds run.
    """
    xptr = np.zeros(len(px) + 1, dtype=np.int64)
    xidx = np.zeros(0, dtype=np.int64)
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


def solve_exact(points: NDArray[np.float64], rows: int, cols: int, metric: str,
                *, anchor_radius: int = ANCHOR_RADIUS) -> ExactResult:
    """Certified-optimal assignment of ``points`` (grid units) to distinct cells."""
    n = len(points)
    m = rows * cols
    code = METRIC_CODES[metric]
    px = np.ascontiguousarray(points[:, 0])
    py = np.ascontiguousarray(points[:, 1])
    anchor = bisection_assignment(points, rows, cols)
    own = own_cells(points, rows, cols)
    r0, c0 = np.divmod(anchor, cols)
    d2 = (c0 + 0.5 - px) ** 2 + (r0 + 0.5 - py) ** 2
    scale = float(max(1.0, (np.sqrt(d2) if code else d2).max()))
    eps_mid = REL_EPS_MID * scale
    eps_final = REL_EPS_FINAL * scale
    eps_check = eps_final * (1.0 + CHECK_SLACK)
    prices = np.zeros(m)
    assigned = np.full(n, -1, dtype=np.int64)
    reanchor(px, py, rows, cols, code, anchor, own, anchor_radius, prices, assigned,
             scale / 4.0, eps_mid, scale, MAX_REANCHOR, MIN_GAIN)
    xptr = np.zeros(n + 1, dtype=np.int64)
    xidx = np.zeros(0, dtype=np.int64)
    bids = run_auction(px, py, rows, cols, code, anchor, own, anchor_radius, OWN_RADIUS, xptr,
                       xidx, prices, assigned, epsilon_schedule(eps_mid, eps_final, EPS_FACTOR),
                       True, scale)
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
