"""Render: the mosaic image (``mosaic``, with ``labels`` the region names burnt in), the
deep-zoom pyramid (``pyramid``) and the zoomable viewer (``viewer``); ``render_outputs`` draws
what the config asks for into an output folder. The parts are imported when used, so importing
this package costs little."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tsnegrid.errors import OutputTooLargeError
from tsnegrid.layout import Layout
from tsnegrid.load import AlphaTally
from tsnegrid.progress import ProgressFn, no_progress
from tsnegrid.render.config import RenderConfig

if TYPE_CHECKING:
    from PIL import Image

    from tsnegrid.load import Skipped
    from tsnegrid.metadata import Metadata
    from tsnegrid.tiles import TileSource

__all__ = ["PLAIN_MOSAIC", "RenderConfig", "render_outputs"]

#: With ``labels`` and ``html``: the mosaic without the burnt-in names, which the viewer shows
#: (it draws the names itself, sized to the zoom).
PLAIN_MOSAIC = "grid-plain"

log = logging.getLogger(__name__)


def render_outputs(layout: Layout, out: Path, config: RenderConfig | None = None,
                   progress: ProgressFn = no_progress, *,
                   metadata: Metadata | Mapping[str, Mapping[str, object]] | None = None,
                   home: Path | None = None, tiles: TileSource | None = None) -> Layout:
    """Draw the mosaic (and, with ``tiles`` or a large ``html`` grid, the DZI pyramid; with
    ``html``, the viewer) into ``out``. The returned layout lists the placed images that could not
    be drawn (``undrawn``: their cells stay background) and counts the mostly transparent ones.
    ``config`` defaults to the layout's own settings. ``home``: the folder the files will be
    published to when ``out`` is a staging folder (the viewer's links and title, and the
    layout's ``mosaic``, point there). ``tiles``: the tiles the embed pass kept (the others are
    decoded from the originals)."""
    from tsnegrid.render.mosaic import check_size, render_mosaic, save_image, tile_loader
    from tsnegrid.render.pyramid import write_dzi
    from tsnegrid.render.viewer import needs_pyramid, write_viewer
    from tsnegrid.tiles import TileSpec

    c = config or RenderConfig.from_settings(layout.settings)
    out.mkdir(parents=True, exist_ok=True)
    home = home or out
    paths = [Path(p) for p in layout.paths]
    timings = dict(layout.timings)
    mosaic: Image.Image | None = None  # the grid image, once drawn
    picture = ""  # the file that shows the whole grid (for Layout._repr_html_)
    failed: list[Skipped] = []
    alpha = AlphaTally(c.background)
    spec = TileSpec(c.tile, c.fit, c.background)  # each image's tile
    try:
        check_size(layout.rows, layout.cols, c.tile, c.max_pixels, c.format)
        fits = True
    except OutputTooLargeError as exc:
        if not c.tiles:
            raise
        fits = False
        log.info("skipping the single mosaic, writing only the pyramid: %s", exc)
    if fits:
        t0 = time.perf_counter()
        mosaic, failed = render_mosaic(paths, layout.cells, layout.rows, layout.cols,
                                       tile=c.tile, fit=c.fit, background=c.background,
                                       max_pixels=c.max_pixels,
                                       max_image_pixels=c.max_image_pixels, progress=progress,
                                       alpha=alpha, load_tile=tile_loader(
                                           spec, max_image_pixels=c.max_image_pixels,
                                           alpha=alpha, source=tiles))
        named = c.labels and layout.regions is not None
        # the viewer draws the names itself (zoom-dependent): it shows the mosaic without them
        plain = out / f"{PLAIN_MOSAIC}.{c.format}"
        if named and c.html:
            save_image(mosaic, plain, c.format)
        else:
            plain.unlink(missing_ok=True)  # never a stale one from an earlier build
        if named:
            from tsnegrid.render.labels import draw_labels

            assert layout.regions is not None
            draw_labels(mosaic, (*layout.regions.coarse, *layout.regions.regions), c.tile)
        save_image(mosaic, out / f"grid.{c.format}", c.format)
        picture = str(home / f"grid.{c.format}")
        timings["render"] = round(time.perf_counter() - t0, 3)
    pyramid = c.tiles or (c.html and needs_pyramid(layout.rows, layout.cols, c.tile))
    if pyramid:
        t0 = time.perf_counter()
        written = write_dzi(paths, layout.cells, layout.rows, layout.cols, out, tile=c.tile,
                            fit=c.fit, background=c.background, fmt=c.format,
                            max_image_pixels=c.max_image_pixels, progress=progress,
                            alpha=alpha if mosaic is None else None, load_tile=tile_loader(
                                spec, max_image_pixels=c.max_image_pixels,
                                alpha=alpha if mosaic is None else None, source=tiles))
        timings["pyramid"] = round(time.perf_counter() - t0, 3)
        if c.html:
            t0 = time.perf_counter()
            _overview(layout, out, c, written.levels, written.tile_format)
            timings["overview"] = round(time.perf_counter() - t0, 3)
        failed = failed if mosaic is not None else list(written.failed)
        if not picture:  # the overview level of at most 256 px is one tile
            overview = max(0, min(written.levels - 1, 8))
            picture = str(home / "grid_files" / str(overview) / f"0_0.{written.tile_format}")
    layout = replace(layout, timings=timings, undrawn=tuple(failed), mosaic=picture,
                     transparent=alpha.count, transparent_faint=alpha.faint,
                     transparent_note=alpha.advice() or "")
    if c.html:
        from tsnegrid.render.viewer import relative_href

        page_dir = os.path.abspath(home)
        write_viewer(layout, out, metadata=metadata, pyramid=pyramid,
                     title=f"tsnegrid: {home.resolve().name}",
                     image_url=lambda p: relative_href(p, page_dir))
    return layout


def _overview(layout: Layout, out: Path, c: RenderConfig, levels: int, fmt: str) -> None:
    """Show each region's representatives (or each block's centre image) in the pyramid's
    levels whose cells are too small to see (``tsnegrid.render.overview``)."""
    from tsnegrid.load import open_image
    from tsnegrid.render.mosaic import make_tile
    from tsnegrid.render.overview import bake_overview, block_areas, region_areas
    from tsnegrid.render.pyramid import TILE_SAVE_OPTIONS

    if layout.regions is not None:
        area_levels = [region_areas(layout.regions.regions),
                       region_areas(layout.regions.coarse)]
    else:
        sides = [2 ** k for k in range(2, max(2, math.ceil(math.log2(max(layout.rows,
                                                                           layout.cols)))))]
        area_levels = [block_areas(layout.cells, layout.rows, layout.cols, side)
                       for side in sides]

    def load(i: int, side: int) -> Image.Image:
        img = open_image(layout.paths[i], min_side=side, background=c.background,
                         max_pixels=c.max_image_pixels)
        return make_tile(img, side, c.fit, c.background)

    pil_format, options = TILE_SAVE_OPTIONS[fmt]

    def save(tile: Image.Image, path: Path) -> None:
        tile.save(path, format=pil_format, **options)

    bake_overview(out / "grid_files", fmt, layout.rows, layout.cols, c.tile, levels,
                  [a for a in area_levels if a], load, save)
