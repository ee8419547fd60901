"""Image loading: find image files from folders, globs and list files, and decode them to RGB.

Order is stable and documented: sources in the order given; a folder's files (recursive) and a
glob's matches sorted by path; a list file's paths in the file's order. A path seen twice is kept
once, at its first place. Only regular files are ever read; every other path that a source names
(and every folder entry named like an image) is skipped with its reason.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import re
import stat
import threading
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageColor, UnidentifiedImageError

from tsnegrid.decode import (
    DECODE_SECONDS,
    DECODES,
    STRIP_PIXELS,
    check_cost,
    decode_cost,
    decode_limit,
    frame_bytes,
    jpeg_coefficients,
    opened,
    reduction,
)
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
    """Result of path discovery: the image paths in order, and what was skipped with its reason
    (sources that named nothing, paths that are not regular files)."""

    paths: tuple[Path, ...]
    skipped: tuple[Skipped, ...]

    @property
    def found(self) -> int:
        """Every path the sources named, readable or not: ``found = placed + skipped +
        duplicates`` holds once the later stages have skipped or merged theirs."""
        return len(self.paths) + len(self.skipped)


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> str:
    kind = next((name for test, name in _KINDS if test(mode)), "a special file")
    return f"not a regular file ({kind})"


def _os_problem(path: str | Path, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError) and os.path.islink(path):
        return f"broken symlink (its target {os.readlink(path)} does not exist)"
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if exc.errno == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links)"
    return f"cannot read ({exc.strerror or exc})"


def file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a file, or None for a regular file (symlinks followed).

    Devices, FIFOs, sockets and folders are never read: ``/dev/zero`` would read until memory
    runs out and a FIFO would block forever.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return _os_problem(path, exc)
    return None if stat.S_ISREG(mode) else _not_regular(mode)


def open_regular(path: str | Path) -> BufferedReader:
    """Open a regular file for reading; raise ``ImageError`` naming why anything else is refused.

    Checked before opening (opening a device can itself act) and again on the open descriptor
    (the path may have been swapped in between); ``O_NONBLOCK`` keeps even that open from waiting.
    """
    problem = file_problem(path)
    if problem is None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            problem = _os_problem(path, exc)
        else:
            mode = os.fstat(fd).st_mode
            if stat.S_ISREG(mode):
                return os.fdopen(fd, "rb")
            os.close(fd)
            problem = _not_regular(mode)
    raise ImageError(f"{path}: {problem}")


def _from_list_file(list_file: Path) -> tuple[list[Path], str | None]:
    try:
        with open_regular(list_file) as f:
            text = f.read().decode("utf-8")
    except ImageError as exc:
        return [], str(exc).split(": ", 1)[-1]
    except OSError as exc:
        return [], _os_problem(list_file, exc)
    except UnicodeDecodeError as exc:
        return [], f"list file is not UTF-8 text ({exc.reason} at byte {exc.start})"
    out = []
    for line in text.splitlines():
        line = _COMMENT.sub("", line).strip()
        if line:
            p = Path(line).expanduser()
            out.append(p if p.is_absolute() else _normalised(list_file.parent / p))
    return out, None


#: A comment in a list file: ``#`` at the start of a line or after whitespace, to the line's
#: end (``photo.jpg  # the cat``); a ``#`` inside a name (``take#2.jpg``) is part of the path.
_COMMENT = re.compile(r"(^|\s)#.*$")


def _normalised(path: Path) -> Path:
    """``lists/../photos/a.jpg`` as ``photos/a.jpg`` (how it is shown and stored), unless a
    symlinked folder makes the two name different files; then the path as written."""
    short = Path(os.path.normpath(path))
    if short == path or not os.path.lexists(path):
        return short
    try:
        return short if os.path.samefile(short, path) else path
    except OSError:
        return path


def _sorted(paths: Iterable[Path]) -> list[Path]:
    return sorted(paths, key=lambda f: f.as_posix())


def _expand(source: str | Path) -> tuple[list[Path], str | None]:
    """Paths named by one source, or an explanation of why it named none."""
    text = str(source)
    p = Path(text).expanduser()
    if p.is_dir():
        # Every entry named like an image, readable or not: those that are not regular files
        # (broken links, FIFOs, folders named *.jpg) are then reported, not silently dropped.
        found = _sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        return found, None if found else "folder holds no image files"
    if os.path.lexists(p):
        if (problem := file_problem(p)) is not None:
            return [], problem
        if p.suffix.lower() in LIST_SUFFIXES:
            return _from_list_file(p)
        return [p], None
    if GLOB_CHARS & set(text):
        found = _sorted(f for f in map(Path, glob.glob(text, recursive=True))
                        if not f.is_dir() or f.suffix.lower() in IMAGE_SUFFIXES)
        return found, None if found else "pattern matches no files"
    return [], "no such file or folder"


def discover(sources: Sequence[str | Path]) -> Discovery:
    """Expand sources into unique image paths in a stable order.

    Only regular files are kept; any other path named (a device, a FIFO, a broken symlink) is
    skipped with its reason, as is a source that names nothing.
    """
    seen: set[Path] = set()
    paths: list[Path] = []
    skipped: list[Skipped] = []
    for source in sources:
        found, problem = _expand(source)
        if problem:
            skipped.append(Skipped(str(source), problem))
        for f in found:
            if (problem := file_problem(f)) is not None:
                skipped.append(Skipped(str(f), problem))
                continue
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


class AlphaTally:
    """Counts the images that are mostly transparent (over half their pixels), and among them
    the faint ones, whose visible parts are close to the background's colour: composited on it
    they look like empty cells, and the report says which ``--background`` would show them.
    Thread-safe (the pyramid decodes on several threads)."""

    MOSTLY = 0.5  #: share of transparent pixels (alpha below half) that makes "mostly"
    CONTRAST = 64  #: mean RGB distance (of 441) from the background below which parts blend in

    def __init__(self, background: tuple[int, int, int]) -> None:
        self.background = background
        self.count = 0
        self.faint = 0
        self._faint_luma = 0.0
        self._lock = threading.Lock()

    @staticmethod
    def step(height: int, width: int) -> int:
        """The sampling lattice's step for an image of this size (1: every pixel)."""
        return max(1, int((height * width / 250_000) ** 0.5))

    def add(self, rgba: NDArray[np.uint8]) -> None:
        """One image's H x W x 4 pixels (a large one is sampled on a coarser lattice)."""
        step = self.step(rgba.shape[0], rgba.shape[1])
        self.add_sample(rgba[::step, ::step].reshape(-1, 4))

    def add_sample(self, px: NDArray[np.uint8]) -> None:
        """One image's pixels sampled on the lattice of ``step``, as N x 4 RGBA."""
        visible = px[:, 3] >= 128
        if visible.mean() > 1 - self.MOSTLY:
            return
        bg = np.asarray(self.background, dtype=np.float32)
        rgb = px[visible, :3].astype(np.float32)
        # colour distance, not lightness alone: yellow on white stands out, white on white not
        far = float(np.linalg.norm(rgb - bg, axis=1).mean()) if len(rgb) else 0.0
        with self._lock:
            self.count += 1
            if far < self.CONTRAST:
                self.faint += 1
                self._faint_luma += float((rgb @ _LUMA).mean()) if len(rgb) else _luma(
                    self.background)

    def add_verdict(self, transparent: bool, faint: bool, luma: float) -> None:
        """One image counted earlier by a tally of its own (a cached tile's record)."""
        if transparent:
            with self._lock:
                self.count += 1
                if faint:
                    self.faint += 1
                    self._faint_luma += luma

    @property
    def luma(self) -> float:
        """Mean luminance (0-255) of the faint images' visible parts."""
        return self._faint_luma / self.faint if self.faint else 0.0

    def advice(self) -> str | None:
        """One line for the report, or None when no image is mostly transparent."""
        if not self.count:
            return None
        bg = "#{:02x}{:02x}{:02x}".format(*self.background)
        head = (f"{self.count:,} image{'s are' if self.count != 1 else ' is'} mostly "
                f"transparent (over half the pixels, composited on the background {bg})")
        if not self.faint:
            return head + f"; their visible parts stand out from {bg}"
        better = "#333333" if self.luma >= 128 else "#ffffff"
        return (head + f"; {self.faint:,} of them {'have' if self.faint != 1 else 'has'} "
                f"visible parts close to {bg} (mean luminance {self.luma:.0f}/255) "
                f"and look empty: --background '{better}' would show them")


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _luma(rgb: tuple[int, int, int]) -> float:
    """ITU-R 601 luminance, as Pillow's ``L`` mode computes it."""
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_TURNS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
          4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
          6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_90}


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in _ALPHA_MODES or (im.mode == "P" and "transparency" in im.info)


