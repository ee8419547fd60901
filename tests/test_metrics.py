"""Metrics: known orderings score as expected."""

from __future__ import annotations

import numpy as np

from tsnegrid import metrics
from tsnegrid.metrics import (
    cell_positions,
    displacement,
    dpq,
    knn_preservation,
    neighbour_agreement,
)


def _smooth_grid(rows: int, cols: int) -> np.ndarray:
    r, c = np.divmod(np.arange(rows * cols), cols)
    return np.column_stack([r, c, r * c / 10]).astype(float)


def test_dpq_sorted_beats_shuffled() -> None:
    x = _smooth_grid(10, 12)
    cells = np.arange(120)
    shuffled = np.random.default_rng(0).permutation(120)
    good, bad = dpq(x, cells, 12), dpq(x, shuffled, 12)
    assert good > 0.9 and bad < 0.5 and 0 <= bad <= good <= 1


def test_dpq_sampled_rows_close_to_exact() -> None:
    x = _smooth_grid(20, 20) + np.random.default_rng(1).normal(0, 0.3, (400, 3))
    cells = np.arange(400)
    assert abs(dpq(x, cells, 20) - dpq(x, cells, 20, max_rows=150)) < 0.03


def test_knn_preservation_extremes() -> None:
    x = _smooth_grid(12, 12)
    assert knn_preservation(x, cell_positions(np.arange(144), 12), k=4) > 0.9
    shuffled = np.random.default_rng(0).permutation(144)
    assert knn_preservation(x, cell_positions(shuffled, 12), k=4) < 0.2


def test_displacement() -> None:
    pts = np.array([[0.5, 0.5], [1.5, 0.5], [0.5, 2.5]])
    d = displacement(pts, np.array([0, 1, 2]), cols=2)
    assert d["max_displacement"] == 1.0 and abs(d["mean_displacement"] - 1 / 3) < 1e-12


def test_neighbour_agreement() -> None:
    labels = np.array(["a"] * 8 + ["b"] * 8)
    assert neighbour_agreement(labels, np.arange(16), 4, 4) > 0.6
    assert neighbour_agreement(np.array(["a", "b"] * 8), np.arange(16), 4, 4) < 0.6


def test_layout_neighbours_by_brute_force_match_the_kd_tree(monkeypatch) -> None:
    rng = np.random.default_rng(5)
    v = rng.normal(size=(900, 6))
    cells = rng.permutation(900)
    brute = metrics.knn_preservation(v, metrics.cell_positions(cells, 30))
    monkeypatch.setattr(metrics, "BRUTE_MAX_N", 0)
    assert brute == metrics.knn_preservation(v, metrics.cell_positions(cells, 30))
