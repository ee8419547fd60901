"""The compiled kernels: built with the package, and equal to their reference definitions."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from tsnegrid.arrange import _kernels
from tsnegrid.arrange.assign import _kernels as assign_kernels


def test_stable_argsort_matches_numpy_stable_sort_with_ties() -> None:
    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 3, 17, 64, 1000):
        for key in (rng.random(n), np.round(rng.random(n) * 4), np.zeros(n)):
            k = n - n // 3
            got = assign_kernels.stable_argsort(np.ascontiguousarray(key), k)
            assert np.array_equal(got, np.argsort(key[:k], kind="stable"))


def test_hungarian_is_optimal_on_random_matrices() -> None:
    rng = np.random.default_rng(5)
    for k in range(1, 13):
        for _ in range(20):
            cost = rng.random((k, k))
            perm = _kernels.hungarian(cost, k)
            rows, cols = linear_sum_assignment(cost)
            assert sorted(perm.tolist()) == list(range(k))
            assert np.isclose(cost[np.arange(k), perm].sum(), cost[rows, cols].sum())


def test_swap_pass_is_fixed_by_its_seed_and_keeps_a_permutation() -> None:
    rng = np.random.default_rng(1)
    rows = cols = 12
    n = 130
    cells = rng.permutation(rows * cols)[:n]
    x = rng.random((n, 4)).astype(np.float32)
    knn = rng.integers(0, n, size=(n, 3)).astype(np.int64)
    movable = np.ones(n, dtype=np.uint8)
    results = []
    for _ in range(2):
        board = np.full(rows * cols, -1, dtype=np.int64)
        board[cells] = np.arange(n)
        pos = cells.astype(np.int64)
        accepted = _kernels.swap_pass(board, pos, x, knn, movable, rows, cols, 2, 500, 10, 0.5,
                                      7)
        assert accepted > 0
        assert np.array_equal(board[pos], np.arange(n))
        assert (board >= 0).sum() == n
        results.append(pos)
    assert np.array_equal(results[0], results[1])


def test_violations_finds_a_planted_better_cell() -> None:
    # two points in a 1 x 2 grid, each on the other's cell: both pairs violate at zero prices
    px = np.array([1.5, 0.5])
    py = np.array([0.5, 0.5])
    assigned = np.array([0, 1], dtype=np.int64)
    cells, count, worst = assign_kernels.violations(px, py, 1, 2, 0, assigned, np.zeros(2),
                                                    1e-9, 2)
    assert count == 2
    assert cells[0].tolist().count(1) == 1 and cells[1].tolist().count(0) == 1
    assert np.isclose(worst, 1.0 - 1e-9)
    _, count, _ = assign_kernels.violations(px, py, 1, 2, 0, assigned[::-1].copy(),
                                            np.zeros(2), 1e-9, 2)
    assert count == 0


def test_violations_match_a_brute_force_scan_of_every_pair() -> None:
    # the blocked search skips only blocks that provably hold no violating cell
    rng = np.random.default_rng(11)
    for rows, cols, n, metric in ((9, 13, 100, 0), (20, 17, 300, 1), (33, 31, 1000, 0)):
        px = rng.random(n) * cols
        py = rng.random(n) * rows
        assigned = rng.permutation(rows * cols)[:n].astype(np.int64)
        prices = rng.random(rows * cols) * 3.0
        eps = 0.01
        cells, count, worst = assign_kernels.violations(px, py, rows, cols, metric, assigned,
                                                        prices, eps, 4)
        r, c = np.divmod(np.arange(rows * cols), cols)
        d2 = (c[None, :] + 0.5 - px[:, None]) ** 2 + (r[None, :] + 0.5 - py[:, None]) ** 2
        cost = np.sqrt(d2) if metric else d2
        v = cost + prices[None, :]
        limit = v[np.arange(n), assigned] - eps
        bad = v < limit[:, None]
        assert count == bad.sum()
        assert np.isclose(worst, (limit[:, None] - v)[bad].max() if bad.any() else 0.0)
        for i in range(n):
            found = set(cells[i][cells[i] >= 0].tolist())
            expect = set(np.argsort(v[i], kind="stable")[:min(4, bad[i].sum())].tolist())
            assert found <= set(np.flatnonzero(bad[i]).tolist())
            assert len(found) == min(4, bad[i].sum())
            assert found == expect or np.allclose(
                np.sort(v[i, list(found)]), np.sort(v[i, list(expect)]))
