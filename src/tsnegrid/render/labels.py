"""Region names burnt into the mosaic (``--labels``), like place names on a map.

Coarse regions' names first, then the fine ones' where they fit, largest first; each name
centred on its region's innermost cell at a size that grows with the region and fits its width;
a name that would overlap one already written, or repeat a name written close by, is left out,
as is a region without a name. White text with a dark outline reads on any tile.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from tsnegrid.regions import Region

MIN_FONT = 10
"""Names smaller than this many pixels are left out."""
SCALE = 0.3
"""Font size per (cells on a region's side x tile)."""


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def label_boxes(regions: Sequence[Region], tile: int,
                bounds: tuple[int, int]) -> list[tuple[int, int, tuple[int, int, int, int]]]:
    """(region index, font size, box x0, y0, x1, y1 in pixels) of each name that is written,
    kept inside the ``bounds`` (width, height) of the mosaic."""
    placed: list[tuple[int, int, tuple[int, int, int, int]]] = []
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for k, r in enumerate(regions):
        if r.name is None:  # not sure enough of a name: none is written
            continue
        r0, c0, r1, c1 = r.bbox
        width = (c1 - c0 + 1) * tile
        size = SCALE * (r.size ** 0.5) * tile
        x0, y0, x1, y1 = probe.textbbox((0, 0), r.name, font=_font(100))
        size = min(size, 100 * 0.9 * width / max(x1 - x0, 1), 4 * tile)
        if size < MIN_FONT:
            continue
        font = _font(int(size))
        x0, y0, x1, y1 = probe.textbbox((0, 0), r.name, font=font, stroke_width=2)
        w, h = x1 - x0, y1 - y0
        cx = min(max((r.anchor[1] + 0.5) * tile, w / 2), bounds[0] - w / 2)
        cy = min(max((r.anchor[0] + 0.5) * tile, h / 2), bounds[1] - h / 2)
        box = (int(cx - w / 2), int(cy - h / 2), int(cx + w / 2), int(cy + h / 2))
        if any(_overlap(box, b) for _, _, b in placed):  # never over another name
            continue
        if any(regions[j].name == r.name and _near(box, b, 3 * w) for j, _, b in placed):
            continue
        placed.append((k, int(size), box))
    return placed


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _near(a: tuple[int, int, int, int], b: tuple[int, int, int, int], d: float) -> bool:
    ax, ay = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    bx, by = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    return bool((ax - bx) ** 2 + (ay - by) ** 2 < d * d)


def draw_labels(image: Image.Image, regions: Sequence[Region], tile: int) -> Image.Image:
    """Write the region names onto the mosaic (in place); return it."""
    draw = ImageDraw.Draw(image)
    for k, size, box in label_boxes(regions, tile, image.size):
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        draw.text((cx, cy), str(regions[k].name), font=_font(size), anchor="mm",
                  fill=(255, 255, 255), stroke_width=max(2, size // 12), stroke_fill=(0, 0, 0))
    return image
