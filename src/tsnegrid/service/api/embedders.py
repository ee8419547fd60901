"""The embedders as Clarifai models: a catalogue for ``GET /v2/models`` and a runner that
embeds image bytes exactly as the pipeline's embed stage does (same decoding, same embedder,
same embedding cache), so ``POST /v2/models/{id}/outputs`` is step 1 of a grid as an API call.
Beside each embedder with a classifier head (lite0) sits a concept model, which answers the
ImageNet concepts of the same cached vector, as Clarifai's general model answers its concepts.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tsnegrid.embed import MODELS, Embedded, Embedder, embed_images, embedder_for
from tsnegrid.embed.cache import EmbeddingCache
from tsnegrid.embed.config import EmbedConfig
from tsnegrid.errors import ModelError
from tsnegrid.settings import Settings


@dataclass(frozen=True)
class ModelInfo:
    """What the model listing says of one embedder."""

    id: str
    name: str
    dimensions: int
    """Vector length of an embedder; number of classes of a concept model."""
    description: str
    kind: str = "embed"
    """``embed`` (answers ``data.embeddings``) or ``concept`` (answers ``data.concepts``)."""
    embedder: str = ""
    """The embedder a concept model classifies the vectors of; its own id for an embedder."""

    @property
    def runs(self) -> str:
        """The embedder that computes this model's outputs."""
        return self.embedder or self.id


CATALOGUE: dict[str, ModelInfo] = {
    "lite0": ModelInfo("lite0", "EfficientNet-Lite0", 1280,
                       "EfficientNet-Lite0 (ImageNet weights): the 1280-d globally pooled "
                       "features of a 224 x 224 centre crop; the default embedder of grids"),
    "lite0-concepts": ModelInfo(
        "lite0-concepts", "EfficientNet-Lite0 ImageNet concepts", 1000,
        "the ImageNet-1k classes of an image with their probabilities, from EfficientNet-Lite0's "
        "own classifier applied to the lite0 vector (the same cached vector, no second "
        "inference); concept ids are WordNet ids", kind="concept", embedder="lite0"),
    "pixels": ModelInfo("pixels", "Pixels 32x32", 3072,
                        "a 32 x 32 RGB thumbnail's pixels in [0, 1]: a baseline"),
}
assert {i for i, m in CATALOGUE.items() if m.kind == "embed"} == set(MODELS), (
    "every embedder is listed as a model")
DEFAULT_MAX_CONCEPTS = 20
"""Concepts per output when the request names no ``max_concepts`` (Clarifai's default)."""
VERSION = "1"
"""Every model has one version; its id is this."""
LISTED_SINCE = dt.datetime(2024, 1, 1)


@dataclass
class EmbedRunner:
    """Embeds uploaded bytes with the named embedder; embedders are built once, on first use."""

    cache_dir: Path
    threads: int = 0
    max_image_pixels: int = Settings.max_image_pixels
    _embedders: dict[str, Embedder] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def config(self, model: str) -> EmbedConfig:
        """The embed stage's config for ``model``: the pipeline's defaults (decoding, batch
        size, background) with this server's cache, threads and pixel limit, the model's own
        vector (``features`` semantic: no colour mixed in) and no cluster."""
        return EmbedConfig.from_settings(Settings(
            model=model, cache_dir=self.cache_dir, threads=self.threads,
            max_image_pixels=self.max_image_pixels, features="semantic"))

    def embedder(self, model: str) -> Embedder:
        with self._lock:
            if model not in self._embedders:
                self._embedders[model] = embedder_for(self.config(model))
            return self._embedders[model]

    def _run(self, model: str, images: list[bytes], concepts: int) -> tuple[Embedded, list[str]]:
        """Embed the images (with ``concepts`` per image); the reason per image that failed."""
        embedder = self.embedder(model)
        cfg = replace(self.config(model), concepts=concepts)
        cache = EmbeddingCache(cfg.cache_dir / "embeddings.sqlite")
        try:
            with tempfile.TemporaryDirectory(prefix="tsnegrid-embed-") as tmp:
                paths = [Path(tmp) / f"{i:05d}" for i in range(len(images))]
                for p, data in zip(paths, images, strict=True):
                    p.write_bytes(data)
                done = embed_images(paths, embedder, cache, config=cfg)
        finally:
            cache.close()
        reasons = [""] * len(images)
        for skipped in done.skipped:
            reasons[int(Path(skipped.path).name)] = skipped.reason
        return done, reasons

    def embed(self, model: str, images: list[bytes]) -> list[NDArray[np.float32] | str]:
        """One vector per image, or the reason it could not be embedded."""
        done, reasons = self._run(model, images, 0)
        out: list[NDArray[np.float32] | str] = list(reasons)
        for row, i in enumerate(done.kept):
            out[int(i)] = done.vectors[row]
        return out

    def concepts(self, model: str, images: list[bytes],
                 top: int) -> list[list[dict[str, object]] | str]:
        """Per image its ``top`` concepts (``{id, name, value}``, value desc) from ``model``'s
        classifier head, or the reason it could not be embedded."""
        done, reasons = self._run(model, images, top)
        if done.concepts is None and len(done.kept):
            raise ModelError(f"model {model!r} has no classifier head, so no concepts")
        out: list[list[dict[str, object]] | str] = list(reasons)
        for row, i in enumerate(done.kept):
            assert done.concepts is not None
            out[int(i)] = done.concepts.records(row)
        return out
