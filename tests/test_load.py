"""Loading: discovery order and dedupe, every supported mode, and every rejected file."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import solid
from tsnegrid.errors import ImageError
from tsnegrid.load import discover, open_image


def test_discover_folder_recursive_sorted_and_deduplicated(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for p in ["b/z.png", "a.jpg", "b/a.webp", "c.gif"]:
        solid(tmp_path / p, (1, 2, 3))
    (tmp_path / "notes.md").write_text("not an image")
    found = discover([tmp_path, tmp_path / "a.jpg"])
    names = [p.relative_to(tmp_path).as_posix() for p in found.paths]
    assert names == ["a.jpg", "b/a.webp", "b/z.png", "c.gif"]


def test_discover_globs_list_files_and_missing(tmp_path: Path) -> None:
    for name in ["x1.png", "x2.png", "y.png"]:
        solid(tmp_path / name, (9, 9, 9))
    lst = tmp_path / "list.txt"
    lst.write_text("# comment\ny.png\n\nx1.png\n")
    found = discover([lst, str(tmp_path / "x*.png"), tmp_path / "nope.png"])
    assert [p.name for p in found.paths] == ["y.png", "x1.png", "x2.png"]
    assert [(s.path, s.reason) for s in found.skipped] == [
        (str(tmp_path / "nope.png"), "no such file or folder")]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    im.save(tmp_path / "o.jpg", exif=exif)
    assert open_image(tmp_path / "o.jpg").size == (20, 40)


def test_alpha_is_composited_on_background(tmp_path: Path) -> None:
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(tmp_path / "t.png")
    out = open_image(tmp_path / "t.png", background=(0, 0, 255))
    assert out.mode == "RGB" and out.getpixel((3, 3)) == (0, 0, 255)


@pytest.mark.parametrize("mode", ["P", "CMYK", "L", "I;16", "LA", "1"])
def test_modes_convert_to_rgb(tmp_path: Path, mode: str) -> None:
    if mode == "I;16":
        im = Image.fromarray(np.full((6, 6), 65535, dtype=np.uint16))
        path = tmp_path / "x.png"
    else:
        im = Image.new("RGB", (6, 6), (200, 100, 50)).convert(mode)
        path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    im.save(path)
    out = open_image(path)
    assert out.mode == "RGB" and out.size == (6, 6)
    if mode == "I;16":
        assert out.getpixel((0, 0)) == (255, 255, 255)


def test_gif_first_frame_and_bmp_tiff_webp(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (10, 10), c) for c in [(255, 0, 0), (0, 255, 0)]]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    assert open_image(tmp_path / "a.gif").getpixel((5, 5))[0] > 200
    for ext in ["bmp", "tiff", "webp"]:
        solid(tmp_path / f"s.{ext}", (10, 20, 30))
        assert open_image(tmp_path / f"s.{ext}").size == (40, 30)


def test_large_jpeg_decodes_at_reduced_size(tmp_path: Path) -> None:
    solid(tmp_path / "big.jpg", (50, 60, 70), size=(2000, 1600))
    out = open_image(tmp_path / "big.jpg", min_side=224)
    assert 224 <= min(out.size) < 800


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


def test_rejects_huge_dimension_png(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(ImageError, match="bomb.png: refused.*exceeds.*limit"):
        open_image(path)


def test_rejects_image_over_configured_pixel_limit(tmp_path: Path) -> None:
    solid(tmp_path / "w.png", (0, 0, 0), size=(200, 100))
    with pytest.raises(ImageError, match="20,000 pixels exceeds the limit of 10,000"):
        open_image(tmp_path / "w.png", max_pixels=10_000)


def test_rejects_zero_bytes(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match="bomb|not an image|cannot"):
        open_image(tmp_path / "empty.jpg")


def test_rejects_text_named_jpg(tmp_path: Path) -> None:
    (tmp_path / "fake.jpg").write_text("hello, I am not a JPEG")
    with pytest.raises(ImageError, match="not an image file"):
        open_image(tmp_path / "fake.jpg")


def test_rejects_truncated_jpeg(tmp_path: Path) -> None:
    solid(tmp_path / "ok.jpg", (1, 2, 3), size=(300, 300))
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.jpg: cannot decode"):
        open_image(tmp_path / "cut.jpg")


def test_rejects_corrupt_bytes(tmp_path: Path) -> None:
    (tmp_path / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(ImageError, match="c.png"):
        open_image(tmp_path / "c.png")


def test_list_file_comments_after_a_path_and_normalised_paths(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "photos").mkdir()
    for name in ["cat.png", "take#2.png", "dog.png"]:
        solid(tmp_path / "photos" / name, (5, 6, 7))
    (tmp_path / "lists" / "l.txt").write_text(
        "# a comment line\n"
        "../photos/cat.png  # the cat\n"
        "../photos/take#2.png\t# a name with # in it\n"
        "   ../photos/dog.png#not-a-comment\n"
        "../photos/missing.png # gone\n")
    found = discover([tmp_path / "lists" / "l.txt"])
    assert found.paths == (tmp_path / "photos" / "cat.png", tmp_path / "photos" / "take#2.png")
    assert [(s.path, s.reason) for s in found.skipped] == [
        (str(tmp_path / "photos" / "dog.png#not-a-comment"), "no such file"),
        (str(tmp_path / "photos" / "missing.png"), "no such file")]
    assert found.found == 4  # every path named: placed or skipped


def test_a_symlinked_list_folder_keeps_the_path_that_works(tmp_path: Path) -> None:
    (tmp_path / "real" / "lists").mkdir(parents=True)
    (tmp_path / "real" / "photos").mkdir()
    solid(tmp_path / "real" / "photos" / "a.png", (1, 1, 1))
    (tmp_path / "link").symlink_to(tmp_path / "real" / "lists")
    (tmp_path / "real" / "lists" / "l.txt").write_text("../photos/a.png\n")
    # tmp/link/../photos/a.png is tmp/real/photos/a.png to the OS, not tmp/photos/a.png
    found = discover([tmp_path / "link" / "l.txt"])
    assert len(found.paths) == 1 and found.paths[0].is_file() and not found.skipped


def test_found_counts_every_entry_a_folder_names(tmp_path: Path) -> None:
    solid(tmp_path / "a.png", (1, 2, 3))
    (tmp_path / "broken.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (tmp_path / "dir.png").mkdir()
    found = discover([tmp_path, tmp_path / "missing.png"])
    assert len(found.paths) == 1 and len(found.skipped) == 3
    assert found.found == len(found.paths) + len(found.skipped) == 4


def test_mostly_transparent_images_are_counted_with_a_background_that_shows_them(
        tmp_path: Path) -> None:
    from tsnegrid.load import AlphaTally

    rgba = np.zeros((40, 40, 4), dtype=np.uint8)
    rgba[15:25, 15:25] = (250, 250, 250, 255)  # a small white mark, the rest transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "white.png")
    opaque = rgba.copy()
    opaque[..., 3] = 255
    Image.fromarray(opaque, "RGBA").save(tmp_path / "opaque.png")
    solid(tmp_path / "rgb.png", (250, 250, 250))
    tally = AlphaTally((255, 255, 255))
    for name in ["white.png", "opaque.png", "rgb.png"]:
        open_image(tmp_path / name, alpha=tally)
    assert (tally.count, tally.faint) == (1, 1) and tally.luma == pytest.approx(250, abs=1)
    advice = tally.advice()
    assert advice is not None and "1 image is mostly transparent" in advice
    assert "1 of them has visible parts close to #ffffff" in advice
    assert "--background '#333333' would show them" in advice
    dark = AlphaTally((0, 0, 0))
    open_image(tmp_path / "white.png", background=(0, 0, 0), alpha=dark)
    assert (dark.count, dark.faint) == (1, 0)
    assert "stand out from #000000" in (dark.advice() or "")
    assert AlphaTally((255, 255, 255)).advice() is None


def test_coloured_marks_on_transparency_stand_out_from_white(tmp_path: Path) -> None:
    from tsnegrid.load import AlphaTally

    rgba = np.zeros((40, 40, 4), dtype=np.uint8)
    rgba[15:25, 15:25] = (255, 204, 77, 255)  # an emoji's yellow: light, but plainly visible
    Image.fromarray(rgba, "RGBA").save(tmp_path / "yellow.png")
    tally = AlphaTally((255, 255, 255))
    open_image(tmp_path / "yellow.png", alpha=tally)
    assert (tally.count, tally.faint) == (1, 0)
