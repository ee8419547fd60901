"""Decoding within bounds: formats not read here are refused by name before their plugin runs,
JPEG scan bombs are refused from their markers, slow decodes are abandoned, and a decode's
memory (row table, bit depth) is estimated and bounded before any pixel is decoded."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile

from conftest import solid
from hostile_images import ico_of, scan_bomb, zeros_png
from tsnegrid import decode
from tsnegrid.decode import decode_cost, decode_limit, frame_bytes, jpeg_coefficients, jpeg_scans
from tsnegrid.errors import ImageError
from tsnegrid.load import AlphaTally, open_image
from tsnegrid.service.ingest import DecodeBudget, check_image

SUPPORTED = "supported: JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF"


def encoded(fmt: str, size: tuple[int, int] = (40, 30), mode: str = "RGB",
            **options: Any) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (10, 200, 30)[:len(mode)] if mode != "L" else 90).save(
        buf, fmt, **options)
    return buf.getvalue()


def no_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_an_ico_is_refused_before_its_payload_is_decoded(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Its directory claims 256 x 256; Pillow decoded the 3000 x 3000 PNG inside Image.open."""
    data = ico_of(zeros_png(3000, 3000, colour=6))
    for name in ("icon.ico", "icon.jpg"):
        (tmp_path / name).write_bytes(data)
    no_decode(monkeypatch)
    for name in ("icon.ico", "icon.jpg"):
        with pytest.raises(ImageError, match=f"{name}: ICO files are not read here \\({SUPPORTED}"):
            open_image(tmp_path / name)
    with pytest.raises(ImageError, match="^ICO files are not read here"):
        check_image(data, 40_000_000, DecodeBudget(2**30))


@pytest.mark.parametrize(("data", "words"), [
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "EPS files are not read"),
    (encoded("PCX"), "PCX files are not read"),
    (encoded("TGA"), "not an image file"),  # TGA has no signature: nothing to name it by
])
def test_other_formats_are_refused_by_name(tmp_path: Path, data: bytes, words: str) -> None:
    (tmp_path / "x.jpg").write_bytes(data)
    with pytest.raises(ImageError, match=f"x.jpg: {words}"):
        open_image(tmp_path / "x.jpg")
    with pytest.raises(ImageError, match=words):
        check_image(data, 40_000_000)


def test_the_supported_formats_still_open(tmp_path: Path) -> None:
    for fmt in ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"):
        (tmp_path / f"x.{fmt}").write_bytes(encoded(fmt))
        assert open_image(tmp_path / f"x.{fmt}").size == (40, 30), fmt
        assert check_image(encoded(fmt), 40_000_000).width == 40


def test_scans_are_counted_from_the_markers() -> None:
    assert jpeg_scans(io.BytesIO(encoded("JPEG"))) == 1
    assert jpeg_scans(io.BytesIO(encoded("JPEG", (300, 200), progressive=True))) == 10
    assert jpeg_scans(io.BytesIO(encoded("JPEG", (300, 200), "L", progressive=True))) == 6
    assert jpeg_scans(io.BytesIO(scan_bomb(64, 40))) == 46
    assert jpeg_scans(io.BytesIO(scan_bomb(64, 4000))) == decode.MAX_JPEG_SCANS + 1  # stops


def test_a_scan_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    """2,000 repeated AC scans of a 1024 x 1024 JPEG (72 KB): 5 s of libjpeg, accepted before."""
    data = scan_bomb(1024, 2000)
    (tmp_path / "bomb.jpg").write_bytes(data)
    t0 = time.monotonic()
    with pytest.raises(ImageError, match="bomb.jpg: JPEG with over 100 scans"):
        open_image(tmp_path / "bomb.jpg", min_side=224)
    with pytest.raises(ImageError, match="^JPEG with over 100 scans"):
        check_image(data, 40_000_000)
    assert time.monotonic() - t0 < 1.5
    ok = encoded("JPEG", (300, 200), progressive=True)
    (tmp_path / "ok.jpg").write_bytes(ok)
    assert open_image(tmp_path / "ok.jpg").size == (300, 200)
    assert check_image(ok, 40_000_000).width == 300


