"""Embedding: images to vectors, batched, with decoding overlapped with inference and a cache.

``embed_files(paths, EmbedConfig.from_settings(s))`` is the stage as the pipeline runs it: the
configured embedder, the embedding cache and the configured executor. Underneath,
``make_embedder(name)`` resolves ``lite0`` (default), ``pixels`` or a path to an ``.onnx`` model,
and ``embed_images`` returns one vector per readable image and lists the others with their
reason; with a distributed executor, chunks of images are embedded on the cluster's workers.
Where the image model ships a classifier head (lite0), each image's ImageNet concepts come with
its vector, computed from the same cached vector (``tsnegrid.concepts``), so never by inference.
With a tile side in the config (a build's), the decode that feeds the model also makes each
image's tile for the render, kept in the cache beside the vectors (``tsnegrid.tiles``).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from tsnegrid.embed.base import Embedder, cache_key, finish, model_vectors
from tsnegrid.embed.batches import Done, embed_chunk, iter_outcomes
from tsnegrid.embed.cache import EmbeddingCache, stat_key
from tsnegrid.embed.config import EmbedConfig
from tsnegrid.embed.executor import Executor, make_executor
from tsnegrid.errors import ImageError, InputError, Interrupted
from tsnegrid.load import Skipped, open_regular
from tsnegrid.progress import ProgressFn, no_progress
from tsnegrid.settings import Settings
from tsnegrid.tiles import Thumb

if TYPE_CHECKING:
    from tsnegrid.concepts import Concepts

log = logging.getLogger(__name__)

MODELS = ("lite0", "pixels")
CHUNK = 256
HASH_CHUNK = 4096
"""Files hashed (on every core) between two records of their digests."""


def make_embedder(name: str, cache_dir: Path, threads: int = 0, features: str = "semantic",
                  colour_weight: float = Settings.colour_weight) -> Embedder:
    """Build the named embedder: ``lite0``, ``lite0-int8``, ``pixels`` or a path ending in
    ``.onnx``; with
    ``features`` ``colour`` or ``both``, the colour descriptor alone or mixed in
    (see ``tsnegrid.embed.features``)."""
    if features != "semantic":
        from tsnegrid.embed.features import MixedEmbedder, check_features

        check_features(features, colour_weight)
        base = None if features == "colour" else make_embedder(name, cache_dir, threads)
        return MixedEmbedder(base, features, colour_weight)
    if name == "lite0":
        from tsnegrid.embed.lite0 import load_lite0

        return load_lite0(cache_dir, threads)
    if name == "lite0-int8":
        from tsnegrid.embed.lite0 import load_lite0_int8

        return load_lite0_int8(threads)
    if name == "pixels":
        from tsnegrid.embed.pixels import PixelEmbedder

        return PixelEmbedder()
    if name.lower().endswith(".onnx"):
        from tsnegrid.embed.onnx_model import OnnxEmbedder

        return OnnxEmbedder(name, threads=threads)
    raise InputError(f"unknown model {name!r}; choose lite0, lite0-int8, pixels or a path to an "
                     f".onnx file")


def embedder_for(config: EmbedConfig) -> Embedder:
    """The embedder that ``config`` names (model and feature mix)."""
    return make_embedder(config.model, config.cache_dir, config.threads, config.features,
                         config.colour_weight)


@dataclass(frozen=True)
class Embedded:
    """Vectors for the images that could be read, in input order."""

    vectors: NDArray[np.float32]
    kept: NDArray[np.int64]
    skipped: tuple[Skipped, ...]
    n_computed: int
    """How many vectors were computed now (the rest came from the cache)."""
    model_id: str = ""
    """The embedder's id (model, weights and feature mix): what the vectors mean."""
    concepts: Concepts | None = None
    """Row i: the ImageNet concepts of image ``kept[i]``; None when the model has no head."""


