"""The whole job: sources in, ``Layout`` (and, given an output folder, its files) out.

Each stage is its own package with its own small config built from ``Settings``, and usable
alone: load -> embed -> reduce -> arrange -> metrics -> render. This module only composes them:
``build`` makes a layout from scratch, ``add`` places new images into an existing one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from tsnegrid import metrics
from tsnegrid.arrange import ArrangeConfig, arrange, grid_shape
from tsnegrid.arrange.grid import auto_shape
from tsnegrid.concepts import Concepts
from tsnegrid.destination import check_out_dir
from tsnegrid.embed import EmbedConfig, Embedded, embed_files
from tsnegrid.embed.vectors import concepts_file, read_concepts
from tsnegrid.errors import InputError, NoImagesError
from tsnegrid.layout import Layout
from tsnegrid.load import Skipped, discover
from tsnegrid.metadata import Metadata, load_metadata
from tsnegrid.neighbors import similar_images
from tsnegrid.output import write_outputs
from tsnegrid.progress import ProgressFn, no_progress
from tsnegrid.publish import locked, staged
from tsnegrid.reduce import ReduceConfig, reduce_points
from tsnegrid.regions import Regions, RegionsConfig, find_regions, naming_for
from tsnegrid.render import RenderConfig, render_outputs
from tsnegrid.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")


def _timed(timings: dict[str, float], stage: str, fn: Callable[..., T], *args: Any,
           **kwargs: Any) -> T:
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    timings[stage] = round(time.perf_counter() - t0, 3)
    return result


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
    """Validate the grid string and the output size (of the given grid, or of the square one an
    automatic grid would be near) before any heavy work; the given grid, or None for auto."""
    shape = ArrangeConfig.from_settings(settings).shape
    RenderConfig.from_settings(settings).check_size(*(shape or auto_shape(max(n, 1))))
    if settings.labels and (settings.names == "none" or settings.names == "concepts"
                            and not has_concepts(settings)):
        raise InputError("--labels writes the names of regions: with --names none there are "
                         "none, and names from concepts need --model lite0 with --features "
                         "semantic or both and --concepts above 0")
    return shape


def check_names(settings: Settings, meta: Metadata | None) -> None:
    """A ``--names`` metadata field must be a field of the ``--metadata`` file (checked before
    any work)."""
    from tsnegrid.regions.naming import check_choice

    check_choice(settings.names, None if meta is None else meta.fields)


def has_concepts(settings: Settings) -> bool:
    """Whether a build with these settings gets concepts (and so named regions)."""
    return settings.model == "lite0" and settings.features != "colour" and settings.concepts > 0


def _embedded(paths: list[Path], settings: Settings, progress: ProgressFn,
              timings: dict[str, float]) -> Embedded:
    emb = _timed(timings, "embed", embed_files, paths,
                 EmbedConfig.from_settings(settings, tiles=True), progress)
    if not len(emb.kept):
        raise NoImagesError("none of the images could be read; see the skipped files:\n"
                            + "\n".join(f"  {s.path}: {s.reason}" for s in emb.skipped))
    return emb


def _dedupe(vecs: NDArray[np.floating], paths: list[Path], threshold: float, seed: int,
            concepts: Concepts | None) -> tuple[NDArray[np.floating], list[Path],
                                                dict[str, str], Concepts | None]:
    """Keep one image of each near-duplicate group; the others map to the one they join."""
    from tsnegrid.embed.dedupe import find_duplicates

    rep = find_duplicates(vecs, threshold, seed)
    keep = rep == np.arange(len(rep))
    duplicates = {str(paths[i]): str(paths[rep[i]]) for i in np.flatnonzero(~keep)}
    return (vecs[keep], [p for p, k in zip(paths, keep, strict=True) if k], duplicates,
            None if concepts is None else concepts.take(keep))


def _regions(cells: NDArray[np.int64], rows: int, cols: int, concepts: Concepts | None,
             vectors: NDArray[np.floating] | None, s: Settings, timings: dict[str, float],
             paths: Sequence[str | Path], meta: Metadata | None = None) -> Regions | None:
    """The named regions of the placed grid (``--names``); None with ``--names none``, or
    without concepts and without the user's words."""
    if s.names == "none":
        return None
    naming = naming_for(s.names, [str(p) for p in paths],
                        meta.join([str(p) for p in paths]) if meta is not None else None)
    if concepts is None and not naming.words or concepts is None and vectors is None:
        return None
    regions = _timed(timings, "regions", find_regions, cells, rows, cols, concepts,
                     RegionsConfig.from_settings(s), vectors, naming)
    if concepts is None and not any(r.name for r in (*regions.regions, *regions.coarse)):
        return None  # the user's words named nothing, and there are no concepts to try
    return regions


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
    s = settings or Settings()
    if out is not None:
        check_out_dir(Path(out))
    meta = load_metadata(metadata) if isinstance(metadata, (str, Path)) else metadata
    check_names(s, meta)
    if out is None:
        return _layout(sources, s, vectors, coords, progress, meta)
    with locked(Path(out)):  # one build at a time per folder, from before the work
        return _write(_layout(sources, s, vectors, coords, progress, meta), Path(out), s,
                      progress, meta)


