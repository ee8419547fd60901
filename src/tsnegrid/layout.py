"""The result of a build: where each image sits, how it got there, and how good it is."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from tsnegrid.load import Skipped
from tsnegrid.settings import Settings

if TYPE_CHECKING:
    from tsnegrid.concepts import Concepts
    from tsnegrid.regions import Regions


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
    concepts: Concepts | None = None
    """Row i: the ImageNet concepts of ``paths[i]``; None when the model has no classifier."""
    regions: Regions | None = None
    """The named regions of the grid (``regions.labels[i]``: that of ``paths[i]``); None
    without concepts."""
    mosaic: str = ""
    """The rendered grid image (or, for a pyramid-only build, its one-tile overview level);
    empty until rendered."""
    undrawn: tuple[Skipped, ...] = ()
    """Placed images that could not be decoded again when drawn (their cells stay background);
    they are placed, so ``n_found == len(paths) + len(skipped) + len(duplicates)`` holds."""
    transparent: int = 0
    """How many placed images are mostly transparent (counted when drawn)."""
    transparent_faint: int = 0
    """How many of those look empty on the background (visible parts close to its colour)."""
    transparent_note: str = ""
    """The report's line on them: their visible parts' lightness and a ``--background`` that
    shows them; empty when there are none."""

    @property
    def row_col(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(row, col) of every placed image."""
        r, c = np.divmod(self.cells, self.cols)
        return r, c

    def records(self) -> list[dict[str, Any]]:
        """One dict per placed image: path, row, col, x, y (and its concepts, when known)."""
        r, c = self.row_col
        out = [{"path": p, "row": int(ri), "col": int(ci), "x": float(xy[0]), "y": float(xy[1])}
               for p, ri, ci, xy in zip(self.paths, r, c, self.coords, strict=True)]
        if self.concepts is not None:
            for i, rec in enumerate(out):
                rec["concepts"] = self.concepts.records(i)
        if self.regions is not None:
            for rec, k in zip(out, self.regions.labels.tolist(), strict=True):
                rec["region"] = k
            if self.regions.coarse_labels is not None:
                for rec, k in zip(out, self.regions.coarse_labels.tolist(), strict=True):
                    rec["coarse_region"] = k
        return out

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
                       "skipped": len(self.skipped), "duplicates": len(self.duplicates),
                       "undrawn": len(self.undrawn), "transparent": self.transparent,
                       "transparent_faint": self.transparent_faint},
            "model": self.model_id,
            "settings": self.settings.to_dict(),
            "timings": self.timings,
            "metrics": self.metrics,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "undrawn": [{"path": s.path, "reason": s.reason} for s in self.undrawn],
            "images": self.records(),
            "duplicates": self.duplicate_records(),
            **({"concepts": {"model": self.concepts.model_id,
                             "top": int(self.concepts.ids.shape[1]),
                             "classes": "ImageNet-1k"}} if self.concepts is not None else {}),
            **({"regions": [r.to_dict(k) for k, r in enumerate(self.regions.regions)]
                + [r.to_dict(k) for k, r in enumerate(self.regions.coarse)]}
               if self.regions is not None else {}),
        }

    def _repr_html_(self) -> str:
        """Jupyter's view: a small inline thumbnail of the mosaic (when rendered and readable)
        beside a table of the grid, counts, model and metrics."""
        rows = [("grid", f"{self.rows} x {self.cols}"), ("images placed", f"{len(self.paths):,}"),
                ("skipped", f"{len(self.skipped):,}"), ("model", self.model_id)]
        if self.duplicates:
            rows.append(("near-duplicates", f"{len(self.duplicates):,}"))
        rows += [(k, f"{v:.4g}") for k, v in self.metrics.items()]
        if self.timings:
            rows.append(("time (s)", f"{sum(self.timings.values()):.1f}"))
        table = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                        f"<td style='text-align:left'>{html.escape(v)}</td></tr>"
                        for k, v in rows)
        thumb = _thumbnail_uri(self.mosaic) if self.mosaic else None
        img = (f"<img src='{thumb}' alt='the grid' style='max-width:{THUMBNAIL}px;"
               f"image-rendering:auto;margin-right:16px'>" if thumb else "")
        return (f"<div class='tsnegrid-layout' style='display:flex;align-items:flex-start'>"
                f"{img}<table>{table}</table></div>")


THUMBNAIL = 320
"""Longest side in pixels of the notebook thumbnail."""


def _thumbnail_uri(path: str) -> str | None:
    """The image at ``path`` shrunk to ``THUMBNAIL`` px as a JPEG data URI; None when it cannot
    be read (a notebook's repr must not fail)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.thumbnail((THUMBNAIL, THUMBNAIL))
            buf = io.BytesIO()
            im.convert("RGB").save(buf, format="JPEG", quality=85)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
