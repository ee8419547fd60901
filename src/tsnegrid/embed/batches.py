"""Batched inference with decoding overlapped: the part of embedding that runs on a worker."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tsnegrid.embed.base import Embedder
from tsnegrid.embed.config import EmbedConfig
from tsnegrid.errors import ImageError
from tsnegrid.load import open_image
from tsnegrid.progress import ProgressFn, no_progress

Result = NDArray[np.float32] | ImageError


def _decode(path: Path, embedder: Embedder, config: EmbedConfig) -> Result:
    try:
        img = open_image(path, min_side=embedder.input_size, background=config.background,
                         max_pixels=config.max_pixels)
        return embedder.preprocess(img)
    except ImageError as exc:
        return exc


def iter_vectors(paths: Sequence[Path], embedder: Embedder,
                 config: EmbedConfig) -> Iterator[list[Result]]:
    """One list per batch: a vector (or the decoding error) per path; the next batch decodes
    during inference. Closing the iterator (or Ctrl-C) drops the decodes not yet started."""
    size = config.batch_size
    batches = [list(paths[k:k + size]) for k in range(0, len(paths), size)]
    pool = ThreadPoolExecutor(max_workers=2)
    try:

        def submit(batch: list[Path]) -> list[Future[Result]]:
            return [pool.submit(_decode, p, embedder, config) for p in batch]

        pending = submit(batches[0]) if batches else []
        for b in range(len(batches)):
            decoded = [f.result() for f in pending]
            pending = submit(batches[b + 1]) if b + 1 < len(batches) else []
            good = [i for i, item in enumerate(decoded) if not isinstance(item, ImageError)]
            if good:
                arrays = [item for item in decoded if not isinstance(item, ImageError)]
                vecs = embedder.embed_batch(np.stack(arrays))
                for i, v in zip(good, vecs, strict=True):
                    decoded[i] = v
            yield decoded
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def compute_vectors(paths: Sequence[Path], embedder: Embedder, config: EmbedConfig,
                    progress: ProgressFn = no_progress) -> list[Result]:
    """One vector (or the decoding error) per path, in order."""
    out: list[Result] = []
    for batch in iter_vectors(paths, embedder, config):
        out.extend(batch)
        progress("embed", len(out), len(paths))
    return out


@lru_cache(maxsize=2)
def _worker_embedder(config: EmbedConfig) -> Embedder:
    from tsnegrid.embed import embedder_for

    return embedder_for(config)


def embed_chunk(paths: Sequence[Path], config: EmbedConfig) -> list[NDArray[np.float32] | str]:
    """Worker task: vectors, or error messages, for one chunk of paths."""
    embedder = _worker_embedder(config)
    return [r if not isinstance(r, ImageError) else str(r)
            for r in compute_vectors(paths, embedder, config)]
