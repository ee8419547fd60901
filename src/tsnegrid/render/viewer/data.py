"""The viewer's data: what the page knows of each image, and how it is split into files.

``viewer_data`` gathers everything, image by image (paths, links, cells, metadata, concepts,
regions). ``page_files`` splits it so that the page opens at any size: a small index
(``layout.js``: the grid, the regions, the field and concept dictionaries, each image's cell)
that the page parses up front, and files it fetches when the view needs them (all script files
calling a global function, so they load from ``file://`` as well as from a server):

- ``data/c{R}_{C}.js``: the images of one block of ``CHUNK_SIDE`` x ``CHUNK_SIDE`` cells (their
  paths, links, metadata, concepts and regions), for the hover tip, the CSV and the search of
  words the index leaves out;
- ``data/n{R}_{C}.js``: the same images' look-alikes ("more like this");
- ``data/f{K}.js``: one colourable field's value per image (colour by);
- ``data/search.js``: the search index: postings of images per word of the paths and metadata,
  and per concept class with its probabilities.
"""

from __future__ import annotations

import base64
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from numpy.typing import NDArray

from tsnegrid.errors import InputError
from tsnegrid.metadata import Metadata

SINGLE_IMAGE_MAX_SIDE = 8192
"""Above this mosaic side the viewer needs the pyramid: browsers decode huge images slowly."""
MAX_COLOUR_VALUES = 40
"""A metadata field with at most this many distinct values is offered for colouring."""
CHUNK_SIDE = 64
"""Images per data file: those of a block of this many cells square (4,096 at most)."""
DATA_DIR = "data"
MAX_DICTIONARY = 4096
"""A metadata field with at most this many distinct values keeps them in the index (the blocks
then hold codes); a wider one (captions, ids) keeps each value in its images' block."""
WHOLE_TERMS_MAX = 100_000
"""The search index holds whole file names and metadata values while a kind has at most this
many distinct ones; above (a million unique file names), the words in them instead."""
MAX_TERMS = 200_000
"""Above this many words, those of a single image are left out of the search index (the page
then searches the blocks for a query the index does not find)."""
_WORD = re.compile(r"[^\W_]+")


def needs_pyramid(rows: int, cols: int, tile: int) -> bool:
    """Whether a viewer for this grid must be backed by a DZI pyramid, not one image."""
    return max(rows, cols) * tile > SINGLE_IMAGE_MAX_SIDE


def relative_href(path: str, page_dir: str) -> str:
    """A link from the viewer page in ``page_dir`` (absolute) to an original image, relative
    when possible."""
    folder, name = os.path.split(os.path.abspath(path))
    rel = _relative_folder(folder, page_dir)
    if rel is None:  # another drive on Windows
        return Path(folder, name).as_uri()
    return quote(f"{rel}/{name}" if rel != "." else name)


@lru_cache(maxsize=4096)
def _relative_folder(folder: str, page_dir: str) -> str | None:
    """``folder`` relative to ``page_dir`` in ``/`` form (None when there is no relative path):
    computed once per folder, not once per image."""
    try:
        return Path(os.path.relpath(folder, page_dir)).as_posix()
    except ValueError:
        return None


# ---- packing ---------------------------------------------------------------------------------

def int_width(top: int) -> int:
    """The fewest little-endian bytes that hold every value in 0..top."""
    return next(b for b in (1, 2, 3, 4) if max(top, 0) < 256 ** b)


def pack_ints(values: NDArray[np.integer] | Sequence[int], top: int) -> dict[str, Any]:
    """Values in 0..top packed in ``int_width(top)`` little-endian bytes each, base64."""
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    if v.size and (v.min() < 0 or v.max() > top):
        raise InputError(f"values must lie in [0, {top}], got [{v.min()}, {v.max()}]")
    width = int_width(top)
    raw = v.astype("<u4").view(np.uint8).reshape(-1, 4)[:, :width]
    return {"bytes": width, "data": base64.b64encode(raw.tobytes()).decode("ascii")}


def unpack_ints(packed: Mapping[str, Any]) -> NDArray[np.int64]:
    """``pack_ints`` reversed."""
    width = int(packed["bytes"])
    raw = np.frombuffer(base64.b64decode(packed["data"]), np.uint8).reshape(-1, width)
    return (raw.astype(np.int64) * (256 ** np.arange(width))).sum(axis=1)


def encode_neighbors(neighbors: NDArray[np.integer], source: str = "") -> dict[str, Any]:
    """N x k neighbour indices packed for the page: each index in the fewest little-endian
    bytes that hold N - 1 (3 bytes up to 16.7M images), row-major, base64. At 100,000 images
    and k = 20 that is 8.0 MB, against 10.7 MB as int32 and about 13 MB as a JSON list."""
    idx = np.asarray(neighbors, dtype=np.int64)
    n, k = idx.shape
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise InputError(f"neighbour indices must lie in [0, {n}), got "
                         f"[{idx.min()}, {idx.max()}]")
    return {"k": k, "from": source, **pack_ints(idx, n - 1)}