def _to_rgb(im: Image.Image, background: tuple[int, int, int],
            alpha: AlphaTally | None = None) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; alpha composited on the background colour (and, given an
    ``alpha`` tally, counted there). Converted strip by strip into one RGB image, so the peak is
    the frame plus its RGB copy (16-bit grey went through float64 before: 27 bytes a pixel)."""
    if im.mode == "RGB":
        return im
    w, h = im.size
    hi = 1.0
    if im.mode in ("I", "F"):  # 32-bit: full range 16 bits when values pass 255, else 8
        top = im.getextrema()[1]
        hi = 65535.0 if isinstance(top, (int, float)) and top > 255 else 255.0
    step = AlphaTally.step(h, w) if alpha is not None and _has_alpha(im) else 1
    rows = max(step, STRIP_PIXELS // max(1, w) // step * step)  # strips on the lattice
    out = Image.new("RGB", (w, h))
    samples: list[NDArray[np.uint8]] = []
    for y in range(0, h, rows):
        part = im.crop((0, y, w, min(h, y + rows)))
        if alpha is not None and _has_alpha(part):
            part = part.convert("RGBA")
            samples.append(np.asarray(part)[::step, ::step].reshape(-1, 4))
        out.paste(_strip_to_rgb(part, background, hi), (0, y))
        del part
    if samples:
        assert alpha is not None
        alpha.add_sample(np.concatenate(samples))
    return out


def _strip_to_rgb(im: Image.Image, background: tuple[int, int, int],
                  hi: float) -> Image.Image:
    if im.mode.startswith("I;16"):  # 0..65535 to 0..255 exactly, in integers
        grey = (np.asarray(im).astype(np.uint32) // 257).astype(np.uint8)
        im = Image.fromarray(grey, "L")
    elif im.mode in ("I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8), "L")
    if _has_alpha(im):
        base = Image.new("RGBA", im.size, (*background, 255))
        return Image.alpha_composite(base, im.convert("RGBA")).convert("RGB")
    return im.convert("RGB")


def _turn(im: Image.Image) -> Image.Transpose | None:
    """How ``im``'s EXIF orientation turns it (None: as stored)."""
    return _TURNS.get(im.getexif().get(0x0112, 1))


