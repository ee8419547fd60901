"""The embed stage's settings: everything a worker needs to rebuild the embedder and decode images
like the driver, and where the work runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from tsnegrid.settings import EMBED_SETTINGS, Settings
from tsnegrid.tiles import TileSpec


@dataclass(frozen=True)
class EmbedConfig:
    """Model, features, decoding and execution settings of one embedding run."""

    model: str
    cache_dir: Path
    threads: int = 0
    batch_size: int = Settings.batch_size
    background: tuple[int, int, int] = (255, 255, 255)
    max_pixels: int = Settings.max_image_pixels
    features: str = "semantic"
    colour_weight: float = Settings.colour_weight
    scheduler: str = ""
    workers: int = 0
    scheduler_timeout: float = Settings.scheduler_timeout
    concepts: int = Settings.concepts
    tile: int = 0
    """With a side above 0, the embed pass also makes each image's tile of that side (and
    ``fit``), and keeps it in the cache for the render."""
    fit: bool = Settings.fit

    SETTINGS: ClassVar[tuple[str, ...]] = EMBED_SETTINGS
    """The ``Settings`` fields that ``from_settings`` reads (the options of ``tsnegrid embed``)."""

    @classmethod
    def from_settings(cls, s: Settings, *, tiles: bool = False) -> EmbedConfig:
        """The embed stage's part of ``s``; with ``tiles``, also the tiles of a build's render
        (``tile``, ``fit``)."""
        from tsnegrid.load import parse_colour

        return cls(model=s.model, cache_dir=s.cache_dir, threads=s.threads,
                   batch_size=s.batch_size, background=parse_colour(s.background),
                   max_pixels=s.max_image_pixels, features=s.features,
                   colour_weight=s.colour_weight, scheduler=s.scheduler, workers=s.workers,
                   scheduler_timeout=s.scheduler_timeout, concepts=s.concepts,
                   tile=s.tile if tiles else 0, fit=s.fit if tiles else Settings.fit)

    @property
    def tile_spec(self) -> TileSpec | None:
        """The tiles this pass makes, if any."""
        return TileSpec(self.tile, self.fit, self.background) if self.tile > 0 else None
