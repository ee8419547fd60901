"""Decoding within bounds, shared by the loader (CLI builds, the job worker, model outputs) and
the service's upload check: which formats are images here, what a decode will cost before it
runs, and how long it may take.

- Formats: JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF, opened with Pillow's plugins for those alone
  (``Image.open(..., formats=FORMATS)``). Every other format Pillow knows is refused by name:
  ICO and ICNS decode their payload inside ``Image.open``, before any size can be compared;
  EPS/PS run Ghostscript; TGA, PCX, IM and the rest are read by no camera, browser or editor
  export that a grid is made of, TGA has no signature to check, and each kept plugin is code
  that every upload reaches.
- Memory: ``decode_cost`` estimates a decode's peak from the header: Pillow's table of row
  pointers (``ROW_BYTES`` a row of every image it holds: a 1 x N image costs 8 bytes a pixel
  before its pixels), the frame's bytes per pixel by mode (1, 2 for 16 bits, 4 for the rest),
  the conversion to 8-bit RGB and, for a progressive JPEG, libjpeg's coefficients of the whole
  image (2 bytes a sample, even when it decodes at 1/8). A file whose estimate is over
  ``BYTES_PER_PIXEL`` bytes per pixel of the pixel limit is refused before decoding.
- Time: a progressive JPEG with more than ``MAX_JPEG_SCANS`` scans is refused (libjpeg visits
  every block once per scan; real encoders write about 10), and every decode reads its input
  through a clock: one still running after ``DECODE_SECONDS`` is abandoned at its next read
  (decoders read 64 KB at a time), so a slow file costs at most that, never minutes.
"""

from __future__ import annotations

import io
import mmap
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from tsnegrid.errors import ImageError

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
"""Pillow's names of the formats read here (a camera's multi-picture JPEG opens as ``MPO``)."""
SUPPORTED = "JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF"
MAX_JPEG_SCANS = 100
"""Most scans a JPEG may have: libjpeg's progressive default writes 10 (6 in grey), mozjpeg's
searched scripts under 20; a scan bomb repeats thousands of 78-byte scans."""
DECODE_SECONDS = 30.0
"""Longest one decode may run (an honest 178-megapixel PNG takes about 3 s here)."""
BYTES_PER_PIXEL = 8
"""Budget of one decode: this many bytes per pixel of the pixel limit (1.43 GB at the CLI's
default 178,956,970, 320 MB at the service's 40,000,000): an RGB image at the limit, decoded and
turned by its EXIF orientation, fits."""
ROW_BYTES = 8
"""Pillow keeps a pointer per row of every image: 8 bytes a row, whatever the width."""
JPEG_READ = 4096
"""Bytes a JPEG decoder gets per read: a read holds about 100 scans of a scan bomb."""
STRIP_PIXELS = 1 << 20
"""Conversions run over strips of about this many pixels, so no full-size temporary is made."""


class DecodeTimeout(ImageError):
    """A decode ran past its time bound."""


