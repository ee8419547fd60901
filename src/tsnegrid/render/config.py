"""The render stage's settings."""

from __future__ import annotations

from dataclasses import dataclass

from tsnegrid.settings import Settings


@dataclass(frozen=True)
class RenderConfig:
    """Tiles, colours, formats, size limits and which outputs to draw."""

    tile: int = Settings.tile
    fit: bool = Settings.fit
    background: tuple[int, int, int] = (255, 255, 255)
    format: str = Settings.format
    max_pixels: int = Settings.max_pixels
    max_image_pixels: int = Settings.max_image_pixels
    tiles: bool = Settings.tiles
    html: bool = Settings.html
    labels: bool = Settings.labels

    @classmethod
    def from_settings(cls, s: Settings) -> RenderConfig:
        """The render stage's part of ``s`` (the background colour parsed)."""
        from tsnegrid.load import parse_colour

        return cls(tile=s.tile, fit=s.fit, background=parse_colour(s.background),
                   format=s.format, max_pixels=s.max_pixels,
                   max_image_pixels=s.max_image_pixels, tiles=s.tiles, html=s.html,
                   labels=s.labels)

    def check_size(self, rows: int, cols: int) -> None:
        """Refuse a mosaic of ``rows`` x ``cols`` tiles over the limits, before any work; with
        ``tiles`` an oversized mosaic is skipped later, not refused."""
        from tsnegrid.render.mosaic import check_size

        if not self.tiles:
            check_size(rows, cols, self.tile, self.max_pixels, self.format)
