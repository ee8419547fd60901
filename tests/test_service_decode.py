"""Checking uploaded images without unbounded memory: the header first (size refused before
any pixel is decoded), a JPEG at 1/8 of each side, and decodes bounded by a shared budget."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
from PIL import Image, ImageFile

from tsnegrid.decode import frame_bytes
from tsnegrid.errors import ImageError
from tsnegrid.service.ingest import DecodeBudget, check_image


def encoded(w: int, h: int, fmt: str, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    im = Image.new(mode, (w, h), (30, 60, 90, 255)[:len(mode)])
    im.paste((200, 10, 10, 255)[:len(mode)], (0, 0, w // 2, h // 2))
    im.save(buf, fmt)
    return buf.getvalue()


def test_concurrent_decodes_stay_within_the_budget() -> None:
    data = encoded(2000, 2000, "PNG", "RGBA")  # 16 MB decoded, a few KB encoded
    budget = DecodeBudget(20 * 2**20)
    results: list[Any] = []

    def check() -> None:
        results.append(check_image(data, 40_000_000, budget))

    threads = [threading.Thread(target=check) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [(r.width, r.height, r.mime) for r in results] == [(2000, 2000, "image/png")] * 4
    assert budget.peak == frame_bytes("RGBA", 2000, 2000)  # one at a time: two would not fit
    assert budget.in_use == 0


def test_a_jpeg_is_checked_at_an_eighth_of_each_side() -> None:
    budget = DecodeBudget(2**30)
    checked = check_image(encoded(4000, 3000, "JPEG"), 40_000_000, budget)
    assert (checked.width, checked.height, checked.mime) == (4000, 3000, "image/jpeg")
    assert budget.peak == frame_bytes("RGB", 500, 375)


def test_too_many_pixels_are_refused_before_any_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decode(self: Any) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    with pytest.raises(ImageError, match="exceeds the limit of 1,000,000"):
        check_image(encoded(1001, 1000, "PNG"), 1_000_000, DecodeBudget(2**30))


@pytest.mark.parametrize(("data", "words"), [
    (b"not an image at all", "unrecognised format"),
    (encoded(300, 300, "PNG")[:400], "cannot decode"),
    (encoded(300, 300, "JPEG")[:200], "cannot decode"),
])
def test_broken_images_are_one_clear_reason(data: bytes, words: str) -> None:
    with pytest.raises(ImageError, match=words):
        check_image(data, 40_000_000, DecodeBudget(2**30))


def test_a_decoder_crash_is_that_images_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """Codecs raise what they like (a corrupt AVIF: RuntimeError); it is the input's error."""
    def crash(self: Any) -> None:
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", crash)
    with pytest.raises(ImageError, match="RuntimeError: decoder exploded"):
        check_image(encoded(20, 20, "PNG"), 40_000_000)