def pixel_bytes(mode: str) -> int:
    """Bytes Pillow stores per pixel of ``mode``."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def frame_bytes(mode: str, width: int, height: int) -> int:
    """Memory of one decoded ``mode`` frame in Pillow, its row table included."""
    return height * ROW_BYTES + width * height * pixel_bytes(mode)


def reduction(width: int, height: int, min_side: int | None) -> int:
    """The integer factor a decoded image is reduced by so that both sides stay at least
    ``min_side`` (1: none)."""
    return max(1, min(width, height) // min_side) if min_side else 1


def jpeg_coefficients(im: Image.Image) -> int:
    """Bytes libjpeg holds for a progressive JPEG's DCT coefficients (the whole image, 2 bytes a
    sample, at any draft scale: ask before ``draft``); 0 for a baseline one."""
    if im.format not in ("JPEG", "MPO") or not im.info.get("progression"):
        return 0
    w, h = im.size  # before any draft
    layers = getattr(im, "layer", None) or [("", 1, 1, 0)] * len(im.getbands())
    hmax = max(layer[1] for layer in layers) or 1
    vmax = max(layer[2] for layer in layers) or 1
    return sum(-(-w * layer[1] // (8 * hmax)) * -(-h * layer[2] // (8 * vmax)) * 128
               for layer in layers)


def decode_cost(mode: str, width: int, height: int, *, min_side: int | None = None,
                turned: bool = True, coefficients: int = 0) -> int:
    """Estimated peak bytes of decoding a ``width`` x ``height`` frame of ``mode`` and making it
    8-bit RGB (reduced for ``min_side``, turned by its EXIF orientation when ``turned``)."""
    cost = frame_bytes(mode, width, height) + coefficients
    if mode != "RGB":
        cost += frame_bytes("RGB", width, height)
    f = reduction(width, height, min_side)
    small = frame_bytes("RGB", -(-width // f), -(-height // f))
    return cost + (small if f > 1 else 0) + (small if turned else 0)


def decode_limit(max_pixels: int) -> int:
    """Bytes one decode may take under the pixel limit ``max_pixels``."""
    return BYTES_PER_PIXEL * max_pixels


def check_cost(cost: int, max_pixels: int, what: str) -> None:
    """Refuse a decode whose estimate passes the budget of ``max_pixels``."""
    if cost > decode_limit(max_pixels):
        raise ImageError(f"{what} needs about {cost / 2**20:,.0f} MiB to decode, over the "
                         f"budget of {decode_limit(max_pixels) / 2**20:,.0f} MiB "
                         f"({BYTES_PER_PIXEL} bytes per pixel of the limit of {max_pixels:,})")


class _Clocked(io.RawIOBase):
    """A file read through a clock: a read after ``deadline`` raises ``DecodeTimeout``."""

    def __init__(self, fp: BinaryIO, seconds: float) -> None:
        super().__init__()
        self._fp, self.seconds = fp, seconds
        self.deadline = time.monotonic() + seconds
        self.chunk: int | None = None  # most bytes a read returns (a JPEG's decoder takes any)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if time.monotonic() > self.deadline:
            raise DecodeTimeout(f"decoding took over {self.seconds:g} s; abandoned")
        if self.chunk is not None and (size < 0 or size > self.chunk):
            size = self.chunk
        return self._fp.read(size)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fp.seek(offset, whence)

    def tell(self) -> int:
        return self._fp.tell()


_LOOSE = frozenset({"CUR"})  # its 4 bytes are also an uncompressed TGA's first 4


def _named(prefix: bytes) -> str | None:
    """The name of the (refused) format whose signature ``prefix`` starts with, if any."""
    Image.init()
    for name, (_factory, accept) in Image.OPEN.items():
        if name not in FORMATS and name not in _LOOSE and accept is not None:
            try:
                if accept(prefix):
                    return name
            except Exception:  # a plugin's signature check on odd bytes: not that format
                continue
    return None


@contextmanager
def opened(fp: BinaryIO, *, seconds: float = DECODE_SECONDS) -> Iterator[Image.Image]:
    """``Image.open`` with the supported formats only, reading through a clock of ``seconds``;
    ``ImageError`` names a refused format, a too-slow or an implausible JPEG."""
    start = fp.tell()
    clocked = _Clocked(fp, seconds)
    try:
        im = Image.open(clocked, formats=FORMATS)  # type: ignore[arg-type]
    except UnidentifiedImageError:
        fp.seek(start)
        name = _named(fp.read(64))
        if name is None:
            raise ImageError("not an image file (unrecognised format)") from None
        raise ImageError(f"{name} files are not read here (supported: {SUPPORTED})") from None
    with im:
        if im.format in ("JPEG", "MPO") and im.info.get("progressive"):
            # only a progressive JPEG may repeat scans (a sequential one's scans each take
            # new components), so only its markers are counted: a camera's baseline JPEG
            # skips the walk (5 ms of 65 for a 12-MP photo) and the small reads
            here = fp.tell()
            fp.seek(start)
            scans = jpeg_scans(fp, start)
            fp.seek(here)
            if scans > MAX_JPEG_SCANS:
                raise ImageError(f"JPEG with over {MAX_JPEG_SCANS} scans (libjpeg reads every "
                                 f"block once per scan; real encoders write about 10): "
                                 f"refused as a scan bomb")
            # 4 KB reads: libjpeg consumes scans as they arrive, so the clock is read often
            clocked.chunk = JPEG_READ
        yield im


_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # not stuffing, a restart or a fill byte


def jpeg_scans(fp: BinaryIO, start: int = 0, stop: int = MAX_JPEG_SCANS) -> int:
    """How many scans (SOS markers) the first image of a JPEG file has, counting up to
    ``stop + 1``: its segments walked by their lengths, its entropy-coded data skipped to the
    next marker, nothing decoded. The file is mapped, not read, where it can be."""
    data: bytes | memoryview | mmap.mmap
    if isinstance(fp, io.BytesIO):
        data = fp.getbuffer()
    else:
        try:
            data = mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ)
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            data, start = fp.read(), 0
    try:
        return _count_scans(data, start, stop)
    finally:
        if isinstance(data, memoryview):
            data.release()
        elif isinstance(data, mmap.mmap):
            data.close()


def _count_scans(data: bytes | memoryview | mmap.mmap, pos: int, stop: int) -> int:
    scans, end = 0, len(data)
    pos += 2  # SOI
    while scans <= stop:
        m = _MARKER.search(data, pos)
        if m is None:
            return scans
        at = m.start()
        marker = data[at + 1]
        if marker == 0xD9 or at + 4 > end:  # EOI: the first image ends
            return scans
        if marker == 0x01:  # TEM has no length
            pos = at + 2
            continue
        pos = at + 2 + int.from_bytes(data[at + 2:at + 4], "big")
        scans += marker == 0xDA
    return scans


class ByteBudget:
    """Bytes of the decodes running at once: each reserves its estimate and waits while the
    reservations would pass the budget (a reservation larger than the whole budget runs
    alone). ``total`` 0 starts empty and rises to the largest ``limit`` a reservation names
    (this process's shared budget: a decode within its own limit always fits alone); with
    ``wait_s``, a reservation that waits longer raises ``TimeoutError``."""

    def __init__(self, total: int = 0, wait_s: float | None = None) -> None:
        self.total, self.wait_s = total, wait_s
        self.in_use = self.peak = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int, limit: int = 0) -> Iterator[None]:
        with self._cond:
            self.total = max(self.total, limit)
            need = max(1, min(nbytes, self.total))
            if not self._cond.wait_for(lambda: self.in_use + need <= self.total, self.wait_s):
                raise TimeoutError(f"waited {self.wait_s} s for {need:,} bytes of the decode "
                                   f"budget")
            self.in_use += need
            self.peak = max(self.peak, self.in_use)
        try:
            yield
        finally:
            with self._cond:
                self.in_use -= need
                self._cond.notify_all()


DECODES = ByteBudget()
"""The process's decodes (the embed stage's decoding threads, the pyramid's tile threads)."""
