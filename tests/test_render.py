"""Rendering: every cell on the canvas, holes in the background colour, size limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import solid
from tsnegrid.errors import OutputTooLargeError
from tsnegrid.render.mosaic import check_size, render_mosaic


def test_every_cell_is_on_the_canvas_and_holes_are_background(tmp_path: Path) -> None:
    paths = [solid(tmp_path / f"{i}.png", (255, 0, 0), size=(30, 50)) for i in range(5)]
    cells = np.array([0, 2, 4, 5, 7])
    im, failed = render_mosaic(paths, cells, rows=2, cols=4, tile=10, background=(0, 0, 255))
    assert im.size == (40, 20) and failed == []
    arr = np.asarray(im)
    assert tuple(arr[15, 35]) == (255, 0, 0)  # cell 7: last row, last column
    assert tuple(arr[5, 15]) == (0, 0, 255)  # cell 1 is a hole


def test_fit_letterboxes(tmp_path: Path) -> None:
    path = solid(tmp_path / "wide.png", (255, 0, 0), size=(40, 10))
    im, _ = render_mosaic([path], np.array([0]), 1, 1, tile=20, fit=True,
                          background=(0, 255, 0))
    arr = np.asarray(im)
    assert tuple(arr[0, 10]) == (0, 255, 0) and tuple(arr[10, 10]) == (255, 0, 0)


def test_unreadable_image_at_render_is_reported(tmp_path: Path) -> None:
    (tmp_path / "gone.png").write_text("x")
    _, failed = render_mosaic([tmp_path / "gone.png"], np.array([0]), 1, 1, tile=8)
    assert len(failed) == 1 and "not an image" in failed[0].reason


def test_too_large_output_is_refused() -> None:
    with pytest.raises(OutputTooLargeError, match="exceeds the limit of 1,000,000"):
        check_size(100, 100, 64, 1_000_000)
    with pytest.raises(OutputTooLargeError, match="webp limit"):
        check_size(300, 300, 64, 10**12, "webp")