def _layout(sources: Sequence[str | Path], s: Settings, vectors: str | Path | None,
            coords: str | Path | None, progress: ProgressFn,
            meta: Metadata | None = None) -> Layout:
    """``build`` without the files."""
    timings: dict[str, float] = {}

    progress("load", 0, 1)
    found = _timed(timings, "load", discover, sources)
    progress("load", 1, 1)
    paths, skipped = list(found.paths), list(found.skipped)
    if not paths:
        raise NoImagesError("no image files found in " + ", ".join(map(str, sources)))
    shape = precheck(len(paths), s)

    vecs: NDArray[np.floating] | None = None
    pts: NDArray[np.float64] | None = None
    concepts: Concepts | None = None
    if s.labels and s.names == "concepts" and (coords is not None or vectors is not None
                                               and not concepts_file(Path(vectors)).is_file()):
        raise InputError("--labels --names concepts needs concepts, which a --coords build, or "
                         "a --vectors build without the concepts file tsnegrid embed writes "
                         "beside the vectors, has none of; build from the images")
    if coords is not None:
        pts, model_id = _load_array(coords, "--coords", len(paths), 2), "coords"
    elif vectors is not None:
        vecs, model_id = _load_array(vectors, "--vectors", len(paths), None), "vectors"
        concepts = read_concepts(Path(vectors), len(paths))
    else:
        emb = _embedded(paths, s, progress, timings)
        vecs, model_id, concepts = emb.vectors, emb.model_id, emb.concepts
        paths, skipped = [paths[i] for i in emb.kept], skipped + list(emb.skipped)

    duplicates: dict[str, str] = {}
    if s.dedupe > 0:
        if vecs is None:
            raise InputError("--dedupe compares embeddings; it cannot be used with --coords")
        vecs, paths, duplicates, concepts = _dedupe(vecs, paths, s.dedupe, s.seed, concepts)

    if pts is None:
        assert vecs is not None
        progress("reduce", 0, 1)
        pts = _timed(timings, "reduce", reduce_points, vecs, ReduceConfig.from_settings(s))
        progress("reduce", 1, 1)

    arrange_config = ArrangeConfig.from_settings(s)
    rows, cols = grid_shape(pts, arrange_config)
    if shape is None:  # the automatic grid follows the cloud's aspect: check its final size
        RenderConfig.from_settings(s).check_size(rows, cols)
    placed = arrange(pts, vecs, arrange_config, shape=(rows, cols), progress=progress)
    timings.update(placed.timings)
    regions = _regions(placed.cells, rows, cols, concepts, vecs if vecs is not None else pts,
                       s, timings, paths, meta)
    space = vecs if vecs is not None else pts
    quality = _timed(timings, "metrics", metrics.grid_quality, space, placed.cells, cols,
                     placed.fitted)
    # "More like this" for the viewer (its only user, so only with --html: at 100k images the
    # search takes minutes): in the embedding, or in the given 2-D points.
    similar = _timed(timings, "neighbors", similar_images, space, seed=s.seed) if s.html else None

    return Layout(paths=tuple(str(p) for p in paths), cells=placed.cells, coords=pts,
                  rows=rows, cols=cols, model_id=model_id, settings=s, skipped=tuple(skipped),
                  n_found=found.found, timings=timings, metrics=quality,
                  duplicates=duplicates, neighbors=similar,
                  neighbors_from="" if similar is None else
                  "vectors" if vecs is not None else "coords", concepts=concepts,
                  regions=regions)


def _write(layout: Layout, out: Path, s: Settings, progress: ProgressFn,
           meta: Metadata | None = None) -> Layout:
    """Draw the images, then write the text files (which list what failed to draw), all into a
    staging folder that is then published as one set (``tsnegrid.publish``)."""
    from tsnegrid.embed.thumbs import cached_tiles

    with staged(out) as stage, cached_tiles(s) as tiles:  # the embed pass's tiles
        layout = render_outputs(layout, stage, RenderConfig.from_settings(s), progress,
                                metadata=meta, home=out, tiles=tiles)
        write_outputs(layout, stage)
    return layout


@dataclass(frozen=True)
class Added:
    """The rewritten layout, how many images were added, old images moved and rows added, and
    what was skipped."""

    layout: Layout
    added: int
    moved: int
    rows_added: int
    skipped: tuple[Skipped, ...] = ()
    """The files this addition left out (the layout's ``skipped`` also lists earlier ones)."""


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


