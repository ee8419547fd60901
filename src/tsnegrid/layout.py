"""The result of a build: where each image sits, how it got there, and how good it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tsnegrid.load import Skipped
from tsnegrid.settings import Settings


@dataclass(frozen=True)
class Layout:
    """Placed images in input order: ``cells[i]`` is the cell ``row * cols + col`` of
    ``paths[i]``; ``coords[i]`` its 2-D embedding coordinate."""

    paths: tuple[str, ...]
    cells: NDArray[np.int64]
    coords: NDArray[np.float64]
    rows: int
    cols: int
    model_id: str
    settings: Settings
    skipped: tuple[Skipped, ...] = ()
    n_found: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)
    """Near-duplicate path -> the placed path whose cell it shares (``--dedupe``)."""
    neighbors: NDArray[np.int32] | None = None
    """``neighbors[i]``: indices (into ``paths``) of image i's nearest images, nearest first,
    for the viewer's "more like this"; None when not computed."""
    neighbors_from: str = ""
    """What the neighbours were measured in: ``vectors`` (the embedding) or ``coords`` (the
    2-D points of a ``--coords`` build)."""

    @property
    def row_col(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(row, col) of every placed image."""
        r, c = np.divmod(self.cells, self.cols)
        return r, c

    def records(self) -> list[dict[str, Any]]:
        """One dict per placed image: path, row, col, x, y."""
        r, c = self.row_col
        return [{"path": p, "row": int(ri), "col": int(ci), "x": float(xy[0]), "y": float(xy[1])}
                for p, ri, ci, xy in zip(self.paths, r, c, self.coords, strict=True)]

    def duplicate_records(self) -> list[dict[str, Any]]:
        """One dict per near-duplicate: path, the cell it shares, duplicate_of."""
        at = {r["path"]: r for r in self.records()}
        return [{**at[orig], "path": dup, "duplicate_of": orig}
                for dup, orig in self.duplicates.items()]

    def to_dict(self) -> dict[str, Any]:
        """Everything in layout.json."""
        return {
            "grid": {"rows": self.rows, "cols": self.cols, "cells": self.rows * self.cols},
            "counts": {"found": self.n_found, "placed": len(self.paths),
                       "skipped": len(self.skipped), "duplicates": len(self.duplicates)},
            "model": self.model_id,
            "settings": self.settings.to_dict(),
            "timings": self.timings,
            "metrics": self.metrics,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "images": self.records(),
            "duplicates": self.duplicate_records(),
        }
