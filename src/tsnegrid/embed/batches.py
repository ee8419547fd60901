"""Batched inference fed by decoding on every core: the part of embedding that runs on a worker.

Images decode on a pool of threads, one per core (Pillow lets go of the GIL while it decodes,
resizes and encodes), in input order, at most ``AHEAD`` batches ahead of inference: a bounded
queue, so memory holds a few batches of model inputs whatever the number of images, and the
cores decode while the model runs. With a tile spec in the config, the decode that makes the
model's input also makes the image's tile (``tsnegrid.tiles``), so the render never decodes it
again; an image that needs only its tile (its vector is cached) is decoded for that alone.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tsnegrid.embed.base import Embedder
from tsnegrid.embed.config import EmbedConfig
from tsnegrid.errors import ImageError
from tsnegrid.load import AlphaTally, open_image, open_images
from tsnegrid.progress import ProgressFn, no_progress
from tsnegrid.tiles import Thumb, encode_tile

AHEAD = 2
"""Batches decoded ahead of the one in inference (the queue's bound, in batches)."""


@dataclass(frozen=True)
class Done:
    """One image's outcome: its vector (None when only its tile was asked for) and its tile
    (None without a tile spec, or when its tile could not be made)."""

    vector: NDArray[np.float32] | None
    thumb: Thumb | None = None


Result = NDArray[np.float32] | ImageError
Outcome = Done | ImageError


def decode_threads(config: EmbedConfig) -> int:
    """Decoding threads: ``threads``, or one per core (the model's own threads share them)."""
    return config.threads or max(1, os.cpu_count() or 1)


def _thumb(image: object, path: Path, config: EmbedConfig, tally: AlphaTally) -> Thumb:
    """The tile of ``image`` (None: decode again at the tile's own scale), with the alpha
    verdict its decode counted."""
    spec = config.tile_spec
    assert spec is not None
    if image is None:
        image = open_image(path, min_side=spec.tile, background=spec.background,
                           max_pixels=config.max_pixels)
    from PIL import Image

    assert isinstance(image, Image.Image)
    return Thumb(encode_tile(spec.make(image)), tally.count > 0, tally.faint > 0, tally.luma)


def _decode(path: Path, embedder: Embedder, config: EmbedConfig,
            vector: bool = True) -> tuple[NDArray[np.float32] | None, Thumb | None] | ImageError:
    """The model's input (with ``vector``) and the tile (with a tile spec) of one image, from
    one decode; a tile-only image's failure is no error (the render reports it)."""
    spec = config.tile_spec
    try:
        if spec is None:
            img = open_image(path, min_side=embedder.input_size, background=config.background,
                             max_pixels=config.max_pixels)
            return embedder.preprocess(img), None
        tally = AlphaTally(spec.background)
        sides = (embedder.input_size, spec.tile) if vector else (spec.tile,)
        images = open_images(path, sides, background=config.background,
                             max_pixels=config.max_pixels, alpha=tally)
        model_input = embedder.preprocess(images[0]) if vector else None  # type: ignore[arg-type]
        try:
            thumb: Thumb | None = _thumb(images[-1], path, config, tally)
        except ImageError:
            thumb = None
        return model_input, thumb
    except ImageError as exc:
        return exc if vector else (None, None)


def iter_outcomes(paths: Sequence[Path], embedder: Embedder, config: EmbedConfig,
                  vectors: Sequence[bool] | None = None) -> Iterator[list[Outcome]]:
    """One list per batch of ``config.batch_size`` paths: each image's ``Done`` or decoding
    error. ``vectors[i]`` False: image i wants its tile only (no inference). Closing the
    iterator (or Ctrl-C) drops the decodes not yet started."""
    size = config.batch_size
    want = list(vectors) if vectors is not None else [True] * len(paths)
    pool = ThreadPoolExecutor(max_workers=decode_threads(config))
    window: deque[Future[tuple[NDArray[np.float32] | None, Thumb | None] | ImageError]] = (
        deque())
    nxt = 0

    def top_up() -> None:
        nonlocal nxt
        while nxt < len(paths) and len(window) < (AHEAD + 1) * size:
            window.append(pool.submit(_decode, paths[nxt], embedder, config, want[nxt]))
            nxt += 1

    try:
        for start in range(0, len(paths), size):
            top_up()
            decoded = [window.popleft().result() for _ in range(min(size, len(paths) - start))]
            top_up()  # the next batches decode while this one is in inference
            out: list[Outcome] = []
            inputs = [d[0] for d in decoded if not isinstance(d, ImageError) and d[0] is not None]
            vecs: Iterator[NDArray[np.float32]] = iter(
                embedder.embed_batch(np.stack(inputs)) if inputs else [])
            for d in decoded:
                if isinstance(d, ImageError):
                    out.append(d)
                else:
                    out.append(Done(next(vecs) if d[0] is not None else None, d[1]))
            yield out
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def iter_vectors(paths: Sequence[Path], embedder: Embedder,
                 config: EmbedConfig) -> Iterator[list[Result]]:
    """One list per batch: a vector (or the decoding error) per path."""
    for batch in iter_outcomes(paths, embedder, replace(config, tile=0)):
        yield [o if isinstance(o, ImageError) else o.vector for o in batch]  # type: ignore[misc]


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
