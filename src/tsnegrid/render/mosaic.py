"""Rendering: paste one tile per placed image onto a rows x cols canvas; holes stay background."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from tsnegrid.errors import ImageError, OutputTooLargeError
from tsnegrid.load import AlphaTally, Skipped, open_image
from tsnegrid.progress import ProgressFn, no_progress

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


def make_tile(image: Image.Image, tile: int, fit: bool,
              background: tuple[int, int, int]) -> Image.Image:
    """Centre-crop to a square (or, with ``fit``, letterbox) at tile x tile pixels."""
    if not fit:
        return ImageOps.fit(image, (tile, tile), Image.Resampling.LANCZOS)
    inner = ImageOps.contain(image, (tile, tile), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (tile, tile), background)
    canvas.paste(inner, ((tile - inner.width) // 2, (tile - inner.height) // 2))
    return canvas


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
) -> tuple[Image.Image, list[Skipped]]:
    """The mosaic, with every cell of the grid on the canvas, and the images that failed here
    (``alpha`` counts the mostly transparent ones)."""
    check_size(rows, cols, tile, max_pixels)
    canvas = Image.new("RGB", (cols * tile, rows * tile), background)
    failed: list[Skipped] = []
    progress("render", 0, len(paths))
    for i, (path, cell) in enumerate(zip(paths, cells, strict=True)):
        r, c = divmod(int(cell), cols)
        try:
            img = open_image(path, min_side=tile, background=background,
                             max_pixels=max_image_pixels, alpha=alpha)
            canvas.paste(make_tile(img, tile, fit, background), (c * tile, r * tile))
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
