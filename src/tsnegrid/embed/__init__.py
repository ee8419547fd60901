"""Embedding: images to vectors, batched, with decoding overlapped with inference and a cache.

``make_embedder(name)`` resolves ``lite0`` (default), ``pixels`` or a path to an ``.onnx`` model.
``embed_images`` returns one vector per readable image and lists the others with their reason.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tsnegrid.embed.base import Embedder
from tsnegrid.embed.cache import EmbeddingCache
from tsnegrid.errors import ImageError, InputError
from tsnegrid.load import Skipped, open_image
from tsnegrid.progress import ProgressFn, no_progress

log = logging.getLogger(__name__)

MODELS = ("lite0", "pixels")


def make_embedder(name: str, cache_dir: Path, threads: int = 0) -> Embedder:
    """Build the named embedder: ``lite0``, ``pixels`` or a path ending in ``.onnx``."""
    if name == "lite0":
        from tsnegrid.embed.lite0 import load_lite0

        return load_lite0(cache_dir, threads)
    if name == "pixels":
        from tsnegrid.embed.pixels import PixelEmbedder

        return PixelEmbedder()
    if name.lower().endswith(".onnx"):
        from tsnegrid.embed.onnx_model import OnnxEmbedder

        return OnnxEmbedder(name, threads=threads)
    raise InputError(f"unknown model {name!r}; choose lite0, pixels or a path to an .onnx file")


@dataclass(frozen=True)
class Embedded:
    """Vectors for the images that could be read, in input order."""

    vectors: NDArray[np.float32]
    kept: NDArray[np.int64]
    skipped: tuple[Skipped, ...]
    n_computed: int
    """How many vectors were computed now (the rest came from the cache)."""


def content_digest(path: Path) -> str:
    """sha256 of the file's bytes; raises ``ImageError`` when unreadable or empty."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not data:
        raise ImageError(f"{path}: empty file (0 bytes)")
    return hashlib.sha256(data).hexdigest()


def _decode(path: Path, embedder: Embedder, background: tuple[int, int, int],
            max_pixels: int) -> NDArray[np.float32] | ImageError:
    try:
        img = open_image(path, min_side=embedder.input_size, background=background,
                         max_pixels=max_pixels)
        return embedder.preprocess(img)
    except ImageError as exc:
        return exc


def embed_images(
    paths: Sequence[Path],
    embedder: Embedder,
    cache: EmbeddingCache | None = None,
    *,
    batch_size: int = 32,
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = 178_956_970,
    progress: ProgressFn = no_progress,
) -> Embedded:
    """Embed every readable image; unreadable ones are skipped with their reason."""
    skipped: dict[int, Skipped] = {}
    digests: dict[int, str] = {}
    for i, p in enumerate(paths):
        try:
            digests[i] = content_digest(p)
        except ImageError as exc:
            skipped[i] = Skipped(str(p), str(exc).split(": ", 1)[-1])
    known = cache.get_many(embedder.model_id, digests.values()) if cache else {}
    todo: dict[str, int] = {}
    for i, d in digests.items():
        if d not in known and d not in todo:
            todo[d] = i
    distinct = len(set(digests.values()))
    log.info("%d readable files, %d distinct, %d cached, %d to embed", len(digests), distinct,
             distinct - len(todo), len(todo))
    batches = [list(todo.items())[k:k + batch_size] for k in range(0, len(todo), batch_size)]
    total, done, computed = len(todo), 0, 0
    progress("embed", 0, total)
    with ThreadPoolExecutor(max_workers=2) as pool:

        def submit(batch: list[tuple[str, int]]) -> list[Future[NDArray[np.float32] | ImageError]]:
            return [pool.submit(_decode, paths[i], embedder, background, max_pixels)
                    for _, i in batch]

        pending = submit(batches[0]) if batches else []
        for b, batch in enumerate(batches):
            decoded = [f.result() for f in pending]
            pending = submit(batches[b + 1]) if b + 1 < len(batches) else []
            arrays, ok = [], []
            for (d, i), item in zip(batch, decoded, strict=True):
                if isinstance(item, ImageError):
                    skipped[i] = Skipped(str(paths[i]), str(item).split(": ", 1)[-1])
                else:
                    arrays.append(item)
                    ok.append(d)
            if arrays:
                vecs = embedder.embed_batch(np.stack(arrays))
                fresh = dict(zip(ok, vecs, strict=True))
                computed += len(fresh)
                known.update(fresh)
                if cache:
                    cache.put_many(embedder.model_id, fresh)
            done += len(batch)
            progress("embed", done, total)
    bad_digests = {digests[i] for i in skipped if i in digests}
    kept = [i for i in range(len(paths)) if i not in skipped and digests[i] not in bad_digests]
    for i in range(len(paths)):
        if i not in skipped and i in digests and digests[i] in bad_digests:
            skipped[i] = Skipped(str(paths[i]), "cannot decode (same content as a skipped file)")
    vectors = (np.stack([known[digests[i]] for i in kept]).astype(np.float32) if kept
               else np.zeros((0, 0), np.float32))
    ordered = tuple(skipped[i] for i in sorted(skipped))
    return Embedded(vectors, np.asarray(kept, dtype=np.int64), ordered, computed)