def content_digest(path: Path) -> str:
    """sha256 of the file's bytes, streamed; raises ``ImageError`` when the path is not a regular
    file (a device or FIFO is never read), unreadable or empty."""
    with open_regular(path) as f:
        try:
            if os.fstat(f.fileno()).st_size == 0:
                raise ImageError(f"{path}: empty file (0 bytes)")
            return hashlib.file_digest(f, "sha256").hexdigest()
        except OSError as exc:
            raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def file_digests(paths: Sequence[Path], cache: EmbeddingCache | None, threads: int = 0,
                 record: bool = True) -> tuple[dict[int, str], dict[int, Skipped]]:
    """Each readable path's content digest, by index, and the unreadable ones with their
    reason. A file whose stat is the one recorded in the cache with its digest is not read
    again; the others are hashed on ``threads`` threads (0: one per core) and, with
    ``record``, recorded."""
    stats: dict[int, tuple[str, str]] = {}
    for i, p in enumerate(paths):
        try:
            stats[i] = (os.path.abspath(p), stat_key(os.stat(p)))
        except OSError:
            pass  # content_digest names the problem
    known = cache.known_digests(dict(stats.values())) if cache is not None else {}
    digests: dict[int, str] = {}
    skipped: dict[int, Skipped] = {}
    todo: list[int] = []
    for i in range(len(paths)):
        at = stats.get(i)
        if at is not None and at[0] in known:
            digests[i] = known[at[0]]
        else:
            todo.append(i)

    def one(i: int) -> str | ImageError:
        try:
            return content_digest(paths[i])
        except ImageError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        for k in range(0, len(todo), HASH_CHUNK):
            part = todo[k:k + HASH_CHUNK]
            new: dict[str, tuple[str, str]] = {}
            for i, r in zip(part, pool.map(one, part), strict=True):
                if isinstance(r, ImageError):
                    skipped[i] = Skipped(str(paths[i]), _reason(r))
                    continue
                digests[i] = r
                if i in stats:
                    new[stats[i][0]] = (stats[i][1], r)
            if cache is not None and record:
                cache.put_digests(new)
    return dict(sorted(digests.items())), skipped


def _gather(known: dict[str, NDArray[np.float32]], order: list[str]) -> NDArray[np.float32]:
    """Rows of ``known`` in ``order`` as one array, emptying ``known`` as it goes so that the
    vectors are held about once, not twice (they are most of the memory at large N)."""
    if not order:
        return np.zeros((0, 0), np.float32)
    last = {d: row for row, d in enumerate(order)}
    out = np.empty((len(order), len(known[order[0]])), dtype=np.float32)
    for row, d in enumerate(order):
        out[row] = known[d]
        if last[d] == row:
            del known[d]
    return out


def _reason(error: ImageError | str) -> str:
    return str(error).split(": ", 1)[-1]


Group = list[tuple[str, int]]
"""(content digest, index of its first path) of the images embedded together."""


def _results(items: Group, wants: list[bool], paths: Sequence[Path], embedder: Embedder,
             config: EmbedConfig,
             executor: Executor | None) -> Iterator[tuple[Group, Sequence[object]]]:
    """Each group of items with its results, as groups finish: chunks of ``CHUNK`` images on a
    distributed executor (vectors only), inference batches in this process. ``wants[k]``: item
    k needs its vector (else only its tile)."""
    if executor is not None and executor.distributed:
        chunks = [items[k:k + CHUNK] for k in range(0, len(items), CHUNK)]
        done = executor.map(embed_chunk, [[paths[i] for _, i in c] for c in chunks], config)
        try:
            for n, res in done:
                yield chunks[n], res
        finally:
            close_iterator(done)
        return
    size = config.batch_size
    batches = iter_outcomes([paths[i] for _, i in items], embedder, config, wants)
    try:
        for k, batch in enumerate(batches):
            yield items[k * size:(k + 1) * size], batch
    finally:
        close_iterator(batches)


class _Work:
    """Vectors as they are computed, saved to the cache every ``CHUNK`` of them (and, on Ctrl-C,
    at once), so an interrupted or failed run keeps what it finished."""

    def __init__(self, model_id: str, cache: EmbeddingCache | None, progress: ProgressFn,
                 files: Counter[str], total: int, tiles: str = "") -> None:
        """``files``: how many of the paths have each digest to compute; ``total``: all the
        paths, so the bar counts images (cached and identical ones included), not vectors;
        ``tiles``: the key of the tile spec made (kept in the cache, never in memory)."""
        self.model_id, self.cache, self.progress = model_id, cache, progress
        self.files, self.total, self.tiles = files, total, tiles
        self.vectors: dict[str, NDArray[np.float32]] = {}
        self.unsaved: dict[str, NDArray[np.float32]] = {}
        self.thumbs: dict[str, Thumb] = {}
        self.failed: dict[str, str] = {}
        self.computed = 0
        self.done = total - sum(files.values())

    def run(self, groups: Iterator[tuple[Group, Sequence[object]]]) -> None:
        try:
            for group, res in groups:
                for (d, _), r in zip(group, res, strict=True):
                    if isinstance(r, (ImageError, str)):
                        self.failed[d] = _reason(r)
                        continue
                    if isinstance(r, Done):
                        if r.thumb is not None:
                            self.thumbs[d] = r.thumb
                        r = r.vector
                    if r is not None:
                        self.vectors[d] = self.unsaved[d] = np.asarray(r, dtype=np.float32)
                        self.computed += 1
                self.done += sum(self.files[d] for d, _ in group)
                if len(self.unsaved) + len(self.thumbs) >= CHUNK:
                    self.save()
                self.progress("embed", self.done, self.total)
        finally:  # also on a lost cluster or Ctrl-C: keep what is done
            close_iterator(groups)
            self.save()

    def save(self) -> None:
        if self.cache is not None and self.unsaved:
            self.cache.put_many(self.model_id, self.unsaved)
        if self.cache is not None and self.thumbs:
            self.cache.put_tiles(self.tiles, self.thumbs)
        self.unsaved, self.thumbs = {}, {}