def _names_for_add(s: Settings) -> Settings:
    """``add`` has no metadata file: a layout named from a metadata field is named again
    from the images themselves (``--names auto``)."""
    from dataclasses import replace

    from tsnegrid.regions.naming import NAME_SOURCES

    return s if s.names in NAME_SOURCES else replace(s, names="auto")


def add(sources: Sequence[str | Path], out: str | Path, *, max_moved: float | None = None,
        progress: ProgressFn = no_progress) -> Added:
    """Add the images named by ``sources`` to the layout in ``out`` and rewrite its files.

    Old vectors come from the embedding cache by content hash (re-embedded when missing); the
    layout's own settings (model, features, tile, ...) are used throughout. At most
    ``max_moved`` (default ``tsnegrid.arrange.incremental.MAX_MOVED``) of the old images move.
    """
    from tsnegrid.arrange.incremental import MAX_MOVED

    max_moved = MAX_MOVED if max_moved is None else max_moved
    if not 0 <= max_moved <= 1:
        raise InputError(f"max_moved must be a fraction in [0, 1], got {max_moved}")
    out = Path(out)
    _read_layout(out)  # refuse a folder without a layout before making anything
    check_out_dir(out)
    with locked(out):  # and read it again under the lock: a build may have replaced it
        return _add(sources, out, _read_layout(out), max_moved, progress)


def _add(sources: Sequence[str | Path], out: Path, data: dict[str, Any], max_moved: float,
         progress: ProgressFn) -> Added:
    """``add`` with the folder locked and its layout read."""
    from scipy.spatial import cKDTree

    from tsnegrid.arrange.incremental import cell_xy, place

    known = {f.name for f in fields(Settings)}
    s = Settings(**{k: v for k, v in data["settings"].items() if k in known})
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

    timings: dict[str, float] = {}
    emb = _timed(timings, "embed", embed_files, [Path(p) for p in old_paths] + new_paths,
                 EmbedConfig.from_settings(s, tiles=True), progress)
    if emb.model_id != data["model"]:
        raise InputError(f"the layout was embedded with {data['model']}, this install gives "
                         f"{emb.model_id}; rebuild it with tsnegrid build")
    lost = [s for s in emb.skipped if s.path in set(old_paths)]
    if lost:
        raise InputError("images of the layout can no longer be read: "
                         + ", ".join(f"{s.path} ({s.reason})" for s in lost[:5]))
    n_old = len(old_paths)
    vecs = emb.vectors.astype(np.float64)
    kept_new = [new_paths[i - n_old] for i in emb.kept[n_old:]]

    progress("place", 0, 1)
    placed = _timed(timings, "place", place, vecs[:n_old], old_cells, rows, cols, vecs[n_old:],
                    seed=s.seed, max_moved=max_moved)
    progress("place", 1, 1)
    cells = np.concatenate([placed.old_cells, placed.new_cells])
    # A new image's 2-D coordinate: that of the old image nearest to it on the grid.
    _, nearest = cKDTree(cell_xy(placed.old_cells, cols)).query(
        cell_xy(placed.new_cells, cols))
    coords = np.vstack([old_xy, old_xy[np.atleast_1d(nearest)]])
    quality = {"old_images_moved": float(placed.moved),
               **metrics.grid_quality(vecs, cells, cols)}
    similar = _timed(timings, "neighbors", similar_images, vecs, seed=s.seed) if s.html else None
    # every count carries over: found = placed + skipped + duplicates, old and new together
    skipped: tuple[Skipped, ...] = (
        tuple(Skipped(str(k["path"]), str(k["reason"])) for k in data.get("skipped", []))
        + tuple(found.skipped) + tuple(emb.skipped))
    layout = Layout(paths=tuple(old_paths) + tuple(str(p) for p in kept_new), cells=cells,
                    coords=coords, rows=placed.rows, cols=cols, model_id=emb.model_id,
                    settings=s, skipped=skipped,
                    n_found=int(data.get("counts", {}).get("found", n_old)) + len(new_paths)
                    + len(found.skipped),
                    timings=timings, metrics=quality,
                    duplicates={d["path"]: d["duplicate_of"] for d in data.get("duplicates", [])},
                    neighbors=similar, neighbors_from="vectors" if similar is not None else "",
                    concepts=emb.concepts,
                    regions=_regions(cells, placed.rows, cols, emb.concepts, vecs,
                                     _names_for_add(s), timings,
                                     list(old_paths) + [str(p) for p in kept_new]))
    layout = _write(layout, out, s, progress)
    return Added(layout, len(kept_new), placed.moved, placed.rows - rows,
                 tuple(found.skipped) + tuple(emb.skipped))
