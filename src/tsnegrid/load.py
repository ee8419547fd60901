"""Image loading: find image files from folders, globs and list files, and decode them to RGB.

Order is stable and documented: sources in the order given; a folder's files (recursive) and a
glob's matches sorted by path; a list file's paths in the file's order. A path seen twice is kept
once, at its first place.
"""

from __future__ import annotations

import glob
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageOps, UnidentifiedImageError

from tsnegrid.errors import ImageError, InputError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff",
                            ".avif"})
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})
GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Skipped:
    """A file that was left out, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Discovery:
    """Result of path discovery: the image paths in order, and the sources that gave nothing."""

    paths: tuple[Path, ...]
    skipped: tuple[Skipped, ...]


def _from_list_file(list_file: Path) -> list[Path]:
    out = []
    for line in list_file.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            out.append(p if p.is_absolute() else list_file.parent / p)
    return out


def _expand(source: str | Path) -> tuple[list[Path], str | None]:
    """Paths named by one source, or an explanation of why it named none."""
    text = str(source)
    p = Path(text).expanduser()
    if p.is_dir():
        found = sorted((f for f in p.rglob("*") if f.is_file()
                        and f.suffix.lower() in IMAGE_SUFFIXES), key=lambda f: f.as_posix())
        return found, None if found else "folder holds no image files"
    if p.is_file():
        if p.suffix.lower() in LIST_SUFFIXES:
            return _from_list_file(p), None
        return [p], None
    if GLOB_CHARS & set(text):
        found = sorted((Path(f) for f in glob.glob(text, recursive=True) if Path(f).is_file()),
                       key=lambda f: f.as_posix())
        return found, None if found else "pattern matches no files"
    return [], "no such file or folder"


def discover(sources: Sequence[str | Path]) -> Discovery:
    """Expand sources into unique image paths in a stable order."""
    seen: set[Path] = set()
    paths: list[Path] = []
    skipped: list[Skipped] = []
    for source in sources:
        found, problem = _expand(source)
        if problem:
            skipped.append(Skipped(str(source), problem))
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                paths.append(f)
    return Discovery(tuple(paths), tuple(skipped))


def parse_colour(colour: str) -> tuple[int, int, int]:
    """'#rrggbb' or a colour name to an RGB tuple."""
    try:
        rgb = ImageColor.getrgb(colour)
    except ValueError as exc:
        raise InputError(f"background: cannot read colour {colour!r}") from exc
    return (rgb[0], rgb[1], rgb[2])


def _to_rgb(im: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; alpha composited on the background colour."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8), "L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        base = Image.new("RGBA", im.size, (*background, 255))
        return Image.alpha_composite(base, im).convert("RGB")
    return im.convert("RGB") if im.mode != "RGB" else im


def open_image(
    path: str | Path,
    *,
    min_side: int | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = 178_956_970,
) -> Image.Image:
    """Decode one image to RGB, oriented by EXIF; raise ``ImageError`` naming the problem.

    ``min_side`` lets large JPEGs decode at reduced size (draft mode) while keeping both sides at
    least that large. Images above ``max_pixels`` are refused before decoding. Whatever a decoder
    raises for one file (codecs raise ``RuntimeError``, ``struct.error``, ``IndexError``, even
    ``MemoryError``) becomes that file's ``ImageError``, so one bad file never stops a build.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageError(f"{path}: {w}x{h} = {w * h:,} pixels exceeds the limit of "
                                     f"{max_pixels:,} (possible decompression bomb)")
                if min_side and im.format == "JPEG":
                    scale = min(w, h) / min_side
                    if scale >= 2:
                        im.draft("RGB", (max(1, int(w / scale)), max(1, int(h / scale))))
                im.load()
                return _to_rgb(ImageOps.exif_transpose(im), background)
    except ImageError:
        raise
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: no such file") from exc
    except (UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        reason = ("not an image file (unrecognised format)"
                  if isinstance(exc, UnidentifiedImageError) else f"refused: {exc}")
        raise ImageError(f"{path}: {reason}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{path}: cannot decode ({exc})") from exc
    except Exception as exc:  # a decoder's own failure: this file's reason, not the build's
        raise ImageError(f"{path}: cannot decode ({type(exc).__name__}: {exc})") from exc


def check_readable(paths: Iterable[Path]) -> list[Skipped]:
    """Paths that are empty files (cheap check before decoding)."""
    out = []
    for p in paths:
        try:
            if p.stat().st_size == 0:
                out.append(Skipped(str(p), "empty file (0 bytes)"))
        except OSError as exc:
            out.append(Skipped(str(p), f"cannot read ({exc.strerror})"))
    return out