def close_iterator(it: Iterator[object]) -> None:
    """Close a generator now (its ``finally`` runs here, not whenever it is collected)."""
    close = getattr(it, "close", None)
    if close is not None:
        close()


def embed_images(
    paths: Sequence[Path],
    embedder: Embedder,
    cache: EmbeddingCache | None = None,
    *,
    config: EmbedConfig | None = None,
    executor: Executor | None = None,
    progress: ProgressFn = no_progress,
) -> Embedded:
    """Embed every readable image; unreadable ones are skipped with their reason.

    Identical files are embedded once. Vectors (and, with a tile side in ``config``, the
    tiles) reach the cache chunk by chunk, so an interrupted run resumes where it stopped; an
    image whose vector is cached but not its tile is decoded for the tile alone.
    """
    config = config or EmbedConfig(model=embedder.model_id, cache_dir=Path("."))
    # a build's files are recorded (its render finds their tiles by them); the service's
    # uploads, embedded from temporary files, are not
    digests, skipped = file_digests(paths, cache, config.threads, record=config.tile > 0)
    key = cache_key(embedder)
    known = cache.get_many(key, digests.values()) if cache else {}
    distributed = executor is not None and executor.distributed  # its render makes the tiles
    spec = config.tile_spec if cache is not None and cache.writable and not distributed else None
    if spec is None:
        config = replace(config, tile=0)
    tiled = cache.tiles_present(spec.key, digests.values()) if cache and spec else set()
    todo: dict[str, tuple[int, bool]] = {}  # digest: (its first path, whether it needs a vector)
    for i, d in digests.items():
        if d not in todo and (d not in known or spec is not None and d not in tiled):
            todo[d] = (i, d not in known)
    distinct = len(set(digests.values()))
    n_vectors = sum(w for _, w in todo.values())
    log.info("%d readable files, %d distinct, %d cached, %d to embed, %d more to tile",
             len(digests), distinct, distinct - n_vectors, n_vectors, len(todo) - n_vectors)
    items = [(d, i) for d, (i, _) in todo.items()]
    wants = [w for _, w in todo.values()]
    work = _Work(key, cache, progress, Counter(d for d in digests.values() if d in todo),
                 len(paths), spec.key if spec is not None else "")
    progress("embed", work.done, work.total)
    try:
        work.run(_results(items, wants, paths, embedder, config, executor))
    except KeyboardInterrupt:
        where = f"are saved in {cache.path}" if cache else "are lost (no cache)"
        raise Interrupted(f"{work.computed:,} of {n_vectors:,} vectors to compute were done "
                          f"and {where}; the same command resumes from there") from None
    known.update(work.vectors)
    failed = work.failed
    for i, d in digests.items():
        if d in failed:
            skipped[i] = Skipped(str(paths[i]), failed[d])
    kept = [i for i in range(len(paths)) if i not in skipped]
    vectors = _gather(known, [digests[i] for i in kept])
    concepts = _concepts(embedder, vectors, config.concepts)
    vectors = finish(embedder, vectors)
    ordered = tuple(skipped[i] for i in sorted(skipped))
    return Embedded(vectors, np.asarray(kept, dtype=np.int64), ordered, work.computed,
                    embedder.model_id, concepts)


def _concepts(embedder: Embedder, stored: NDArray[np.float32], top: int) -> Concepts | None:
    """The concepts of the stored rows, from the image model's own part of them."""
    own = model_vectors(embedder, stored) if top and len(stored) else None
    if own is None:
        return None
    from tsnegrid.concepts import classify

    return classify(own[1], own[0], top)


def embed_files(paths: Sequence[Path], config: EmbedConfig,
                progress: ProgressFn = no_progress) -> Embedded:
    """The embed stage: ``config``'s embedder over ``paths``, with the embedding cache in its
    cache folder, on its executor (this process, a local or a remote Dask cluster)."""
    embedder = embedder_for(config)
    cache = EmbeddingCache(config.cache_dir / "embeddings.sqlite")
    executor = make_executor(config.scheduler, config.workers, config.scheduler_timeout)
    try:
        return embed_images(paths, embedder, cache, config=config, executor=executor,
                            progress=progress)
    finally:
        cache.close()
        executor.close()
