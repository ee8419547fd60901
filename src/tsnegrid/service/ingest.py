"""Turn one uploaded input (base64 or url) into validated image bytes, or say what is wrong."""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from tsnegrid.decode import (
    ByteBudget,
    check_cost,
    decode_cost,
    frame_bytes,
    jpeg_coefficients,
    opened,
)
from tsnegrid.errors import ImageError, InputError
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.errors import LimitError
from tsnegrid.service.urlfetch import AllowList, fetch

ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    mime: str
    width: int
    height: int


def check_id(input_id: str) -> str:
    """The id if it is usable in a url path segment; ``InputError`` otherwise."""
    if not ID_PATTERN.match(input_id):
        raise InputError("id must be 1 to 128 letters, digits or _.:- characters")
    if input_id in (".", ".."):  # dot segments: clients and proxies drop them from urls
        raise InputError(f"id {input_id!r} is not allowed: '.' and '..' cannot be used in a url")
    return input_id


# Objects and lists inside one another that metadata may hold: what protobuf's decoder (a
# gRPC client's) reads of a Struct inside an input (33 levels fail there); far below the
# depth at which JSON encoders give up (pydantic's 255, Python's recursion limit).
MAX_METADATA_DEPTH = 32


def metadata_depth(value: Any, stop: int = MAX_METADATA_DEPTH + 1) -> int:
    """How deep objects and lists nest in ``value`` (a scalar: 0), counted without recursion
    and no further than ``stop``."""
    deepest, level = 0, [value]
    while level and deepest < stop:
        nested = [v for c in level if isinstance(c, dict | list)
                  for v in (c.values() if isinstance(c, dict) else c)]
        if any(isinstance(c, dict | list) for c in level):
            deepest += 1
        level = nested
    return deepest


def check_metadata(metadata: dict[str, Any] | None,
                   max_bytes: int | None = None) -> dict[str, Any]:
    """The metadata if it can be stored and answered by both transports: strict JSON (no NaN
    or Infinity), nested at most ``MAX_METADATA_DEPTH`` deep, at most ``max_bytes`` as
    compact UTF-8 JSON; ``InputError`` (``LimitError`` for the size) naming the field
    otherwise."""
    if not metadata:
        return {}
    depth = metadata_depth(metadata)
    if depth > MAX_METADATA_DEPTH:
        raise InputError(f"data.metadata is nested too deeply (objects and lists more than "
                         f"{MAX_METADATA_DEPTH} levels deep)")
    try:
        text = json.dumps(metadata, allow_nan=False, ensure_ascii=False,
                          separators=(",", ":"))
    except ValueError as exc:
        raise InputError("data.metadata holds NaN or Infinity, which JSON does not "
                         "allow") from exc
    if max_bytes is not None:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise LimitError(f"data.metadata is {size:,} bytes as JSON; the limit is "
                             f"{max_bytes:,} bytes per input")
    return metadata


class FetchSlots:
    """Bounds the url fetches in flight: ``overall`` in this server, ``per_app`` for one app,
    so that slow urls of one app cannot take every request thread of the server."""

    def __init__(self, overall: int, per_app: int, wait_s: float) -> None:
        self.per_app, self.wait_s = per_app, wait_s
        self._overall = threading.BoundedSemaphore(overall)
        self._apps: dict[int, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, app_id: int) -> Iterator[None]:
        with self._lock:
            mine = self._apps.setdefault(app_id, threading.BoundedSemaphore(self.per_app))
        if not mine.acquire(timeout=self.wait_s):
            raise LimitError(f"this app already has {self.per_app} url fetches in progress; "
                             "try again later")
        try:
            if not self._overall.acquire(timeout=self.wait_s):
                raise LimitError("the server is busy fetching other urls; try again later")
            try:
                yield
            finally:
                self._overall.release()
        finally:
            mine.release()


