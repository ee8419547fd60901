"""Tiles: the square thumbnail of an image that the mosaic and the pyramid paste into its cell.

Shared by the embed stage, which makes each image's tile in the pass that decodes it for the
model and keeps it in the embedding cache, and the render stage, which pastes the kept tiles
(or, for an image without one, decodes the original and makes it the same way). ``TileSpec``
names everything a tile depends on; its ``key`` (with ``TILE_VERSION``) keys the cached ones.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image, ImageOps

TILE_VERSION = 1
"""Bumped whenever how a tile is made or stored changes: older cached tiles are then unused."""
TILE_QUALITY = 95
"""JPEG quality of a cached tile (4:4:4, no chroma subsampling): a 64 px photo tile is about
4 KB; the demo's mosaic made from such tiles differs from one made from the originals by 1.9
levels of 255 on average (docs/photos.md)."""


def make_tile(image: Image.Image, tile: int, fit: bool,
              background: tuple[int, int, int]) -> Image.Image:
    """Centre-crop to a square (or, with ``fit``, letterbox) at tile x tile pixels."""
    if not fit:
        return ImageOps.fit(image, (tile, tile), Image.Resampling.LANCZOS)
    inner = ImageOps.contain(image, (tile, tile), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (tile, tile), background)
    canvas.paste(inner, ((tile - inner.width) // 2, (tile - inner.height) // 2))
    return canvas


@dataclass(frozen=True)
class TileSpec:
    """How tiles are made: the cell side in pixels, crop or letterbox, the background that
    transparent parts and letterbox bars are filled with."""

    tile: int
    fit: bool = False
    background: tuple[int, int, int] = (255, 255, 255)

    @property
    def key(self) -> str:
        """What cached tiles of this spec are stored under."""
        bg = "{:02x}{:02x}{:02x}".format(*self.background)
        return f"v{TILE_VERSION}-{self.tile}-{'fit' if self.fit else 'crop'}-{bg}-q{TILE_QUALITY}"

    def make(self, image: Image.Image) -> Image.Image:
        """``image`` (decoded with both sides at least ``tile``, where it is that large) as its
        tile."""
        return make_tile(image, self.tile, self.fit, self.background)


@dataclass(frozen=True)
class Thumb:
    """A cached tile: its encoded pixels and what the image's alpha channel showed (counted by
    ``tsnegrid.load.AlphaTally`` as if the original were decoded again)."""

    data: bytes
    transparent: bool = False
    faint: bool = False
    luma: float = 0.0

    def image(self) -> Image.Image:
        """The tile's RGB pixels (raises ``OSError`` for a damaged blob)."""
        im = Image.open(io.BytesIO(self.data), formats=("JPEG",))
        im.load()
        return im if im.mode == "RGB" else im.convert("RGB")


def encode_tile(tile: Image.Image) -> bytes:
    """A tile as the bytes the cache keeps."""
    buf = io.BytesIO()
    tile.save(buf, format="JPEG", quality=TILE_QUALITY, subsampling=0)
    return buf.getvalue()


class TileSource(Protocol):
    """Where the render finds tiles made earlier (the embedding cache's, by file)."""

    def get(self, path: str | Path) -> Thumb | None:
        """The tile of the file at ``path`` as it is now, or None when there is none."""
        ...