def encode_postings(ids: NDArray[np.integer]) -> str:
    """Sorted image indices as gaps in LEB128 varints, base64: a word on many images costs
    about a byte per image, one on a few costs their indices' bytes."""
    v = np.asarray(ids, dtype=np.int64)
    gaps = np.diff(v, prepend=0).astype(np.uint64)
    groups = np.stack([(gaps >> np.uint64(7 * b)) & np.uint64(0x7F) for b in range(5)], axis=1)
    more = np.stack([(gaps >> np.uint64(7 * (b + 1))) > 0 for b in range(5)], axis=1)
    length = 1 + more.sum(axis=1)
    raw = (groups | np.where(more, 0x80, 0).astype(np.uint64)).astype(np.uint8)
    keep = np.arange(5)[None, :] < length[:, None]
    return base64.b64encode(raw[keep].tobytes()).decode("ascii")


def decode_postings(text: str) -> NDArray[np.int64]:
    """``encode_postings`` reversed."""
    out, value, shift, last = [], 0, 0, 0
    for b in base64.b64decode(text):
        value |= (b & 0x7F) << shift
        if b & 0x80:
            shift += 7
            continue
        last += value
        out.append(last)
        value, shift = 0, 0
    return np.asarray(out, dtype=np.int64)


# ---- what the page knows of each image -------------------------------------------------------

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


def image_source(out_dir: Path, fmt: str, pyramid: bool | None = None) -> dict[str, Any]:
    """OpenSeadragon tile source: the DZI inlined, or the mosaic (``pyramid`` None: the DZI
    if ``out_dir`` holds one)."""
    import xml.etree.ElementTree as ET

    from tsnegrid.render.pyramid import DZI_XMLNS

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


def viewer_data(layout: Mapping[str, Any], out_dir: Path, *, metadata: Metadata | None = None,
                image_url: Callable[[str], str] | None = None,
                pyramid: bool | None = None) -> dict[str, Any]:
    """Everything the page needs, image by image, from a ``Layout.to_dict()``-shaped mapping
    (``page_files`` splits it into the files the page loads)."""
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


# ---- the files --------------------------------------------------------------------------------

def chunk_key(cell: int, cols: int) -> str:
    """The data file key of the block that holds ``cell``."""
    r, c = divmod(cell, cols)
    return f"{r // CHUNK_SIDE}_{c // CHUNK_SIDE}"