def image_bytes(b64: str | None, url: str | None, config: ServiceConfig,
                allow: AllowList, slots: FetchSlots | None = None, app_id: int = 0) -> bytes:
    """The raw bytes of an input: decoded base64, or the body fetched from ``url`` (within a
    fetch slot of ``slots``, when given)."""
    if (b64 is None) == (url is None):
        raise InputError("data.image needs exactly one of base64 or url")
    if b64 is not None:
        if len(b64) > config.max_image_bytes * 4 // 3 + 4:
            raise LimitError(f"image exceeds the limit of {config.max_image_bytes:,} bytes")
        try:
            data = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError("data.image.base64 is not valid base64") from exc
    else:
        assert url is not None
        with slots.slot(app_id) if slots is not None else nullcontext():
            data = fetch(url, allow=allow, timeout_s=config.url_timeout_s,
                         max_bytes=config.max_image_bytes,
                         max_redirects=config.url_max_redirects)
    if not data:
        raise ImageError("image is empty (0 bytes)")
    if len(data) > config.max_image_bytes:
        raise LimitError(f"image of {len(data):,} bytes exceeds the limit of "
                         f"{config.max_image_bytes:,} bytes")
    return data


class DecodeBudget(ByteBudget):
    """Bounds the memory of the upload checks' decodes running at once: each reserves the
    bytes of its decoded pixels and waits (up to ``wait_s``) while the reservations would pass
    ``total_bytes``; a request that waits longer is told the server is busy."""

    def __init__(self, total_bytes: int, wait_s: float = 60.0) -> None:
        super().__init__(total_bytes, wait_s)

    @contextmanager
    def reserve(self, nbytes: int, limit: int = 0) -> Iterator[None]:
        held = super().reserve(nbytes, limit)
        try:
            held.__enter__()
        except TimeoutError as exc:
            raise LimitError("the server is busy decoding other images; try again later") \
                from exc
        try:
            yield
        finally:
            held.__exit__(None, None, None)


JPEG_REDUCTION = 8  # a JPEG is checked at 1/8 of each side (its decoder scales for free)


def check_image(data: bytes, max_pixels: int,
                budget: DecodeBudget | None = None) -> CheckedImage:
    """Check that ``data`` is an image the pipeline can read, without a full-size decode where
    the format allows: the header gives format and size (a format not read here, a size over
    ``max_pixels``, a JPEG scan bomb or a decode over ``decode_limit(max_pixels)`` bytes are
    refused before any pixel is decoded), then the first frame is decoded, a JPEG at 1/8 of
    each side, within ``budget`` and ``DECODE_SECONDS``. ``ImageError`` names the problem."""
    try:
        with opened(io.BytesIO(data)) as im:
            fmt, (w, h) = im.format, im.size
            if w * h > max_pixels:
                raise ImageError(f"{w}x{h} = {w * h:,} pixels exceeds the limit of "
                                 f"{max_pixels:,} (possible decompression bomb)")
            coefficients = jpeg_coefficients(im)  # of the full size, at any draft scale
            if fmt in ("JPEG", "MPO") and min(w, h) >= 2 * JPEG_REDUCTION:
                im.draft(im.mode, (max(1, w // JPEG_REDUCTION), max(1, h // JPEG_REDUCTION)))
            dw, dh = im.size  # after draft: the size the decoder will produce
            # refused here what the pipeline could not decode and make RGB (rows, bit depth)
            check_cost(decode_cost(im.mode, dw, dh, turned=False, coefficients=coefficients),
                       max_pixels, f"{w}x{h} {im.mode}")
            cost = frame_bytes(im.mode, dw, dh) + coefficients
            with budget.reserve(cost) if budget is not None else nullcontext():
                im.load()
            mime = Image.MIME.get(fmt or "", "application/octet-stream")
            return CheckedImage(data, mime, w, h)
    except (ImageError, LimitError):
        raise
    except UnidentifiedImageError:
        raise ImageError("not an image file (unrecognised format)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"refused: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"cannot decode ({exc})") from None
    except Exception as exc:  # a decoder's own failure (RuntimeError, struct.error, ...)
        raise ImageError(f"cannot decode ({type(exc).__name__}: {exc})") from None
