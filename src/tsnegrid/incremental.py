"""Incremental add: place new images into an existing layout without a full rebuild.

Old images keep their cells, except a bounded number next to where new images land, which may
move when that improves the layout. Each new image targets the mean cell of its nearest old
images (in PCA space of the embeddings); new images go to the free cells nearest their targets
(an exact LAP; the grid grows by whole rows at the bottom when it lacks free cells), then the
refinement of ``tsnegrid.refine`` moves only new images, holes and the budgeted old images.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from tsnegrid import metrics as metrics_mod
from tsnegrid import refine as refine_mod
from tsnegrid.errors import InputError, NoImagesError
from tsnegrid.layout import Layout
from tsnegrid.progress import ProgressFn, no_progress
from tsnegrid.settings import Settings

log = logging.getLogger(__name__)

#: Old images whose mean cell is a new image's target.
NEIGHBOURS = 5
#: Share of the old images that may change cell, at most.
MAX_MOVED = 0.03
#: Grid distance (cells) from a new image's target within which old images may move.
REACH_MOVED = 3.0
#: Refinement passes over the movable images.
PASSES = 8


@dataclass(frozen=True)
class Placement:
    """Cells of old and new images on a grid of ``rows`` x the old columns."""

    old_cells: NDArray[np.int64]
    new_cells: NDArray[np.int64]
    rows: int
    moved: int
    """Old images that changed cell."""


def _cell_xy(cells: NDArray[np.int64], cols: int) -> NDArray[np.float64]:
    r, c = np.divmod(cells, cols)
    return np.column_stack([c + 0.5, r + 0.5]).astype(np.float64)


def _misfit(x: NDArray[np.float64], cells: NDArray[np.int64], rows: int,
            cols: int) -> NDArray[np.float64]:
    """Mean distance of each image to its occupied 8-neighbours (0 when it has none)."""
    board = np.full(rows * cols, -1, dtype=np.int64)
    board[cells] = np.arange(len(cells))
    r, c = np.divmod(cells, cols)
    total, count = np.zeros(len(cells)), np.zeros(len(cells))
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            rr, cc = r + dr, c + dc
            ok = (dr or dc) & (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
            other = np.full(len(cells), -1)
            other[ok] = board[rr[ok] * cols + cc[ok]]
            has = other >= 0
            total[has] += np.linalg.norm(x[has] - x[other[has]], axis=1)
            count += has
    return total / np.maximum(count, 1)


def place(old_vectors: NDArray[np.floating], old_cells: NDArray[np.int64], rows: int, cols: int,
          new_vectors: NDArray[np.floating], *, seed: int = 0,
          max_moved: float = MAX_MOVED) -> Placement:
    """Place ``new_vectors`` into the layout of ``old_vectors`` (cells on a rows x cols grid)."""
    old_cells = np.asarray(old_cells, dtype=np.int64)
    n_old, n_new = len(old_cells), len(new_vectors)
    if len(old_vectors) != n_old:
        raise InputError(f"{len(old_vectors)} old vectors for {n_old} placed images")
    if n_new == 0:
        return Placement(old_cells.copy(), np.zeros(0, np.int64), rows, 0)
    if n_old == 0:
        raise InputError("the layout has no images to add to")
    x = refine_mod.reduce_for_refine(np.vstack([old_vectors, new_vectors]), seed)
    xo, xn = x[:n_old].astype(np.float64), x[n_old:].astype(np.float64)
    k = min(NEIGHBOURS, n_old)
    old_xy = _cell_xy(old_cells, cols)
    target = np.empty((n_new, 2))
    sq = (xo**2).sum(1)
    for start in range(0, n_new, 256):
        q = xn[start:start + 256]
        d = (q**2).sum(1)[:, None] - 2 * q @ xo.T + sq[None, :]
        target[start:start + 256] = old_xy[np.argsort(d, axis=1, kind="stable")[:, :k]].mean(1)

    free = np.setdiff1d(np.arange(rows * cols), old_cells)
    if len(free) < n_new:
        grow = math.ceil((n_new - len(free)) / cols)
        log.info("grid full: adding %d row(s) to %d x %d", grow, rows, cols)
        free = np.concatenate([free, np.arange(rows * cols, (rows + grow) * cols)])
        rows += grow
    cost = ((target[:, None, :] - _cell_xy(free, cols)[None, :, :]) ** 2).sum(-1)
    cells = np.concatenate([old_cells, free[linear_sum_assignment(cost)[1]]])

    # Old images that may move: near a new image's target, those that fit their neighbours
    # worst (they lose least by leaving and free the best spots).
    movable = np.zeros(n_old + n_new, dtype=np.bool_)
    movable[n_old:] = True
    budget = int(math.floor(max_moved * n_old))
    if budget:
        gap = np.full(n_old, np.inf)
        for start in range(0, n_new, 256):
            t = target[start:start + 256]
            gap = np.minimum(gap, ((old_xy[:, None, :] - t[None]) ** 2).sum(-1).min(axis=1))
        score = np.where(gap <= REACH_MOVED**2, _misfit(xo, old_cells, rows, cols), -np.inf)
        chosen = np.lexsort((np.arange(n_old), -score))[:budget]
        movable[chosen[np.isfinite(score[chosen])]] = True
    out = refine_mod.refine(np.vstack([old_vectors, new_vectors]), cells, rows, cols,
                            seed=seed, movable=movable, max_passes=PASSES, min_gain=0.0)
    moved = int((out.cells[:n_old] != old_cells).sum())
    log.info("placed %d new images; %d of %d old images moved", n_new, moved, n_old)
    return Placement(out.cells[:n_old], out.cells[n_old:], rows, moved)


@dataclass(frozen=True)
class Added:
    """The rewritten layout, how many images were added, old images moved and rows added."""

    layout: Layout
    added: int
    moved: int
    rows_added: int


def _read_layout(out: Path) -> dict[str, Any]:
    path = out / "layout.json"
    if not path.is_file():
        raise InputError(f"{out}: no layout.json here; build a layout first with tsnegrid build")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["images"], data["grid"]["rows"], data["grid"]["cols"]  # noqa: B018
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a tsnegrid layout ({exc})") from exc
    if data.get("model") in ("coords", "vectors"):
        raise InputError(f"{path}: built from --{data['model']}; adding images needs a layout "
                         "built from the images themselves")
    return dict(data)


def add(sources: Sequence[str | Path], out: str | Path, *, max_moved: float = MAX_MOVED,
        progress: ProgressFn = no_progress) -> Added:
    """Add the images named by ``sources`` to the layout in ``out`` and rewrite its files.

    Old vectors come from the embedding cache by content hash (re-embedded when missing); the
    layout's own settings (model, features, tile, ...) are used throughout.
    """
    from tsnegrid.embed import embed_images, make_embedder
    from tsnegrid.embed.batches import EmbedJob
    from tsnegrid.embed.cache import EmbeddingCache
    from tsnegrid.load import discover, parse_colour
    from tsnegrid.pipeline import DPQ_P, KNN_K, render_and_write

    if not 0 <= max_moved <= 1:
        raise InputError(f"max_moved must be a fraction in [0, 1], got {max_moved}")
    out = Path(out)
    data = _read_layout(out)
    known = {f.name for f in fields(Settings)}
    settings = Settings(**{k: v for k, v in data["settings"].items() if k in known})
    rows, cols = int(data["grid"]["rows"]), int(data["grid"]["cols"])
    old_paths = [str(r["path"]) for r in data["images"]]
    old_cells = np.array([int(r["row"]) * cols + int(r["col"]) for r in data["images"]],
                         dtype=np.int64)
    old_xy = np.array([[r["x"], r["y"]] for r in data["images"]], dtype=np.float64)
    found = discover(sources)
    seen = set(old_paths) | {d["path"] for d in data.get("duplicates", [])}
    new_paths = [p for p in found.paths if str(p) not in seen]
    if not new_paths:
        raise NoImagesError("no new images to add (none found, or all already in the layout)")

    t0 = time.perf_counter()
    embedder = make_embedder(settings.model, settings.cache_dir, settings.threads,
                             settings.features, settings.colour_weight)
    if embedder.model_id != data["model"]:
        raise InputError(f"the layout was embedded with {data['model']}, this install gives "
                         f"{embedder.model_id}; rebuild it with tsnegrid build")
    cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite")
    job = EmbedJob(model=settings.model, cache_dir=settings.cache_dir, threads=settings.threads,
                   batch_size=settings.batch_size, background=parse_colour(settings.background),
                   max_pixels=settings.max_image_pixels, features=settings.features,
                   colour_weight=settings.colour_weight)
    try:
        emb = embed_images([Path(p) for p in old_paths] + new_paths, embedder, cache, job=job,
                           progress=progress)
    finally:
        cache.close()
    lost = [s for s in emb.skipped if s.path in set(old_paths)]
    if lost:
        raise InputError("images of the layout can no longer be read: "
                         + ", ".join(f"{s.path} ({s.reason})" for s in lost[:5]))
    n_old = len(old_paths)
    vecs = emb.vectors.astype(np.float64)
    kept_new = [new_paths[i - n_old] for i in emb.kept[n_old:]]
    timings = {"embed": round(time.perf_counter() - t0, 3)}

    t0 = time.perf_counter()
    progress("place", 0, 1)
    placed = place(vecs[:n_old], old_cells, rows, cols, vecs[n_old:], seed=settings.seed,
                   max_moved=max_moved)
    progress("place", 1, 1)
    timings["place"] = round(time.perf_counter() - t0, 3)
    cells = np.concatenate([placed.old_cells, placed.new_cells])
    # A new image's 2-D coordinate: that of the old image nearest to it on the grid.
    _, nearest = cKDTree(_cell_xy(placed.old_cells, cols)).query(
        _cell_xy(placed.new_cells, cols))
    coords = np.vstack([old_xy, old_xy[np.atleast_1d(nearest)]])
    grid_xy = _cell_xy(cells, cols)
    quality = {"old_images_moved": float(placed.moved),
               f"knn{KNN_K}_preservation": metrics_mod.knn_preservation(vecs, grid_xy, KNN_K),
               f"dpq{DPQ_P}": metrics_mod.dpq(vecs, cells, cols, p=DPQ_P)}
    layout = Layout(paths=tuple(old_paths) + tuple(str(p) for p in kept_new), cells=cells,
                    coords=coords, rows=placed.rows, cols=cols, model_id=embedder.model_id,
                    settings=settings, skipped=tuple(found.skipped) + tuple(emb.skipped),
                    n_found=int(data.get("counts", {}).get("found", n_old)) + len(found.paths),
                    timings=timings, metrics=quality,
                    duplicates={d["path"]: d["duplicate_of"] for d in data.get("duplicates", [])})
    layout = render_and_write(layout, out, progress)
    return Added(layout, len(kept_new), placed.moved, placed.rows - rows)
