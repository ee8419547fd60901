"""Loader robustness: no decoder failure, special file or oversized limit takes a build down.

Each test reproduces one way a single bad file (or a bad folder entry) used to stop a whole build
or hang it, or to vanish without a word in report.txt.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageFile, features

from conftest import solid
from tsnegrid.cli import cli
from tsnegrid.errors import ImageError
from tsnegrid.load import open_image


def corrupt_avif(path: Path) -> Path:
    """A valid AVIF container whose AV1 payload is garbage: Pillow raises RuntimeError."""
    Image.new("RGB", (64, 64), (200, 10, 10)).save(path, format="AVIF")
    data = bytearray(path.read_bytes())
    start = data.find(b"mdat") + 4
    data[start:] = b"\xff" * (len(data) - start)
    path.write_bytes(bytes(data))
    return path


def build_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--quiet", "build", *args], catch_exceptions=False)
    return result.exit_code, result.output


needs_avif = pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")


@needs_avif
def test_corrupt_avif_is_an_image_error(tmp_path: Path) -> None:
    path = corrupt_avif(tmp_path / "bad.avif")
    with pytest.raises(ImageError, match=r"bad.avif: cannot decode \(RuntimeError: "):
        open_image(path)


@pytest.mark.parametrize("exc", [RuntimeError("codec"), struct.error("unpack"),
                                 IndexError("index"), KeyError("tag"), TypeError("type"),
                                 ZeroDivisionError("zero"), OverflowError("big"),
                                 MemoryError("alloc")])
def test_any_decoder_exception_is_an_image_error(tmp_path: Path, exc: Exception,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    solid(tmp_path / "x.png", (1, 2, 3))

    def broken_load(self: ImageFile.ImageFile) -> None:
        raise exc

    monkeypatch.setattr(ImageFile.ImageFile, "load", broken_load)
    with pytest.raises(ImageError, match=f"x.png: cannot decode \\({type(exc).__name__}"):
        open_image(tmp_path / "x.png")


@needs_avif
def test_build_skips_corrupt_avif_and_places_the_rest(tmp_path: Path, cache_dir: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        solid(src / f"g{i}.png", (40 * i, 10, 200 - 30 * i))
    corrupt_avif(src / "bad.avif")
    code, text = build_cli(str(src), "--out", str(tmp_path / "o"), "--model", "pixels",
                           "--cache-dir", str(cache_dir), "--tile", "8")
    assert code == 0, text
    report = (tmp_path / "o" / "report.txt").read_text()
    assert "images placed:  6" in report
    assert f"{src / 'bad.avif'}: cannot decode (RuntimeError: " in report
