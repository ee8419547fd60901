"""Rendering: paste one tile per placed image onto a rows x cols canvas; holes stay background.

A tile comes from ``load_tile`` (``tile_loader``: the one the embed pass kept, else the original
decoded again and made into its tile, ``tsnegrid.tiles.make_tile``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tsnegrid.errors import ImageError, OutputTooLargeError
from tsnegrid.load import AlphaTally, Skipped, open_image
from tsnegrid.progress import ProgressFn, no_progress
from tsnegrid.tiles import TileSource, TileSpec, make_tile

__all__ = ["check_size", "make_tile", "render_mosaic", "save_image", "tile_loader"]

log = logging.getLogger(__name__)

LoadTile = Callable[[str | Path], Image.Image]

MAX_SIDE = {"jpg": 65_535, "webp": 16_383, "png": 2**31 - 1}


def check_size(rows: int, cols: int, tile: int, max_pixels: int, fmt: str = "png") -> None:
    """Refuse a canvas over ``max_pixels`` (or over the format's side limit) before any work."""
    side = max(rows, cols) * tile
    if side > MAX_SIDE[fmt]:
        raise OutputTooLargeError(
            f"mosaic side of {side:,} pixels exceeds the {fmt} limit of {MAX_SIDE[fmt]:,}; use "
            f"a smaller --tile or another --format")
    pixels = rows * cols * tile * tile
    if pixels > max_pixels:
        raise OutputTooLargeError(
            f"mosaic {cols * tile}x{rows * tile} = {pixels:,} pixels exceeds the limit of "
            f"{max_pixels:,}; use a smaller --tile or raise --max-pixels")


def tile_loader(spec: TileSpec, *, max_image_pixels: int = 178_956_970,
                alpha: AlphaTally | None = None, source: TileSource | None = None) -> LoadTile:
    """A file's tile: ``source``'s (its alpha verdict counted in ``alpha``), else the original
    decoded at the tile's scale and made into its tile; ``ImageError`` when it cannot be."""

    def load(path: str | Path) -> Image.Image:
        thumb = source.get(path) if source is not None else None
        if thumb is not None:
            try:
                image = thumb.image()
            except (OSError, SyntaxError, ValueError) as exc:  # a damaged blob: decode again
                log.info("%s: its cached tile cannot be read (%s)", path, exc)
            else:
                if alpha is not None:
                    alpha.add_verdict(thumb.transparent, thumb.faint, thumb.luma)
                return image
        img = open_image(path, min_side=spec.tile, background=spec.background,
                         max_pixels=max_image_pixels, alpha=alpha)
        return spec.make(img)

    return load


def render_mosaic(
    paths: Sequence[Path],
    cells: NDArray[np.int64],
    rows: int,
    cols: int,
    *,
    tile: int = 64,
    fit: bool = False,
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = 400_000_000,
    max_image_pixels: int = 178_956_970,
    progress: ProgressFn = no_progress,
    alpha: AlphaTally | None = None,
    load_tile: LoadTile | None = None,
) -> tuple[Image.Image, list[Skipped]]:
    """The mosaic, with every cell of the grid on the canvas, and the images that failed here
    (``alpha`` counts the mostly transparent ones). ``load_tile`` replaces decoding plus
    ``make_tile`` (``tile_loader`` with the tiles the embed pass kept)."""
    load = load_tile or tile_loader(TileSpec(tile, fit, background),
                                    max_image_pixels=max_image_pixels, alpha=alpha)
    check_size(rows, cols, tile, max_pixels)
    canvas = Image.new("RGB", (cols * tile, rows * tile), background)
    failed: list[Skipped] = []
    progress("render", 0, len(paths))
    for i, (path, cell) in enumerate(zip(paths, cells, strict=True)):
        r, c = divmod(int(cell), cols)
        try:
            canvas.paste(load(path), (c * tile, r * tile))
        except ImageError as exc:
            failed.append(Skipped(str(path), str(exc).split(": ", 1)[-1]))
        progress("render", i + 1, len(paths))
    return canvas, failed


def save_image(image: Image.Image, path: Path, fmt: str) -> None:
    """Write the mosaic in jpg, png or webp (published: a temporary name, then renamed)."""
    from tsnegrid.publish import atomic_path

    options: dict[str, dict[str, object]] = {"jpg": {"quality": 90, "optimize": True},
                                             "webp": {"quality": 90}, "png": {"optimize": False}}

    pil_format = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}[fmt]
    with atomic_path(path) as tmp:
        image.save(tmp, format=pil_format, **options[fmt])
