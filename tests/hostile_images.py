"""Hostile images, small on disk and made in memory: a PNG inside an ICO that claims 256 x 256,
a progressive JPEG of repeated scans, 16-bit greyscale and one-pixel-wide PNGs of zeros."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def zeros_png(width: int, height: int, *, bits: int = 8, colour: int = 0) -> bytes:
    """A PNG of zeros (``colour``: 0 grey, 2 RGB, 4 grey + alpha, 6 RGBA), compressed as a
    stream so that no raw image is ever held."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    row = b"\0" * (1 + width * channels * bits // 8)
    per = max(1, (1 << 22) // len(row))
    z = zlib.compressobj(9)
    parts = [z.compress(row * min(per, height - y)) for y in range(0, height, per)]
    parts.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, bits, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts))
            + _chunk(b"IEND", b""))


def ico_of(payload: bytes, claimed: int = 256) -> bytes:
    """A one-entry ICO whose directory claims ``claimed`` x ``claimed`` for ``payload``."""
    side = 0 if claimed >= 256 else claimed
    return (struct.pack("<HHH", 0, 1, 1)
            + struct.pack("<BBBBHHII", side, side, 0, 0, 1, 32, len(payload), 22) + payload)


def scan_bomb(side: int, scans: int) -> bytes:
    """A grey progressive JPEG of ``side`` x ``side`` with one of its AC scans (and the
    Huffman table before it) repeated ``scans`` times: tens of bytes each, and libjpeg visits
    every block of the image for each."""
    buf = io.BytesIO()
    Image.new("L", (side, side), 128).save(buf, "JPEG", progressive=True, quality=90)
    data = buf.getvalue()
    sos = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xDA]
    last = sos[-1]  # the last scan: an AC scan, preceded by its own table
    start = data.rfind(b"\xff\xc4", 0, last)
    unit = data[start:len(data) - 2]
    return data[:len(data) - 2] + unit * scans + b"\xff\xd9"
