"""The whole job: sources in, ``Layout`` (and, given an output folder, its files) out.

Each stage is its own module and usable alone; this module only composes them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tsnegrid import assign as assign_mod
from tsnegrid import dedupe as dedupe_mod
from tsnegrid import grid as grid_mod
from tsnegrid import metrics as metrics_mod
from tsnegrid import refine as refine_mod
from tsnegrid.embed import embed_images, make_embedder
from tsnegrid.embed.batches import EmbedJob
from tsnegrid.embed.cache import EmbeddingCache
from tsnegrid.errors import InputError, NoImagesError, OutputTooLargeError
from tsnegrid.executor import make_executor
from tsnegrid.layout import Layout
from tsnegrid.load import Skipped, discover, parse_colour
from tsnegrid.metadata import Metadata, load_metadata
from tsnegrid.output import write_outputs
from tsnegrid.progress import ProgressFn, no_progress
from tsnegrid.pyramid import write_dzi
from tsnegrid.reduce import reduce
from tsnegrid.render import check_size, render_mosaic
from tsnegrid.settings import Settings
from tsnegrid.viewer import needs_pyramid, write_viewer

log = logging.getLogger(__name__)

DPQ_P = 16
KNN_K = 10


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    timings[stage] = round(time.perf_counter() - t0, 3)


def _load_array(path: Path | str, what: str, n: int, width: int | None) -> NDArray[np.float64]:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{what} {path}: cannot read as a .npy array ({exc})") from exc
    if arr.ndim != 2 or arr.shape[0] != n or (width is not None and arr.shape[1] != width):
        want = f"{n} x {width}" if width else f"{n} x D"
        raise InputError(f"{what} {path}: expected shape {want} (one row per listed image), "
                         f"got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        raise InputError(f"{what} {path}: values must be finite numbers")
    # float32 stays float32: at 1M x 1280 a float64 copy alone would be 10 GB.
    return arr if arr.dtype == np.float32 else arr.astype(np.float64)


def precheck(n: int, settings: Settings) -> tuple[int, int] | None:
    """Validate the grid string and the output size before any heavy work."""
    shape = grid_mod.parse_grid(settings.grid)
    rows, cols = shape if shape else grid_mod.auto_shape(max(n, 1))
    if not settings.tiles:  # with --tiles an oversized mosaic is skipped, not refused
        check_size(rows, cols, settings.tile, settings.max_pixels, settings.format)
    return shape


def build(
    sources: Sequence[str | Path],
    out: str | Path | None = None,
    settings: Settings | None = None,
    *,
    vectors: str | Path | None = None,
    coords: str | Path | None = None,
    metadata: str | Path | Metadata | None = None,
    progress: ProgressFn = no_progress,
) -> Layout:
    """Lay out the images named by ``sources``; with ``out``, also render and write the files.

    ``vectors`` (N x D .npy) or ``coords`` (N x 2 .npy) replace the embedding or the reduction;
    their rows follow the discovered image order. ``metadata`` (a CSV/JSON file) feeds the
    viewer's hover and colour-by-field.
    """
    settings = settings or Settings()
    meta = load_metadata(metadata) if isinstance(metadata, (str, Path)) else metadata
    timings: dict[str, float] = {}
    background = parse_colour(settings.background)
    with _timed(timings, "load"):
        progress("load", 0, 1)
        found = discover(sources)
        progress("load", 1, 1)
    paths = list(found.paths)
    skipped: list[Skipped] = list(found.skipped)
    if not paths:
        raise NoImagesError("no image files found in " + ", ".join(map(str, sources)))
    shape = precheck(len(paths), settings)

    model_id = settings.model
    vecs: NDArray[np.floating] | None = None
    pts: NDArray[np.float64] | None = None
    if coords is not None:
        pts = _load_array(coords, "--coords", len(paths), 2)
        model_id = "coords"
    elif vectors is not None:
        vecs = _load_array(vectors, "--vectors", len(paths), None)
        model_id = "vectors"
    else:
        with _timed(timings, "embed"):
            embedder = make_embedder(settings.model, settings.cache_dir, settings.threads,
                                     settings.features, settings.colour_weight)
            cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite")
            job = EmbedJob(model=settings.model, cache_dir=settings.cache_dir,
                           threads=settings.threads, batch_size=settings.batch_size,
                           background=background, max_pixels=settings.max_image_pixels,
                           features=settings.features, colour_weight=settings.colour_weight)
            executor = make_executor(settings.scheduler, settings.workers)
            try:
                emb = embed_images(paths, embedder, cache, job=job, executor=executor,
                                   progress=progress)
            finally:
                cache.close()
                executor.close()
        model_id = embedder.model_id
        skipped.extend(emb.skipped)
        paths = [paths[i] for i in emb.kept]
        vecs = emb.vectors
        if not paths:
            raise NoImagesError("none of the images could be read; see the skipped files:\n"
                                + "\n".join(f"  {s.path}: {s.reason}" for s in skipped))

    duplicates: dict[str, str] = {}
    if settings.dedupe > 0:
        if vecs is None:
            raise InputError("--dedupe compares embeddings; it cannot be used with --coords")
        rep = dedupe_mod.find_duplicates(vecs, settings.dedupe, settings.seed)
        keep = rep == np.arange(len(rep))
        duplicates = {str(paths[i]): str(paths[rep[i]]) for i in np.flatnonzero(~keep)}
        paths = [p for p, k in zip(paths, keep, strict=True) if k]
        vecs = vecs[keep]

    n = len(paths)
    if pts is None:
        assert vecs is not None
        with _timed(timings, "reduce"):
            progress("reduce", 0, 1)
            if n == 1 or not np.ptp(vecs, axis=0).any():
                # One image, or images that all look the same: every arrangement is equally
                # good (and reducers refuse such input), so all points sit at one spot.
                log.info("all %d vectors are identical; skipping the reduction", n)
                pts = np.zeros((n, 2))
            else:
                pts = reduce(vecs, method=settings.reducer, seed=settings.seed)
            progress("reduce", 1, 1)

    rows, cols = shape if shape else grid_mod.auto_shape(n, grid_mod.cloud_aspect(pts))
    grid_mod.check_capacity(n, rows, cols)
    if not settings.tiles:
        check_size(rows, cols, settings.tile, settings.max_pixels, settings.format)
    with _timed(timings, "assign"):
        progress("assign", 0, 1)
        fitted = grid_mod.fit_to_grid(pts, rows, cols)
        cells = assign_mod.assign(fitted, rows, cols, method=settings.assign)
        progress("assign", 1, 1)
    if vecs is not None and refine_mod.resolve_refine(settings.refine, rows * cols):
        with _timed(timings, "refine"):
            progress("refine", 0, 1)
            cells = refine_mod.refine(vecs, cells, rows, cols, seed=settings.seed).cells
            progress("refine", 1, 1)

    with _timed(timings, "metrics"):
        quality = metrics_mod.displacement(fitted, cells, cols)
        reference = vecs if vecs is not None else pts
        grid_xy = metrics_mod.cell_positions(cells, cols)
        quality[f"knn{KNN_K}_preservation"] = metrics_mod.knn_preservation(reference, grid_xy,
                                                                           KNN_K)
        quality[f"dpq{DPQ_P}"] = metrics_mod.dpq(reference, cells, cols, p=DPQ_P)

    layout = Layout(paths=tuple(str(p) for p in paths), cells=cells, coords=pts, rows=rows,
                    cols=cols, model_id=model_id, settings=settings, skipped=tuple(skipped),
                    n_found=len(found.paths), timings=timings, metrics=quality,
                    duplicates=duplicates)
    if out is not None:
        layout = render_and_write(layout, Path(out), progress, metadata=meta)
    return layout


def render_and_write(layout: Layout, out: Path, progress: ProgressFn = no_progress, *,
                     metadata: Metadata | Mapping[str, Mapping[str, object]] | None = None
                     ) -> Layout:
    """Render the mosaic (and, with --tiles or a large --html grid, the DZI pyramid) and write
    every output file; render failures join ``skipped``."""
    s = layout.settings
    paths = [Path(p) for p in layout.paths]
    background = parse_colour(s.background)
    timings = dict(layout.timings)
    mosaic: Image.Image | None = None
    failed: list[Skipped] = []
    try:
        check_size(layout.rows, layout.cols, s.tile, s.max_pixels, s.format)
        fits = True
    except OutputTooLargeError as exc:
        if not s.tiles:
            raise
        fits = False
        log.info("skipping the single mosaic, writing only the pyramid: %s", exc)
    if fits:
        t0 = time.perf_counter()
        mosaic, failed = render_mosaic(paths, layout.cells, layout.rows, layout.cols,
                                       tile=s.tile, fit=s.fit, background=background,
                                       max_pixels=s.max_pixels,
                                       max_image_pixels=s.max_image_pixels, progress=progress)
        timings["render"] = round(time.perf_counter() - t0, 3)
    pyramid = s.tiles or (s.html and needs_pyramid(layout.rows, layout.cols, s.tile))
    if pyramid:
        t0 = time.perf_counter()
        written = write_dzi(paths, layout.cells, layout.rows, layout.cols, out, tile=s.tile,
                            fit=s.fit, background=background, fmt=s.format,
                            max_image_pixels=s.max_image_pixels, progress=progress)
        timings["pyramid"] = round(time.perf_counter() - t0, 3)
        failed = failed if mosaic is not None else list(written.failed)
    layout = replace(layout, timings=timings, skipped=layout.skipped + tuple(failed))
    write_outputs(layout, out, mosaic)
    if s.html:
        write_viewer(layout, out, metadata=metadata, pyramid=pyramid,
                     title=f"tsnegrid: {out.resolve().name}")
    return layout