def _may_turn(im: Image.Image) -> bool:
    """Whether ``im`` may need turning, from its header alone (a PNG's EXIF after its pixels
    is not read: asking would decode them)."""
    if im.format == "PNG" and "exif" not in im.info:
        return False
    try:
        return _turn(im) is not None
    except Exception:  # an unreadable EXIF block: assume the worst
        return True


_PILLOW_LIMIT_LOCK = threading.Lock()


def _allow_in_pillow(max_pixels: int) -> None:
    """Make Pillow's own decompression-bomb check no stricter than ``max_pixels``.

    Pillow keeps one limit for the whole process (``Image.MAX_IMAGE_PIXELS``, 89,478,485: a
    warning above it, an error above twice it), read by every plugin. Why this is safe across
    threads: the limit is only ever raised, under a lock, to the largest ``max_pixels`` asked
    for, never lowered or restored, so no call meets a Pillow check stricter than its own; and
    each call refuses by its own check of the header's size (``open_image``) against its own
    limit before any pixel is decoded, so a call with a lower limit still gets exactly that
    limit. (Turning the warning into an error with ``warnings.catch_warnings`` instead, as
    before, swaps the process-wide warning filters and is not thread-safe.)
    """
    with _PILLOW_LIMIT_LOCK:
        current = Image.MAX_IMAGE_PIXELS
        if current is not None and current < max_pixels:
            Image.MAX_IMAGE_PIXELS = max_pixels