def _blocks(cells: NDArray[np.int64], cols: int) -> dict[str, NDArray[np.int64]]:
    """Image indices per block, each block's in cell order."""
    r, c = np.divmod(cells, cols)
    block = (r // CHUNK_SIDE) * (cols // CHUNK_SIDE + 1) + c // CHUNK_SIDE
    order = np.lexsort((cells, block))
    out: dict[str, NDArray[np.int64]] = {}
    if not len(order):
        return out
    starts = np.flatnonzero(np.diff(block[order], prepend=-1))
    for s, e in zip(starts, [*starts[1:], len(order)], strict=True):
        ids = order[s:e]
        out[chunk_key(int(cells[ids[0]]), cols)] = ids
    return out


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def search_index(paths: Sequence[str], fields: Sequence[Mapping[str, Any]],
                 concepts: Mapping[str, Any] | None) -> dict[str, Any]:
    """Postings for the page's search, built once here so a query never reads every block.

    Terms (lower case): each folder of a path (its whole directory), each file name and each
    metadata value, or, where a kind has more than ``WHOLE_TERMS_MAX`` distinct ones, the words
    in them; a query matches the images of every term it is part of. Words of a single image
    are left out above ``MAX_TERMS`` terms (``partial``: the page then searches the blocks when
    the index finds nothing). Concepts: per class, its images and their probabilities in
    thousandths (2 bytes each), in image order."""
    terms: dict[str, set[int]] = defaultdict(set)

    def add(kind: Iterable[str], as_words: bool) -> None:
        for i, text in enumerate(kind):
            if not text:
                continue
            for term in (_words(text) if as_words else (text.lower(),)):
                terms[term].add(i)

    dirs = [os.path.dirname(p) for p in paths]
    names = [os.path.basename(p) for p in paths]
    add(dirs, as_words=False)
    add(names, as_words=len(set(names)) > WHOLE_TERMS_MAX)
    for f in fields:
        vals = f["values"]
        add(("" if c < 0 else vals[c] for c in f["codes"]), as_words=len(vals) > WHOLE_TERMS_MAX)
    partial = False
    if len(terms) > MAX_TERMS:
        partial = True
        terms = defaultdict(set, {t: s for t, s in terms.items() if len(s) > 1})
    vocab = sorted(terms)
    out: dict[str, Any] = {
        "terms": vocab, "partial": partial,
        "postings": [encode_postings(np.fromiter(sorted(terms[t]), np.int64, len(terms[t])))
                     for t in vocab]}
    if concepts is not None:
        k = int(concepts["k"])
        codes = np.asarray(concepts["codes"], dtype=np.int64).reshape(-1, k)
        values = np.asarray(concepts["values"], dtype=np.int64).reshape(-1, k)
        flat, img = codes.reshape(-1), np.repeat(np.arange(len(codes)), k)
        used = flat >= 0
        flat, img, v = flat[used], img[used], values.reshape(-1)[used]
        order = np.lexsort((img, flat))
        bounds = np.searchsorted(flat[order], np.arange(len(concepts["classes"]) + 1))
        per_class = []
        for code in range(len(concepts["classes"])):
            at = order[bounds[code]:bounds[code + 1]]
            per_class.append({
                "ids": encode_postings(img[at]),
                "p": base64.b64encode(v[at].astype("<u2").tobytes()).decode("ascii")})
        out["concepts"] = per_class
    return out


def page_files(data: Mapping[str, Any], neighbors: NDArray[np.integer] | None = None,
               neighbors_from: str = "") -> tuple[dict[str, Any], dict[str, str]]:
    """``viewer_data``'s dict split into the page's index (``layout.js``'s object) and its data
    files (relative path -> script text)."""
    import json

    def js(call: str, *args: Any) -> str:
        return f"{call}(" + ",".join(json.dumps(a, separators=(",", ":")) for a in args) + ");\n"

    n, cols = len(data["paths"]), int(data["cols"])
    cells = np.asarray(data["cells"], dtype=np.int64)
    blocks = _blocks(cells, cols)
    files: dict[str, str] = {}
    fields = data["fields"]
    dictionary = [len(f["values"]) <= MAX_DICTIONARY for f in fields]
    concepts = data["concepts"]
    k = concepts["k"] if concepts else 0
    for key, ids in blocks.items():
        at = ids.tolist()
        chunk: dict[str, Any] = {
            "images": at,
            "paths": [data["paths"][i] for i in at],
            "hrefs": [data["hrefs"][i] for i in at],
            "fields": [[f["codes"][i] for i in at] if small else
                       [f["values"][f["codes"][i]] if f["codes"][i] >= 0 else None for i in at]
                       for f, small in zip(fields, dictionary, strict=True)]}
        if concepts:
            chunk["concepts"] = {
                "codes": [c for i in at for c in concepts["codes"][i * k:(i + 1) * k]],
                "values": [v for i in at for v in concepts["values"][i * k:(i + 1) * k]]}
        if data.get("regionOf") is not None:
            chunk["region"] = [data["regionOf"][i] for i in at]
        if data.get("coarseOf") is not None:
            chunk["coarse"] = [data["coarseOf"][i] for i in at]
        files[f"{DATA_DIR}/c{key}.js"] = js("tsnegridChunk", key, chunk)
        if neighbors is not None:
            files[f"{DATA_DIR}/n{key}.js"] = js("tsnegridNear", key, pack_ints(
                np.asarray(neighbors)[ids], max(n - 1, 0)))
    index_fields = []
    for j, (f, small) in enumerate(zip(fields, dictionary, strict=True)):
        entry: dict[str, Any] = {"name": f["name"], "colourable": f["colourable"],
                                 "values": f["values"] if small else None}
        if f["colourable"]:
            entry["script"] = f"{DATA_DIR}/f{j}.js"
            codes = np.asarray(f["codes"], dtype=np.int64)
            files[entry["script"]] = js("tsnegridField", j, pack_ints(
                np.where(codes < 0, 255, codes), 255))
        index_fields.append(entry)
    search_script = f"{DATA_DIR}/search.js"
    search = search_index(data["paths"], fields, concepts)
    files[search_script] = js("tsnegridSearch", search)
    index = {
        "format": 2, "n": n, "rows": data["rows"], "cols": cols, "tile": data["tile"],
        "source": data["source"], "cells": pack_ints(cells, max(data["rows"] * cols - 1, 0)),
        "chunk": {"side": CHUNK_SIDE, "dir": DATA_DIR},
        "fields": index_fields,
        "concepts": None if not concepts else {"k": k, "classes": concepts["classes"]},
        "regions": data["regions"],
        "regionOf": data.get("regionOf") is not None,
        "coarseOf": data.get("coarseOf") is not None,
        "search": {"script": search_script, "partial": search["partial"]},
        "neighbors": None if neighbors is None else {
            "k": int(np.asarray(neighbors).shape[1]), "from": neighbors_from},
    }
    return index, files
