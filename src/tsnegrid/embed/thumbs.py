"""The render's view of the tiles the embed pass kept: a file's tile found by its stat (which
the cache maps to its content digest) and the tile spec, without reading the file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tsnegrid.embed.cache import EmbeddingCache, stat_key
from tsnegrid.settings import Settings
from tsnegrid.tiles import Thumb, TileSpec


class CachedTiles:
    """Tiles of one spec from the embedding cache in ``cache_dir`` (safe across threads)."""

    def __init__(self, cache_dir: Path, spec: TileSpec) -> None:
        self.spec = spec
        path = cache_dir / "embeddings.sqlite"
        # never made here, and its problems were told by the embed stage
        self.cache = EmbeddingCache(path, quiet=True) if path.is_file() else None

    def get(self, path: str | Path) -> Thumb | None:
        """The tile of the file as it is now; None when it changed since it was hashed, or has
        no tile of this spec."""
        if self.cache is None:
            return None
        try:
            key = stat_key(os.stat(path))
        except OSError:
            return None
        where = os.path.abspath(path)
        digest = self.cache.known_digests({where: key}).get(where)
        return None if digest is None else self.cache.get_tile(self.spec.key, digest)

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


@contextmanager
def cached_tiles(settings: Settings) -> Iterator[CachedTiles]:
    """The tiles a build with ``settings`` made in its embed pass, for its render."""
    from tsnegrid.embed.config import EmbedConfig

    spec = EmbedConfig.from_settings(settings, tiles=True).tile_spec
    assert spec is not None
    tiles = CachedTiles(settings.cache_dir, spec)
    try:
        yield tiles
    finally:
        tiles.close()
