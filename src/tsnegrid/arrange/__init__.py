"""Arrange: put the 2-D points on grid cells, then improve the grid.

``arrange(points, vectors, ArrangeConfig.from_settings(s))`` is the stage as the pipeline runs it.
Its parts: ``grid`` (shape, fit of the cloud to the cell centres), ``assign`` (the certified exact
linear assignment and the large mode), ``refine`` (swaps in the original vector space) with
``sort`` (linear assignment sorting rounds for low-dimensional data, over the sparse auction of
``sparse_lap``), ``smooth`` (map smoothing for large low-dimensional grids), and
``incremental`` (placing new images into an existing grid). The parts are imported when used, so
importing this package costs nothing. The hot loops are C, compiled from Cython when the
package is installed: ``_kernels`` (swaps, smoothing, the sparse auction) and
``assign._kernels`` (the auction, its certificate, the bisection).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tsnegrid.arrange.config import ArrangeConfig
from tsnegrid.progress import ProgressFn, no_progress

__all__ = ["ArrangeConfig", "Arranged", "arrange", "grid_shape"]


@dataclass(frozen=True)
class Arranged:
    """Cells ``row * cols + col`` per point, the grid, the points as fitted to the cell centres
    and the time each part took."""

    cells: NDArray[np.int64]
    rows: int
    cols: int
    fitted: NDArray[np.float64]
    timings: dict[str, float] = field(default_factory=dict)


def grid_shape(points: NDArray[np.float64], config: ArrangeConfig) -> tuple[int, int]:
    """The configured grid, or the automatic one near the point cloud's aspect; checked to hold
    every point."""
    from tsnegrid.arrange import grid

    n = len(points)
    rows, cols = config.shape or grid.auto_shape(n, grid.cloud_aspect(points))
    grid.check_capacity(n, rows, cols)
    return rows, cols


def arrange(points: NDArray[np.float64], vectors: NDArray[np.floating] | None,
            config: ArrangeConfig, *, shape: tuple[int, int] | None = None,
            progress: ProgressFn = no_progress) -> Arranged:
    """Snap ``points`` (N x 2) to distinct cells of ``shape`` (default: ``grid_shape``) by the
    exact assignment, then, given the original ``vectors``, refine the grid by local swaps."""
    from tsnegrid.arrange import assign, grid, refine

    rows, cols = shape or grid_shape(points, config)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    progress("assign", 0, 1)
    fitted = grid.fit_to_grid(points, rows, cols)
    cells = assign.assign(fitted, rows, cols, method=config.assign)
    progress("assign", 1, 1)
    timings["assign"] = round(time.perf_counter() - t0, 3)
    if vectors is not None and refine.resolve_refine(config.refine, rows * cols):
        t0 = time.perf_counter()
        progress("refine", 0, 1)
        cells = refine.refine(vectors, cells, rows, cols, seed=config.seed).cells
        progress("refine", 1, 1)
        timings["refine"] = round(time.perf_counter() - t0, 3)
    return Arranged(cells, rows, cols, fitted, timings)
