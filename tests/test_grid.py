"""Grid geometry: shape strings, automatic shapes and fitting points into the grid."""

from __future__ import annotations

import numpy as np
import pytest

from tsnegrid.arrange.grid import auto_shape, check_capacity, fit_to_grid, parse_grid
from tsnegrid.errors import GridError


@pytest.mark.parametrize("text,expected", [("32x32", (32, 32)), ("40X25", (40, 25)),
                                           (" 3 x 7 ", (3, 7)), ("auto", None)])
def test_parse_grid(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_grid(text) == expected


@pytest.mark.parametrize("text", ["32", "32x", "x32", "0x5", "axb", "3x-4", "1.5x2", ""])
def test_parse_grid_rejects_bad_strings(text: str) -> None:
    with pytest.raises(GridError, match="grid"):
        parse_grid(text)


@pytest.mark.parametrize("n,aspect", [(1, 1.0), (2, 1.0), (1024, 1.0), (1000, 1.6), (77, 0.5),
                                      (10_000, 1.0), (999, 3.0)])
def test_auto_shape_fits_and_follows_aspect(n: int, aspect: float) -> None:
    rows, cols = auto_shape(n, aspect)
    assert rows * cols >= n
    assert rows * cols - n < max(rows, cols)
    if n >= 100:
        assert abs(np.log((cols / rows) / aspect)) < 0.3


def test_auto_shape_square_for_square_numbers() -> None:
    assert auto_shape(1024) == (32, 32)


def test_grid_too_small_is_refused() -> None:
    with pytest.raises(GridError, match="4 cells, too few for 5 images"):
        check_capacity(5, 2, 2)


def test_fit_to_grid_spans_cell_centres() -> None:
    pts = np.array([[0.0, 10.0], [4.0, 30.0], [2.0, 20.0]])
    out = fit_to_grid(pts, rows=5, cols=3)
    np.testing.assert_allclose(out.min(axis=0), [0.5, 0.5])
    np.testing.assert_allclose(out.max(axis=0), [2.5, 4.5])
    same = fit_to_grid(np.ones((4, 2)), rows=2, cols=6)
    np.testing.assert_allclose(same, [[3.0, 1.0]] * 4)
