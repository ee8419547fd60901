"""The embedder contract: turn decoded RGB images into fixed-length vectors."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image


class Embedder(Protocol):
    """An image model. ``model_id`` names the weights and settings, and keys the cache."""

    model_id: str

    @property
    def input_size(self) -> int:
        """The side the model's input images are cropped to (read when decoding them)."""
        ...

    def preprocess(self, image: Image.Image) -> NDArray[np.float32]:
        """One RGB image to the model's input array (C x H x W)."""
        ...

    def embed_batch(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """B x C x H x W inputs to B x D vectors."""
        ...


def cache_key(embedder: Embedder) -> str:
    """The key its vectors are cached under: ``cache_id`` where the embedder stores something
    other than its final vectors (a feature mix keeps its parts), else ``model_id``."""
    return str(getattr(embedder, "cache_id", embedder.model_id))


def finish(embedder: Embedder, stored: NDArray[np.float32]) -> NDArray[np.float32]:
    """Cached rows to the embedder's vectors (identity but for a feature mix; may work in
    place)."""
    fn = getattr(embedder, "finish", None)
    return stored if fn is None else fn(stored)


def model_vectors(embedder: Embedder,
                  stored: NDArray[np.float32]) -> tuple[str, NDArray[np.float32]] | None:
    """The image model's id and its own vectors within the cached rows: what a classifier head
    takes. None for an embedder with no image model (the colour descriptor alone)."""
    fn = getattr(embedder, "semantic", None)
    if fn is None:
        return embedder.model_id, stored
    return fn(stored)


def to_unit_range(image: Image.Image, size: int) -> NDArray[np.float32]:
    """Centre-crop and resize to size x size, RGB/255 then (x - 0.5) / 0.5, channels first."""
    from PIL import ImageOps

    im = ImageOps.fit(image, (size, size), Image.Resampling.BICUBIC)
    arr = np.asarray(im, dtype=np.float32) / 255.0
    return np.ascontiguousarray(((arr - 0.5) / 0.5).transpose(2, 0, 1))
