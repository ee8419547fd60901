"""A self-contained zoomable viewer for a built grid: ``index.html`` plus assets and data.

The page uses the vendored OpenSeadragon to show the deep-zoom pyramid (``grid.dzi``) when the
output folder has one, else the single mosaic image. Layout and metadata go into ``layout.js``
(a script setting a global), so the page opens from ``file://`` with no network access; each
image's nearest neighbours go into ``neighbors.js``, which the page loads on first use.
"""

from __future__ import annotations

import base64
import html
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import InputError
from tsnegrid.layout import Layout
from tsnegrid.metadata import Metadata
from tsnegrid.publish import copy_file, write_text
from tsnegrid.render.pyramid import DZI_XMLNS

ASSETS = ("openseadragon.min.js", "openseadragon.LICENSE.txt", "viewer.js", "concepts.js",
          "similar.js", "select.js", "labels.js", "hash.js", "viewer.css")
SINGLE_IMAGE_MAX_SIDE = 8192
"""Above this mosaic side the viewer needs the pyramid: browsers decode huge images slowly."""
MAX_COLOUR_VALUES = 40
"""A metadata field with at most this many distinct values is offered for colouring."""
NEIGHBORS_SCRIPT = "neighbors.js"


def needs_pyramid(rows: int, cols: int, tile: int) -> bool:
    """Whether a viewer for this grid must be backed by a DZI pyramid, not one image."""
    return max(rows, cols) * tile > SINGLE_IMAGE_MAX_SIDE


def image_source(out_dir: Path, fmt: str, pyramid: bool | None = None) -> dict[str, Any]:
    """OpenSeadragon tile source: the DZI inlined, or the mosaic (``pyramid`` None: the DZI
    if ``out_dir`` holds one)."""
    dzi = out_dir / "grid.dzi"
    if pyramid or (pyramid is None and dzi.exists()):
        root = ET.parse(dzi).getroot()
        size = root.find(f"{{{DZI_XMLNS}}}Size")
        if size is None:
            raise InputError(f"{dzi}: not a Deep Zoom descriptor (no Size element)")
        return {"Image": {"xmlns": DZI_XMLNS, "Url": "grid_files/", "Format": root.get("Format"),
                          "Overlap": root.get("Overlap"), "TileSize": root.get("TileSize"),
                          "Size": {"Width": size.get("Width"), "Height": size.get("Height")}}}
    for ext in dict.fromkeys((fmt, "jpg", "png", "webp")):
        for name in ("grid-plain", "grid"):  # the mosaic without burnt-in names first
            if (out_dir / f"{name}.{ext}").exists():
                return {"type": "image", "url": f"{name}.{ext}", "buildPyramid": True}
    raise InputError(f"{out_dir}: no grid.dzi or grid image to show; render the grid first")


def relative_href(path: str, page_dir: str) -> str:
    """A link from the viewer page in ``page_dir`` (absolute) to an original image, relative
    when possible."""
    target = os.path.abspath(path)
    try:
        return quote(Path(os.path.relpath(target, page_dir)).as_posix())
    except ValueError:  # another drive on Windows
        return Path(target).as_uri()


def encode_fields(meta: Metadata | None, paths: Sequence[str]) -> list[dict[str, Any]]:
    """Each metadata field dictionary-encoded: distinct ``values`` and one code per image."""
    if meta is None:
        return []
    joined = meta.join(paths)
    out = []
    for name in meta.fields:
        index: dict[str, int] = {}
        codes = [index.setdefault(v, len(index)) if (v := rec.get(name, "")) else -1
                 for rec in joined]
        if index:
            out.append({"name": name, "values": list(index), "codes": codes,
                        "colourable": 1 < len(index) <= MAX_COLOUR_VALUES})
    return out


def encode_neighbors(neighbors: NDArray[np.integer], source: str = "") -> dict[str, Any]:
    """N x k neighbour indices packed for the page: each index in the fewest little-endian
    bytes that hold N - 1 (3 bytes up to 16.7M images), row-major, base64. At 100,000 images
    and k = 20 that is 8.0 MB, against 10.7 MB as int32 and about 13 MB as a JSON list."""
    idx = np.asarray(neighbors, dtype=np.int64)
    n, k = idx.shape
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise InputError(f"neighbour indices must lie in [0, {n}), got "
                         f"[{idx.min()}, {idx.max()}]")
    width = next(b for b in (1, 2, 3, 4) if max(n - 1, 0) < 256 ** b)
    raw = idx.astype("<u4").view(np.uint8).reshape(-1, 4)[:, :width]
    return {"k": k, "from": source, "bytes": width,
            "data": base64.b64encode(raw.tobytes()).decode("ascii")}


