"""Deep-zoom image pyramid (DZI) of the grid, written in streaming fashion.

The full-resolution canvas is never held in memory. The top level is rendered in horizontal
bands of one DZI tile row (256 px), pasting only the images whose cells intersect the band
(``grid_bands``, loading them on a thread pool in a few tasks per thread); each band is cut into
tiles and then halved into the level below, whose bands are assembled from two halves, cut,
halved again, and so on down to 1x1. One thread encodes a band's tiles while the next band is
made. Peak memory is a few bands per level, about ``5 * width * 256 * 3`` bytes, independent of
the number of images beyond the layout arrays.

libvips' ``dzsave`` was measured against this writer on the same bands (benchmarks/pyramid.py):
its tiles are pixel-identical, but it spends more CPU per tile and was slower here.

Layout on disk (Deep Zoom, as OpenSeadragon reads it): ``NAME.dzi`` and
``NAME_files/LEVEL/COL_ROW.FMT``; level ``L = ceil(log2(max(width, height)))`` is full
resolution, level ``l`` is ``ceil(width / 2**(L - l))`` wide. Tiles are 256 px with overlap 0:
the image splits exactly on tile boundaries, so bands never need pixels from their neighbours.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tsnegrid.errors import ImageError, InputError
from tsnegrid.load import AlphaTally, Skipped, open_image
from tsnegrid.progress import ProgressFn, no_progress
from tsnegrid.publish import write_text
from tsnegrid.render.mosaic import make_tile

DZI_TILE = 256
DZI_OVERLAP = 0
DZI_XMLNS = "http://schemas.microsoft.com/deepzoom/2008"
LOAD_CHUNK = 256
"""Most images one decoding task loads (a band's images are split into a few tasks per thread)."""
TILE_SAVE_OPTIONS: dict[str, tuple[str, dict[str, object]]] = {
    "jpg": ("JPEG", {"quality": 85}),
    "png": ("PNG", {"compress_level": 6}),
    "webp": ("WEBP", {"quality": 85}),
}


@dataclass(frozen=True)
class Pyramid:
    """A written pyramid: its .dzi file, full-resolution size, level count and failed images."""

    dzi: Path
    width: int
    height: int
    levels: int
    tile_format: str
    failed: tuple[Skipped, ...] = ()


def level_count(width: int, height: int) -> int:
    """Number of DZI levels: 0 (1x1) up to ceil(log2(max side)), inclusive."""
    return math.ceil(math.log2(max(width, height, 1))) + 1


def level_size(width: int, height: int, level: int, top: int) -> tuple[int, int]:
    """Pixel size of ``level`` when ``top`` is the full-resolution level."""
    k = 2 ** (top - level)
    return -(-width // k), -(-height // k)


def dzi_xml(width: int, height: int, fmt: str, tile: int = DZI_TILE,
            overlap: int = DZI_OVERLAP) -> str:
    """The .dzi descriptor."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Image xmlns="{DZI_XMLNS}" Format="{fmt}" Overlap="{overlap}" '
            f'TileSize="{tile}">\n  <Size Width="{width}" Height="{height}"/>\n</Image>\n')


class _LevelWriter:
    """Receives one level's bands top to bottom; writes their tiles and feeds the level below."""

    def __init__(self, folder: Path, level: int, fmt: str,
                 below: _LevelWriter | None) -> None:
        self.folder = folder / str(level)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fmt = fmt
        self.below = below
        self.row = 0
        self.pending: list[Image.Image] = []
        self.pending_height = 0

    def add(self, part: Image.Image) -> None:
        """Append rows (a half band from the level above, or a full band at the top)."""
        self.pending.append(part)
        self.pending_height += part.height
        if self.pending_height >= DZI_TILE:
            self._emit()

    def finish(self) -> None:
        """Flush a partial last band, then the levels below."""
        if self.pending_height:
            self._emit()
        if self.below is not None:
            self.below.finish()

    def _emit(self) -> None:
        parts, self.pending, self.pending_height = self.pending, [], 0
        if len(parts) == 1:
            band = parts[0]
        else:
            band = Image.new("RGB", (parts[0].width, sum(p.height for p in parts)))
            y = 0
            for p in parts:
                band.paste(p, (0, y))
                y += p.height
        self._write_tiles(band)
        if self.below is not None:
            self.below.add(band.reduce(2))
        self.row += 1

    def _write_tiles(self, band: Image.Image) -> None:
        pil_format, options = TILE_SAVE_OPTIONS[self.fmt]
        for col, x in enumerate(range(0, band.width, DZI_TILE)):
            tile = band.crop((x, 0, min(x + DZI_TILE, band.width), band.height))
            tile.save(self.folder / f"{col}_{self.row}.{self.fmt}", format=pil_format,
                      **options)


def _cell_order(cells: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Image indices sorted by cell, and the sorted cells (for range lookups by grid row)."""
    order = np.argsort(cells, kind="stable")
    return order, cells[order]


def check_grid(n_paths: int, cells: NDArray[np.int64], rows: int, cols: int, tile: int,
               fmt: str) -> None:
    """Refuse a layout or tile format that cannot make a pyramid, before any work."""
    if n_paths != len(cells):
        raise InputError(f"{n_paths} paths but {len(cells)} cells")
    if rows < 1 or cols < 1 or tile < 1:
        raise InputError(f"grid {rows}x{cols} with {tile} px cells has no pixels")
    if len(cells) and (cells.min() < 0 or cells.max() >= rows * cols):
        raise InputError(f"cells must lie in 0..{rows * cols - 1}")
    if fmt not in TILE_SAVE_OPTIONS:
        raise InputError(f"tile format must be one of {', '.join(TILE_SAVE_OPTIONS)}, got {fmt!r}")


def grid_bands(
    paths: Sequence[str | Path],
    cells: NDArray[np.int64],
    rows: int,
    cols: int,
    failed: dict[int, Skipped],
    *,
    tile: int = 64,
    fit: bool = False,
    background: tuple[int, int, int] = (255, 255, 255),
    max_image_pixels: int = 178_956_970,
    workers: int = 0,
    progress: ProgressFn = no_progress,
    load_tile: Callable[[str | Path], Image.Image] | None = None,
    alpha: AlphaTally | None = None,
) -> Iterator[Image.Image]:
    """The full-resolution grid, top to bottom, in RGB bands of one DZI tile row (the last may
    be shorter); images that fail are left as background and recorded in ``failed`` by index.

    Only the images whose cells intersect a band are pasted into it; a cell taller than a band
    is decoded once and kept until the band below it is done.
    """
    def default_load(path: str | Path) -> Image.Image:
        img = open_image(path, min_side=tile, background=background,
                         max_pixels=max_image_pixels, alpha=alpha)
        return make_tile(img, tile, fit, background)

    load = load_tile or default_load

    def safe_load(indices: list[int]) -> list[Image.Image | Skipped]:
        results: list[Image.Image | Skipped] = []
        for i in indices:
            try:
                results.append(load(paths[i]))
            except ImageError as exc:
                results.append(Skipped(str(paths[i]), str(exc).split(": ", 1)[-1]))
        return results

    width, height = cols * tile, rows * tile
    order, sorted_cells = _cell_order(cells)
    cache: dict[int, Image.Image] = {}  # tiles of grid rows that straddle a band boundary
    done = 0
    threads = workers or os.cpu_count() or 1
    progress("pyramid", 0, len(paths))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for y0 in range(0, height, DZI_TILE):
            y1 = min(y0 + DZI_TILE, height)
            r0, r1 = y0 // tile, (y1 - 1) // tile
            lo, hi = np.searchsorted(sorted_cells, [r0 * cols, (r1 + 1) * cols])
            band_idx = [int(i) for i in order[lo:hi]]
            todo = [i for i in band_idx if i not in cache and i not in failed]
            # a few chunks per thread: one task per image costs more than a cached thumbnail
            step = max(1, min(LOAD_CHUNK, -(-len(todo) // (4 * threads))))
            chunks = [todo[j:j + step] for j in range(0, len(todo), step)]
            for chunk, results in zip(chunks, pool.map(safe_load, chunks), strict=True):
                for i, result in zip(chunk, results, strict=True):
                    if isinstance(result, Skipped):
                        failed[i] = result
                    else:
                        cache[i] = result
            done += len(todo)
            band = Image.new("RGB", (width, y1 - y0), background)
            for i in band_idx:
                if i in cache:
                    r, c = divmod(int(cells[i]), cols)
                    band.paste(cache[i], (c * tile, r * tile - y0))
            # keep only tiles that reach into the next band
            cache = {i: t for i, t in cache.items() if (int(cells[i]) // cols + 1) * tile > y1}
            yield band
            progress("pyramid", done, len(paths))


def write_dzi(
    paths: Sequence[str | Path],
    cells: NDArray[np.int64],
    rows: int,
    cols: int,
    out_dir: str | Path,
    *,
    tile: int = 64,
    fit: bool = False,
    background: tuple[int, int, int] = (255, 255, 255),
    fmt: str = "jpg",
    name: str = "grid",
    max_image_pixels: int = 178_956_970,
    workers: int = 0,
    progress: ProgressFn = no_progress,
    load_tile: Callable[[str | Path], Image.Image] | None = None,
    alpha: AlphaTally | None = None,
) -> Pyramid:
    """Write ``NAME.dzi`` and ``NAME_files/`` into ``out_dir``; images that fail are reported.

    ``tile`` is the cell size in pixels at full resolution (DZI tiles are always 256 px).
    ``workers`` threads decode images (0: one per CPU). ``load_tile`` replaces decoding plus
    ``make_tile`` (for tests and callers with their own thumbnails).
    """
    cells = np.asarray(cells, dtype=np.int64)
    check_grid(len(paths), cells, rows, cols, tile, fmt)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folder = out / f"{name}_files"
    if folder.exists():
        shutil.rmtree(folder)  # stale tiles of an earlier, differently sized build
    width, height = cols * tile, rows * tile
    levels = level_count(width, height)
    writer: _LevelWriter | None = None
    for level in range(levels):
        writer = _LevelWriter(folder, level, fmt, writer)
    assert writer is not None
    failed: dict[int, Skipped] = {}
    bands = grid_bands(paths, cells, rows, cols, failed, tile=tile, fit=fit,
                       background=background, max_image_pixels=max_image_pixels,
                       workers=workers, progress=progress, load_tile=load_tile, alpha=alpha)
    # one thread encodes a band's tiles (Pillow lets go of the GIL) while the next is made
    with ThreadPoolExecutor(max_workers=1) as encoder:
        pending: Future[None] | None = None
        for band in bands:
            if pending is not None:
                pending.result()
            pending = encoder.submit(writer.add, band)
        if pending is not None:
            pending.result()
    writer.finish()
    dzi = out / f"{name}.dzi"
    write_text(dzi, dzi_xml(width, height, fmt))  # last: it names the tiles
    return Pyramid(dzi, width, height, levels, fmt, tuple(failed[i] for i in sorted(failed)))
