"""A self-contained zoomable viewer for a built grid: ``index.html`` plus assets and data.

The page uses the vendored OpenSeadragon to show the deep-zoom pyramid (``grid.dzi``) when the
output folder has one, else the single mosaic image. A small index goes into ``layout.js`` (a
script setting a global), and what the page knows of each image into script files per block of
the grid that it loads as the view needs them (``tsnegrid.render.viewer.data``), so the page
opens from ``file://`` with no network access, and as fast at a million images as at a
thousand.
"""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import InputError
from tsnegrid.layout import Layout
from tsnegrid.metadata import Metadata
from tsnegrid.publish import copy_file, write_text
from tsnegrid.render.viewer.data import (
    CHUNK_SIDE,
    DATA_DIR,
    MAX_COLOUR_VALUES,
    SINGLE_IMAGE_MAX_SIDE,
    encode_concepts,
    encode_fields,
    encode_neighbors,
    image_source,
    needs_pyramid,
    page_files,
    relative_href,
    viewer_data,
)

__all__ = ["CHUNK_SIDE", "MAX_COLOUR_VALUES", "SINGLE_IMAGE_MAX_SIDE", "encode_concepts",
           "encode_fields", "encode_neighbors", "image_source", "needs_pyramid", "page_files",
           "relative_href", "viewer_data", "write_viewer"]

ASSETS = ("openseadragon.min.js", "openseadragon.LICENSE.txt", "viewer.js", "concepts.js",
          "similar.js", "select.js", "labels.js", "hash.js", "viewer.css")
LEGACY = ("neighbors.js",)
"""Files of an earlier page format, dropped when a page is written into the same folder."""


def write_viewer(
    layout: Layout | Mapping[str, Any],
    out_dir: str | Path,
    *,
    metadata: Metadata | Mapping[str, Mapping[str, Any]] | None = None,
    image_url: Callable[[str], str] | None = None,
    pyramid: bool | None = None,
    title: str = "tsnegrid",
    neighbors: NDArray[np.integer] | None = None,
    neighbors_from: str = "",
) -> Path:
    """Write ``index.html``, ``layout.js``, ``data/`` and ``viewer/`` into ``out_dir`` (which
    must already hold the grid image or pyramid); return the page's path.

    ``metadata`` is a loaded file or a mapping keyed by path or file name; ``image_url`` maps an
    image path to the link the page opens on click (default: a path relative to the page).
    ``pyramid`` picks the DZI (True) or the single mosaic (False); None: the DZI if present.
    ``neighbors`` (N x k indices in image order; a ``Layout``'s own by default) feed "more like
    this"; without them the page says none are stored.
    """
    out = Path(out_dir)
    doc: Mapping[str, Any] = layout.to_dict() if isinstance(layout, Layout) else layout
    if isinstance(layout, Layout):
        if neighbors is None:
            neighbors, neighbors_from = layout.neighbors, layout.neighbors_from
    meta = Metadata.from_mapping(metadata) if isinstance(metadata, Mapping) else metadata
    data = viewer_data(doc, out, metadata=meta, image_url=image_url, pyramid=pyramid)
    if neighbors is not None:
        if len(neighbors) != len(data["paths"]):
            raise InputError(f"neighbors: {len(neighbors)} rows for {len(data['paths'])} images")
        encode_neighbors(neighbors, neighbors_from)  # checks the indices
    index, files = page_files(data, neighbors, neighbors_from)
    folder = out / DATA_DIR
    if folder.exists():
        shutil.rmtree(folder)  # an earlier build's blocks
    folder.mkdir(parents=True)
    for name, text in files.items():
        write_text(out / name, text)
    for name in LEGACY:
        (out / name).unlink(missing_ok=True)
    assets = resources.files("tsnegrid.render.viewer") / "assets"
    (out / "viewer").mkdir(parents=True, exist_ok=True)
    for name in ASSETS:
        with resources.as_file(assets / name) as src:
            copy_file(src, out / "viewer" / name)
    write_text(out / "layout.js",
               "window.TSNEGRID = " + json.dumps(index, separators=(",", ":")) + ";\n")
    page = Template((assets / "index.html").read_text(encoding="utf-8"))
    index_html = out / "index.html"
    write_text(index_html, page.substitute(title=html.escape(title)))
    return index_html