def _opened(path: str | Path | BinaryIO) -> AbstractContextManager[BinaryIO]:
    """A path as an open regular file; a file object (the service passes an upload's bytes) as
    it is, left open for its owner."""
    return open_regular(path) if isinstance(path, (str, os.PathLike)) else nullcontext(path)


def open_image(
    path: str | Path,
    *,
    min_side: int | None = None,
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = 178_956_970,
    alpha: AlphaTally | None = None,
    seconds: float = DECODE_SECONDS,
) -> Image.Image:
    """Decode one image to RGB, oriented by EXIF; raise ``ImageError`` naming the problem.

    ``min_side``: a large image comes back reduced (a JPEG in its decoder, draft mode; others by
    an integer box reduction) with both sides still at least that large. Before any pixel is
    decoded, a format that is not read here, an image above ``max_pixels`` or one whose decode
    would pass ``decode_limit(max_pixels)`` bytes (``tsnegrid.decode``) is refused; decodes in
    this process share that budget and each is abandoned after ``seconds``. ``alpha`` counts the
    mostly transparent images. Whatever a decoder
    raises for one file (codecs raise ``RuntimeError``, ``struct.error``, ``IndexError``, even
    ``MemoryError``) becomes that file's ``ImageError``, so one bad file never stops a build.
    """
    first = open_images(path, (min_side,), background=background, max_pixels=max_pixels,
                        alpha=alpha, seconds=seconds)[0]
    assert first is not None
    return first


def open_images(
    path: str | Path,
    sides: Sequence[int | None],
    *,
    background: tuple[int, int, int] = (255, 255, 255),
    max_pixels: int = 178_956_970,
    alpha: AlphaTally | None = None,
    seconds: float = DECODE_SECONDS,
) -> list[Image.Image | None]:
    """One decode, one image per entry of ``sides``: each what ``open_image`` with that
    ``min_side`` would give when the decode at the first side's scale has the pixels for it
    (a JPEG decodes at the first side's DCT scale, exactly as for ``open_image``; then reduced
    by integers per side), None for a side that needs more pixels than that decode holds."""
    _allow_in_pillow(max_pixels)
    min_side = sides[0]
    try:
        with _opened(path) as fp, opened(fp, seconds=seconds) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageError(f"{w}x{h} = {w * h:,} pixels exceeds the limit of "
                                 f"{max_pixels:,} (possible decompression bomb)")
            coefficients = jpeg_coefficients(im)  # of the full size, at any draft scale
            if min_side and im.format in ("JPEG", "MPO"):
                scale = min(w, h) / min_side
                if scale >= 2:
                    im.draft("RGB", (max(1, int(w / scale)), max(1, int(h / scale))))
            drafted = im.size != (w, h)
            turned = _may_turn(im)
            cost = decode_cost(im.mode, *im.size, min_side=min_side, turned=turned,
                               coefficients=coefficients)
            cost += sum(decode_cost("RGB", *im.size, min_side=s, turned=turned)
                        - frame_bytes("RGB", *im.size) for s in sides[1:])
            check_cost(cost, max_pixels, f"{w}x{h} {im.mode}")
            with DECODES.reserve(cost, decode_limit(max_pixels)):
                im.load()
                turn = _turn(im)
                out = _to_rgb(im, background, alpha)
                images: list[Image.Image | None] = []
                for k, side in enumerate(sides):
                    if k and drafted and (side is None or min(out.size) < side):
                        images.append(None)  # the DCT-scaled decode is too small for it
                        continue
                    f = reduction(*out.size, side)
                    small = out.reduce(f) if f > 1 else out
                    images.append(small.transpose(turn) if turn is not None else small)
                return images
    except ImageError as exc:
        if str(exc).startswith(f"{path}: "):  # open_regular's own words name the path
            raise
        raise ImageError(f"{path}: {exc}") from exc.__cause__
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