def test_a_slow_decode_is_abandoned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the scan bound lifted, the clock stops the same bomb: it reads 4 KB at a time."""
    monkeypatch.setattr(decode, "MAX_JPEG_SCANS", 10**6)
    (tmp_path / "slow.jpg").write_bytes(scan_bomb(1024, 2000))
    t0 = time.monotonic()
    with pytest.raises(ImageError, match=r"slow.jpg: decoding took over 0.3 s; abandoned"):
        open_image(tmp_path / "slow.jpg", seconds=0.3)
    assert time.monotonic() - t0 < 2.0


def test_the_cost_counts_rows_bit_depth_and_conversion() -> None:
    assert frame_bytes("L", 1, 1000) == 1000 * (8 + 1)
    assert frame_bytes("I;16", 100, 10) == 10 * 8 + 100 * 10 * 2
    assert frame_bytes("RGB", 10, 10) == 10 * 8 + 400  # Pillow stores RGB in 4 bytes
    # 16-bit grey: the frame and its RGB copy, turned; a 1 x N strip: 21 bytes a row
    assert decode_cost("I;16", 100, 100, turned=False) == 100 * 8 + 20_000 + 100 * 8 + 40_000
    assert decode_cost("L", 1, 10**6, turned=False) == 21 * 10**6
    assert decode_limit(40_000_000) == 320_000_000


def test_a_progressive_jpeg_counts_its_coefficients_at_full_size() -> None:
    """libjpeg keeps every block's coefficients of a progressive JPEG, even decoding at 1/8."""
    with Image.open(io.BytesIO(encoded("JPEG", (320, 240), progressive=True))) as im:
        assert jpeg_coefficients(im) == (40 * 30 + 2 * 20 * 15) * 128  # 4:2:0
    with Image.open(io.BytesIO(encoded("JPEG", (320, 240)))) as im:
        assert jpeg_coefficients(im) == 0


def test_a_one_pixel_wide_image_is_refused_by_its_rows(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """1 x 30,000,000 is within 40,000,000 pixels, but its rows cost 8 bytes each, twice."""
    data = zeros_png(1, 30_000_000)
    (tmp_path / "strip.png").write_bytes(data)
    no_decode(monkeypatch)
    with pytest.raises(ImageError, match=r"strip.png: 1x30000000 L needs about 601 MiB to "
                                         r"decode, over the budget of 305 MiB"):
        open_image(tmp_path / "strip.png", max_pixels=40_000_000)
    with pytest.raises(ImageError, match="^1x30000000 L needs about 601 MiB"):
        check_image(data, 40_000_000, DecodeBudget(2**30))


def test_sixteen_bit_grey_is_exact_in_integers(tmp_path: Path) -> None:
    values = np.array([[0, 256, 257, 514, 65534, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g.png")
    out = np.asarray(open_image(tmp_path / "g.png"))[0, :, 0]
    assert out.tolist() == [0, 0, 1, 2, 254, 255]


def peak_mib(code: str) -> float:
    """Peak RSS growth (MiB) of ``code`` run in a fresh interpreter after the imports."""
    script = ("import resource, sys\nfrom tsnegrid.load import open_image\n"
              "from tsnegrid.embed.features import colour_descriptor\n"
              "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n" + code +
              "\nprint((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    return float(done.stdout.split()[-1])


def test_sixteen_bit_grey_decodes_without_float64(tmp_path: Path) -> None:
    """4000 x 4000 at 16 bits: the frame (32 MB) and its RGB copy (64 MB); 432 MB before."""
    (tmp_path / "g16.png").write_bytes(zeros_png(4000, 4000, bits=16))
    grown = peak_mib(f"open_image({str(tmp_path / 'g16.png')!r})")
    assert grown < 130, f"{grown:.0f} MiB"


def test_a_long_strip_within_budget_is_described_in_bounded_memory(tmp_path: Path) -> None:
    """1 x 4,000,000: decoded (84 MB with its rows) and its colour described without the
    resize buffer of about 27 bytes a row and an RGB copy (240 MB before)."""
    (tmp_path / "strip.png").write_bytes(zeros_png(1, 4_000_000))
    grown = peak_mib(f"im = open_image({str(tmp_path / 'strip.png')!r}, min_side=224)\n"
                     "colour_descriptor(im)")
    assert grown < 150, f"{grown:.0f} MiB"


def test_large_images_come_back_reduced_and_composited_by_strips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (1500, 1400, 4), dtype=np.uint8)  # 2 Mpx: several strips
    rgba[..., 3] = np.where(rng.random((1500, 1400)) < 0.7, 0, rgba[..., 3])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    tally = AlphaTally((0, 0, 0))
    full = open_image(tmp_path / "a.png", background=(0, 0, 0), alpha=tally)
    base = Image.new("RGBA", (1400, 1500), (0, 0, 0, 255))
    expected = Image.alpha_composite(base, Image.fromarray(rgba, "RGBA")).convert("RGB")
    assert np.array_equal(np.asarray(full), np.asarray(expected))
    reference = AlphaTally((0, 0, 0))
    reference.add(rgba)
    assert (tally.count, tally.faint, tally.luma) == (reference.count, reference.faint,
                                                      reference.luma) == (1, 0, 0.0)
    small = open_image(tmp_path / "a.png", min_side=224)
    assert small.size == (-(-1400 // 6), -(-1500 // 6))
    solid(tmp_path / "b.jpg", (1, 2, 3), size=(2000, 1600))
    assert 224 <= min(open_image(tmp_path / "b.jpg", min_side=224).size) < 448
