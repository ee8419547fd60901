"""Grid geometry: parse or choose a grid shape and fit a 2-D point cloud into it."""

from __future__ import annotations

import math
import re

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import GridError, GridTooSmallError

_SHAPE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def parse_grid(text: str) -> tuple[int, int] | None:
    """``'ROWSxCOLS'`` to (rows, cols); ``'auto'`` to None."""
    if text.strip().lower() == "auto":
        return None
    m = _SHAPE.match(text)
    if not m:
        raise GridError(f"grid: expected ROWSxCOLS (e.g. 32x32) or auto, got {text!r}")
    rows, cols = int(m.group(1)), int(m.group(2))
    if rows < 1 or cols < 1:
        raise GridError(f"grid: rows and columns must be at least 1, got {text!r}")
    return rows, cols


def auto_shape(n: int, aspect: float = 1.0) -> tuple[int, int]:
    """Smallest near-``aspect`` (width/height) grid with at least n cells.

    Among column counts within 15% of sqrt(n * aspect), take the one leaving fewest holes
    (ties: closest to the aspect).
    """
    if n < 1:
        raise GridError("grid: nothing to place")
    aspect = float(np.clip(aspect, 0.25, 4.0))
    ideal = math.sqrt(n * aspect)
    lo, hi = max(1, math.floor(ideal * 0.85)), max(1, math.ceil(ideal * 1.15))
    best: tuple[float, float, int, int] | None = None
    for cols in range(lo, hi + 1):
        rows = math.ceil(n / cols)
        key = (rows * cols - n, abs(math.log((cols / rows) / aspect)), rows, cols)
        if best is None or key < best:
            best = key
    assert best is not None
    return best[2], best[3]


def cloud_aspect(points: NDArray[np.float64]) -> float:
    """Width / height of the point cloud's bounding box (1 for degenerate clouds)."""
    span = np.ptp(points, axis=0) if len(points) else np.zeros(2)
    if span[0] <= 0 or span[1] <= 0:
        return 1.0
    return float(span[0] / span[1])


def check_capacity(n: int, rows: int, cols: int) -> None:
    """Raise ``GridTooSmallError`` if the grid cannot hold n images."""
    if rows * cols < n:
        raise GridTooSmallError(rows, cols, n)


def fit_to_grid(points: NDArray[np.float64], rows: int, cols: int) -> NDArray[np.float64]:
    """Scale each axis of the cloud onto the span of cell centres.

    x goes to [0.5, cols - 0.5], y to [0.5, rows - 0.5].

    A constant axis lands on the middle of the grid.
    """
    pts = np.asarray(points, dtype=np.float64)
    out = np.empty_like(pts)
    for axis, size in ((0, cols), (1, rows)):
        v = pts[:, axis]
        lo, span = v.min(), np.ptp(v)
        if span > 0:
            out[:, axis] = 0.5 + (v - lo) / span * (size - 1)
        else:
            out[:, axis] = size / 2.0
    return out


