"""Grid assignment: exactness against scipy, the certificate, validity and rejected inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from tsnegrid.arrange import assign as A
from tsnegrid.arrange.assign.certify import violations
from tsnegrid.arrange.assign.exact import solve_exact
from tsnegrid.arrange.assign.geometry import assignment_cost
from tsnegrid.arrange.assign.partition import bisection_assignment
from tsnegrid.errors import GridError, InputError


def clustered(n: int, rows: int, cols: int, seed: int) -> np.ndarray:
    """t-SNE-like clouds: a few Gaussian blobs of different sizes, min-max scaled to the grid."""
    rng = np.random.default_rng(seed)
    k = max(2, int(np.sqrt(n) / 4))
    lab = rng.choice(k, n, p=rng.dirichlet(np.full(k, 2.0)))
    pts = rng.uniform(0, 1, (k, 2))[lab] + rng.normal(size=(n, 2)) * rng.uniform(0.01, 0.06, k)[lab,
                                                                                            None]
    pts -= pts.min(0)
    pts /= np.where(pts.max(0) > 0, pts.max(0), 1)
    return pts * np.array([cols, rows])


def optimum(points: np.ndarray, rows: int, cols: int, metric: str) -> float:
    cost = cdist(points, A.cell_centres(rows, cols), metric=metric)
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].sum())


def check_valid(cells: np.ndarray, n: int, rows: int, cols: int) -> None:
    assert cells.dtype == np.int64 and cells.shape == (n,)
    assert len(np.unique(cells)) == n
    assert cells.min() >= 0 and cells.max() < rows * cols


CASES = [  # (rows, cols, n, kind, metric)
    (12, 12, 144, "clustered", "sqeuclidean"),
    (12, 12, 144, "clustered", "euclidean"),
    (9, 17, 153, "clustered", "sqeuclidean"),       # rectangular, full
    (17, 9, 153, "uniform", "euclidean"),
    (14, 15, 160, "clustered", "sqeuclidean"),      # holes: 50 spare cells
    (14, 15, 131, "clustered", "euclidean"),
    (10, 10, 100, "duplicates", "sqeuclidean"),     # half the points on one spot
    (10, 13, 90, "duplicates", "euclidean"),
    (1, 30, 25, "uniform", "sqeuclidean"),          # a single row with holes
    (3, 1, 1, "uniform", "euclidean"),
]


def make(rows: int, cols: int, n: int, kind: str, seed: int) -> np.ndarray:
    if kind == "uniform":
        return np.random.default_rng(seed).uniform(0, 1, (n, 2)) * np.array([cols, rows])
    pts = clustered(n, rows, cols, seed)
    if kind == "duplicates":
        pts[: n // 2] = pts[0]
        pts[n // 2: n // 2 + 5] = pts[-1]
    return pts


@pytest.mark.parametrize("rows,cols,n,kind,metric", CASES)
def test_exact_matches_scipy(rows: int, cols: int, n: int, kind: str, metric: str) -> None:
    pts = make(rows, cols, n, kind, seed=rows * 31 + n)
    res = solve_exact(pts, rows, cols, metric)
    check_valid(res.cells, n, rows, cols)
    best = optimum(pts, rows, cols, metric)
    got = assignment_cost(pts, res.cells, cols, metric)
    assert res.gap_bound <= 1e-6 * max(best, 1.0)
    assert got <= best + res.gap_bound + 1e-9 * best
    assert got >= best - 1e-9 * max(best, 1.0)


def test_random_instances_match_scipy() -> None:
    rng = np.random.default_rng(7)
    for trial in range(12):
        rows, cols = (int(v) for v in rng.integers(2, 16, 2))
        n = int(rng.integers(1, rows * cols + 1))
        metric = A.METRICS[trial % 2]
        pts = make(rows, cols, n, "clustered" if n > 8 else "uniform", seed=trial)
        cells = A.assign(pts, rows, cols, method="exact", metric=metric)
        check_valid(cells, n, rows, cols)
        best = optimum(pts, rows, cols, metric)
        assert assignment_cost(pts, cells, cols, metric) == pytest.approx(best, rel=1e-8,
                                                                         abs=1e-8)


def test_comparison_can_fail() -> None:
    """The heuristic seed is measurably worse than optimal, so the exactness checks have teeth."""
    pts = clustered(144, 12, 12, seed=3)
    seed_cost = assignment_cost(pts, bisection_assignment(pts, 12, 12), 12, "sqeuclidean")
    assert seed_cost > optimum(pts, 12, 12, "sqeuclidean") * 1.01


def test_certificate_rejects_a_worse_assignment() -> None:
    pts = clustered(100, 10, 10, seed=5)
    res = solve_exact(pts, 10, 10, "sqeuclidean")
    args = (pts[:, 0].copy(), pts[:, 1].copy(), 10, 10, 0)
    _, count, _ = violations(*args, res.cells, res.prices, res.eps * 1.01, 4)
    assert count == 0
    # swap the cells of the two points farthest apart: no longer optimal, must be flagged
    far = np.argsort(np.linalg.norm(pts - pts.mean(0), axis=1))[-2:]
    worse = res.cells.copy()
    worse[far] = worse[far[::-1]]
    _, count, worst = violations(*args, worse, res.prices, res.eps * 1.01, 4)
    assert count > 0 and worst > 0


def test_exact_is_deterministic() -> None:
    pts = make(14, 15, 160, "clustered", seed=1)
    first = A.assign(pts, 14, 15)
    assert np.array_equal(first, A.assign(pts.copy(), 14, 15))


def test_scipy_reference_agrees() -> None:
    pts = make(8, 9, 60, "clustered", seed=2)
    got = A.assign(pts, 8, 9, method="scipy", metric="euclidean")
    check_valid(got, 60, 8, 9)
    assert assignment_cost(pts, got, 9, "euclidean") == pytest.approx(
        optimum(pts, 8, 9, "euclidean"))


def test_resolve_method() -> None:
    assert A.resolve_method("auto", 100) == "exact"
    assert A.resolve_method("auto", A.EXACT_LIMIT) == "exact"
    assert A.resolve_method("scipy", 10) == "scipy"
    with pytest.raises(InputError, match="unknown assignment method"):
        A.resolve_method("hungarian", 10)


def test_points_may_lie_on_the_border() -> None:
    pts = np.array([[0.0, 0.0], [3.0, 2.0], [3.0, 0.0], [0.0, 2.0]])
    cells = A.assign(pts, 2, 3)
    assert sorted(cells.tolist()) == [0, 2, 3, 5]


@pytest.mark.parametrize("points,rows,cols,error,match", [
    (np.array([[0.5, np.nan]]), 2, 2, InputError, "NaN or inf"),
    (np.array([[0.5, np.inf], [1.0, 1.0]]), 2, 2, InputError, "NaN or inf"),
    (np.zeros((5, 2)), 2, 2, GridError, "fewer than"),
    (np.zeros((0, 2)), 2, 2, InputError, "empty"),
    (np.zeros((4, 3)), 2, 2, InputError, "N x 2"),
    (np.zeros(4), 2, 2, InputError, "N x 2"),
    (np.array([["a", "b"]]), 2, 2, InputError, "numeric"),
    (np.zeros((1, 2)), 0, 2, GridError, "at least one row"),
])
def test_bad_input(points: np.ndarray, rows: int, cols: int, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        A.assign(points, rows, cols)


def test_unknown_metric() -> None:
    with pytest.raises(InputError, match="unknown metric"):
        A.assign(np.zeros((1, 2)), 1, 1, metric="manhattan")


@pytest.mark.parametrize("rows,cols,n,metric", [(24, 24, 576, "sqeuclidean"),
                                                 (20, 27, 500, "euclidean"),
                                                 (25, 18, 450, "sqeuclidean")])
def test_coarse_to_fine_start_stays_exact(monkeypatch: pytest.MonkeyPatch, rows: int, cols: int,
                                          n: int, metric: str) -> None:
    """Force the multiscale warm start on a small grid (odd sides, holes): still optimal."""
    from tsnegrid.arrange.assign import multiscale
    monkeypatch.setattr(multiscale, "BASE_CELLS", 64)
    pts = make(rows, cols, n, "clustered", seed=n)
    res = solve_exact(pts, rows, cols, metric)
    check_valid(res.cells, n, rows, cols)
    assert assignment_cost(pts, res.cells, cols, metric) == pytest.approx(
        optimum(pts, rows, cols, metric), rel=1e-8)


@pytest.mark.parametrize("rows,cols,n", [(24, 24, 576), (20, 27, 500)])
def test_large_mode_is_near_optimal(monkeypatch: pytest.MonkeyPatch, rows: int, cols: int,
                                    n: int) -> None:
    from tsnegrid.arrange.assign import multiscale
    monkeypatch.setattr(multiscale, "BASE_CELLS", 64)
    pts = make(rows, cols, n, "clustered", seed=n + 1)
    cells = A.assign(pts, rows, cols, method="large")
    check_valid(cells, n, rows, cols)
    assert np.array_equal(cells, A.assign(pts, rows, cols, method="large"))
    best = optimum(pts, rows, cols, "sqeuclidean")
    assert best <= assignment_cost(pts, cells, cols, "sqeuclidean") <= best * 1.03


def test_auto_switches_to_large_above_the_limit() -> None:
    assert A.resolve_method("auto", A.EXACT_LIMIT + 1) == "large"
    assert set(A.SOLVERS) >= {"exact", "large", "scipy"}
