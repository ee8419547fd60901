"""Batched inference with decoding overlapped: the part of embedding that runs on a worker."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tsnegrid.embed.base import Embedder
from tsnegrid.errors import ImageError
from tsnegrid.load import open_image
from tsnegrid.progress import ProgressFn, no_progress
from tsnegrid.settings import Settings

Result = NDArray[np.float32] | ImageError


@dataclass(frozen=True)
class EmbedJob:
    """Everything a worker needs to rebuild the embedder and decode images like the driver."""

    model: str
    cache_dir: Path
    threads: int = 0
    batch_size: int = 32
    background: tuple[int, int, int] = (255, 255, 255)
    max_pixels: int = 178_956_970
    features: str = "semantic"
    colour_weight: float = Settings.colour_weight


def _decode(path: Path, embedder: Embedder, job: EmbedJob) -> Result:
    try:
        img = open_image(path, min_side=embedder.input_size, background=job.background,
                         max_pixels=job.max_pixels)
        return embedder.preprocess(img)
    except ImageError as exc:
        return exc


def compute_vectors(paths: Sequence[Path], embedder: Embedder, job: EmbedJob,
                    progress: ProgressFn = no_progress) -> list[Result]:
    """One vector (or the decoding error) per path; the next batch decodes during inference."""
    out: list[Result] = []
    batches = [list(paths[k:k + job.batch_size]) for k in range(0, len(paths), job.batch_size)]
    with ThreadPoolExecutor(max_workers=2) as pool:

        def submit(batch: list[Path]) -> list[Future[Result]]:
            return [pool.submit(_decode, p, embedder, job) for p in batch]

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
            out.extend(decoded)
            progress("embed", len(out), len(paths))
    return out


@lru_cache(maxsize=2)
def _worker_embedder(model: str, cache_dir: Path, threads: int, features: str,
                     colour_weight: float) -> Embedder:
    from tsnegrid.embed import make_embedder

    return make_embedder(model, cache_dir, threads, features, colour_weight)


def embed_chunk(paths: Sequence[Path], job: EmbedJob) -> list[NDArray[np.float32] | str]:
    """Worker task: vectors, or error messages, for one chunk of paths."""
    embedder = _worker_embedder(job.model, job.cache_dir, job.threads, job.features,
                                job.colour_weight)
    return [r if not isinstance(r, ImageError) else str(r)
            for r in compute_vectors(paths, embedder, job)]
