"""The overview: what the pyramid shows where a cell is too small to see.

Zoomed out on a large grid, each image is a pixel or less and the averaged mosaic is a grey
texture that says nothing. In the pyramid's levels where a cell is under ``CELL_PX`` pixels,
the mosaic is dimmed and each region is shown by its representative images (its medoids in
the embedding, ``Region.representatives``), sized to the region and centred where the viewer
writes its name: the coarse regions where the fine ones are too small to show an image, the
fine ones where they are large enough. Without regions, square blocks of the grid stand in for
them, each shown by the image at its centre (the grid keeps like images together). Zooming in,
the viewer fades each level's tiles in over the one above, so the overview crossfades into the
real tiles. The levels are rewritten in place after the pyramid is written; they are small (at
most ``CELL_PX`` pixels per cell: 16 megapixels at a million cells).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from tsnegrid.errors import ImageError
from tsnegrid.regions import Region

CELL_PX = 8.0
"""Levels whose cells are smaller than this many pixels show the overview."""
REP_MIN_PX = 40
"""A representative is shown at least this large; an area too small for it shows none."""
REP_MAX_PX = 128
"""Largest side of a representative (they are decoded once at this size)."""
DIM = 0.6
"""How far the mosaic under the representatives is darkened (0: not at all, 1: black)."""
QUAD_PX = 2.2 * REP_MIN_PX
"""An area with room for a square of this side shows its first four representatives in a
2 x 2 block instead of one."""


@dataclass(frozen=True)
class Area:
    """A part of the grid the overview shows: where (centre cell, inscribed radius in cells,
    size in images) and by which images (indices, best first)."""

    anchor: tuple[int, int]
    radius: float
    size: int
    images: tuple[int, ...]


def region_areas(regions: Sequence[Region]) -> list[Area]:
    return [Area(r.anchor, r.radius, r.size, r.representatives)
            for r in regions if r.representatives]


def block_areas(cells: NDArray[np.int64], rows: int, cols: int, side: int) -> list[Area]:
    """Square blocks of ``side`` cells, each shown by the image nearest its centre."""
    at = np.full(rows * cols, -1, dtype=np.int64)
    at[cells] = np.arange(len(cells))
    r, c = np.divmod(cells, cols)
    key = (r // side) * (cols // side + 1) + c // side
    centre_r = (r // side) * side + min(side, rows) / 2 - 0.5
    centre_c = (c // side) * side + min(side, cols) / 2 - 0.5
    d = (r - centre_r) ** 2 + (c - centre_c) ** 2
    order = np.lexsort((d, key))
    first = order[np.flatnonzero(np.diff(key[order], prepend=-1))]
    counts = np.bincount(key)[key[first]]
    return [Area((int(r[i]), int(c[i])), side / 2, int(k), (int(i),))
            for i, k in zip(first.tolist(), counts.tolist(), strict=True)]


def _choose(levels: Sequence[list[Area]], s: float) -> list[Area]:
    """The finest set of areas whose typical (median) area has room for a representative at
    cell size ``s`` px; the coarsest when none has."""
    for areas in levels:
        if areas and float(np.median([a.radius for a in areas])) * 1.6 * s >= REP_MIN_PX:
            return areas
    return levels[-1] if levels else []


def bake_overview(
    folder: Path,
    fmt: str,
    rows: int,
    cols: int,
    tile: int,
    levels: int,
    area_levels: Sequence[list[Area]],
    load: Callable[[int, int], Image.Image],
    save: Callable[[Image.Image, Path], None],
) -> int:
    """Rewrite the low levels of the pyramid in ``folder`` (``NAME_files``) to show the
    overview. ``area_levels``: sets of areas from finest to coarsest; ``load(i, side)`` image
    i's thumbnail at ``side`` px; ``save`` writes a tile. Returns the levels rewritten."""
    from tsnegrid.render.pyramid import DZI_TILE, level_size

    top = levels - 1
    width, height = cols * tile, rows * tile
    cache: dict[int, Image.Image | None] = {}

    def thumb(i: int) -> Image.Image | None:
        if i not in cache:
            try:
                cache[i] = load(i, REP_MAX_PX)
            except ImageError:
                cache[i] = None
        return cache[i]

    done = 0
    for level in range(top, -1, -1):
        s = tile / 2 ** (top - level)
        if s >= CELL_PX:
            continue
        w, h = level_size(width, height, level, top)
        where = folder / str(level)
        canvas = Image.new("RGB", (w, h))
        nx, ny = math.ceil(w / DZI_TILE), math.ceil(h / DZI_TILE)
        for ty in range(ny):
            for tx in range(nx):
                with Image.open(where / f"{tx}_{ty}.{fmt}") as t:
                    canvas.paste(t.convert("RGB"), (tx * DZI_TILE, ty * DZI_TILE))
        canvas = Image.eval(canvas, lambda v: int(v * (1 - DIM)))
        draw = ImageDraw.Draw(canvas)
        for area in _choose(area_levels, s):
            side = min(REP_MAX_PX, 1.6 * area.radius * s)
            if side < REP_MIN_PX:
                continue
            cx, cy = (area.anchor[1] + 0.5) * s, (area.anchor[0] + 0.5) * s
            quad = side >= QUAD_PX and len(area.images) >= 4
            picks = area.images[:4] if quad else area.images[:1]
            cell = int(side / 2) if quad else int(side)
            x0, y0 = int(cx - (cell * 2 if quad else cell) / 2), int(cy - (cell * 2 if quad
                                                                           else cell) / 2)
            for j, i in enumerate(picks):
                img = thumb(i)
                if img is None:
                    continue
                x, y = x0 + (j % 2) * cell, y0 + (j // 2) * cell
                canvas.paste(img.resize((cell, cell), Image.Resampling.LANCZOS), (x, y))
            full = cell * (2 if quad else 1)
            draw.rectangle((x0 - 1, y0 - 1, x0 + full, y0 + full), outline=(235, 235, 235))
        for ty in range(ny):
            for tx in range(nx):
                box = (tx * DZI_TILE, ty * DZI_TILE, min(w, (tx + 1) * DZI_TILE),
                       min(h, (ty + 1) * DZI_TILE))
                save(canvas.crop(box), where / f"{tx}_{ty}.{fmt}")
        done += 1
    return done