def encode_concepts(images: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Each image's concepts (``layout.json``'s ``{id, name, value}`` lists) for the page: the
    classes used, each with its name, its search terms (name and WordNet synonyms) and broader
    names; then ``k`` class codes per image (-1: none) and their probabilities in thousandths.
    None when the layout has no concepts."""
    if not images or not any("concepts" in im for im in images):
        return None
    from tsnegrid.concepts.broader import broader_names
    from tsnegrid.concepts.names import class_ids, class_synonyms

    index = {wnid: k for k, wnid in enumerate(class_ids())}
    synonyms, broader = class_synonyms(), broader_names()
    k = max(len(im.get("concepts", ())) for im in images)
    used: dict[str, int] = {}
    classes: list[dict[str, Any]] = []
    codes: list[int] = []
    values: list[int] = []
    for im in images:
        row = list(im.get("concepts", ()))
        for c in row:
            code = used.get(c["id"])
            if code is None:
                code = used[c["id"]] = len(classes)
                at = index.get(c["id"])
                terms = [c["name"]] + ([synonyms[at]] if at is not None else [])
                classes.append({"name": c["name"], "terms": " | ".join(terms).lower(),
                                "groups": list(broader[at]) if at is not None else []})
            codes.append(code)
            values.append(round(1000 * float(c["value"])))
        codes += [-1] * (k - len(row))
        values += [0] * (k - len(row))
    return {"k": k, "classes": classes, "codes": codes, "values": values}


def viewer_data(layout: Mapping[str, Any], out_dir: Path, *, metadata: Metadata | None = None,
                image_url: Callable[[str], str] | None = None,
                pyramid: bool | None = None) -> dict[str, Any]:
    """Everything the page needs, from a ``Layout.to_dict()``-shaped mapping."""
    rows, cols = int(layout["grid"]["rows"]), int(layout["grid"]["cols"])
    images = layout["images"]
    paths = [str(im["path"]) for im in images]
    page_dir = os.path.abspath(out_dir)
    href = image_url or (lambda p: relative_href(p, page_dir))
    return {
        "rows": rows, "cols": cols, "tile": int(layout["settings"]["tile"]),
        "source": image_source(out_dir, str(layout["settings"].get("format", "jpg")), pyramid),
        "paths": paths,
        "hrefs": [href(p) for p in paths],
        "cells": [int(im["row"]) * cols + int(im["col"]) for im in images],
        "fields": encode_fields(metadata, paths),
        "concepts": encode_concepts(images),
        "regions": [{k: r[k] for k in ("name", "size", "anchor", "radius", "bbox", "level",
                                       "path") if k in r}
                    for r in layout.get("regions", [])],
        "regionOf": ([int(im.get("region", -1)) for im in images]
                     if layout.get("regions") else None),
        "coarseOf": ([int(im.get("coarse_region", -1)) for im in images]
                     if any("coarse_region" in im for im in images) else None),
    }


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
    """Write ``index.html``, ``layout.js`` and ``viewer/`` into ``out_dir`` (which must already
    hold the grid image or pyramid); return the page's path.

    ``metadata`` is a loaded file or a mapping keyed by path or file name; ``image_url`` maps an
    image path to the link the page opens on click (default: a path relative to the page).
    ``pyramid`` picks the DZI (True) or the single mosaic (False); None: the DZI if present.
    ``neighbors`` (N x k indices in image order; a ``Layout``'s own by default) feed "more like
    this" through ``neighbors.js``; without them the page says none are stored.
    """
    out = Path(out_dir)
    doc: Mapping[str, Any] = layout.to_dict() if isinstance(layout, Layout) else layout
    if isinstance(layout, Layout):
        if neighbors is None:
            neighbors, neighbors_from = layout.neighbors, layout.neighbors_from
    meta = Metadata.from_mapping(metadata) if isinstance(metadata, Mapping) else metadata
    data = viewer_data(doc, out, metadata=meta, image_url=image_url, pyramid=pyramid)
    data["neighbors"] = None
    script_path = out / NEIGHBORS_SCRIPT
    if neighbors is not None:
        if len(neighbors) != len(data["paths"]):
            raise InputError(f"neighbors: {len(neighbors)} rows for {len(data['paths'])} images")
        packed = encode_neighbors(neighbors, neighbors_from)
        write_text(script_path, "window.TSNEGRID_NEIGHBORS = " + json.dumps(packed) + ";\n")
        data["neighbors"] = {"k": packed["k"], "from": neighbors_from,
                             "script": NEIGHBORS_SCRIPT}
    elif script_path.exists():  # left by an earlier build into this folder
        script_path.unlink()
    assets = resources.files("tsnegrid.render.viewer") / "assets"
    (out / "viewer").mkdir(parents=True, exist_ok=True)
    for name in ASSETS:
        with resources.as_file(assets / name) as src:
            copy_file(src, out / "viewer" / name)
    script = "window.TSNEGRID = " + json.dumps(data, separators=(",", ":")) + ";\n"
    write_text(out / "layout.js", script)
    page = Template((assets / "index.html").read_text(encoding="utf-8"))
    index = out / "index.html"
    write_text(index, page.substitute(title=html.escape(title)))
    return index
