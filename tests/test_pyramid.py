"""Streaming DZI pyramid: layout on disk, pixels equal to the in-memory mosaic, bounded bands."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import noise
from tsnegrid.errors import InputError
from tsnegrid.render import pyramid
from tsnegrid.render.mosaic import render_mosaic
from tsnegrid.render.pyramid import DZI_TILE, level_count, level_size, write_dzi


def _images(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [noise(folder / f"im{i:03d}.png", seed=i, size=(40 + i % 7, 36)) for i in range(n)]


def _stitch(level_dir: Path, size: tuple[int, int], fmt: str) -> Image.Image:
    """Reassemble one level from its tiles, checking every tile's size on the way."""
    w, h = size
    canvas = Image.new("RGB", size)
    for row, y in enumerate(range(0, h, DZI_TILE)):
        for col, x in enumerate(range(0, w, DZI_TILE)):
            with Image.open(level_dir / f"{col}_{row}.{fmt}") as t:
                assert t.size == (min(DZI_TILE, w - x), min(DZI_TILE, h - y))
                canvas.paste(t.convert("RGB"), (x, y))
    n_tiles = -(-w // DZI_TILE) * -(-h // DZI_TILE)
    assert len(list(level_dir.iterdir())) == n_tiles
    return canvas


def _halve(im: Image.Image, times: int) -> Image.Image:
    for _ in range(times):
        im = im.reduce(2)
    return im


def test_level_sizes_follow_the_dzi_rule() -> None:
    assert level_count(1, 1) == 1
    assert level_count(256, 100) == 9
    assert level_count(257, 10) == 10
    assert level_size(300, 200, 9, 9) == (300, 200)
    assert level_size(300, 200, 8, 9) == (150, 100)
    assert level_size(301, 201, 8, 9) == (151, 101)
    assert level_size(301, 201, 0, 9) == (1, 1)


@pytest.mark.parametrize(("rows", "cols", "tile"), [(5, 7, 48), (3, 2, 300)])
def test_every_level_equals_the_mosaic_halved(tmp_path: Path, rows: int, cols: int,
                                              tile: int) -> None:
    n = rows * cols - 2  # two holes
    paths = _images(tmp_path / "img", n)
    cells = np.random.default_rng(1).permutation(rows * cols)[:n].astype(np.int64)
    background = (10, 200, 30)
    result = write_dzi(paths, cells, rows, cols, tmp_path / "out", tile=tile,
                       background=background, fmt="png", workers=2)

    assert result.dzi == tmp_path / "out" / "grid.dzi"
    assert (result.width, result.height) == (cols * tile, rows * tile)
    root = ET.parse(result.dzi).getroot()
    assert root.tag == "{http://schemas.microsoft.com/deepzoom/2008}Image"
    assert (root.get("TileSize"), root.get("Overlap"), root.get("Format")) == ("256", "0", "png")
    size = root.find("{http://schemas.microsoft.com/deepzoom/2008}Size")
    assert size is not None and size.get("Width") == str(cols * tile)

    mosaic, failed = render_mosaic(paths, cells, rows, cols, tile=tile, background=background)
    assert not failed and not result.failed
    top = result.levels - 1
    files = tmp_path / "out" / "grid_files"
    assert sorted(int(p.name) for p in files.iterdir()) == list(range(result.levels))
    for level in range(result.levels):
        size_l = level_size(result.width, result.height, level, top)
        got = _stitch(files / str(level), size_l, "png")
        want = _halve(mosaic, top - level)
        assert want.size == size_l
        assert np.array_equal(np.asarray(got), np.asarray(want)), f"level {level}"


def test_each_image_is_decoded_once_even_when_cells_span_bands(tmp_path: Path) -> None:
    calls: list[str] = []

    def load(path: str | Path) -> Image.Image:
        calls.append(str(path))
        return Image.new("RGB", (300, 300), (len(calls) * 7 % 256, 0, 0))

    write_dzi([f"p{i}" for i in range(4)], np.arange(4), 2, 2, tmp_path, tile=300,
              load_tile=load)
    assert sorted(calls) == ["p0", "p1", "p2", "p3"]


def test_bands_never_exceed_one_tile_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The streaming promise: no image taller than one DZI tile row is ever allocated."""
    heights: list[int] = []
    real_new = Image.new

    def spy(mode: str, size: tuple[int, int], *args: object, **kw: object) -> Image.Image:
        heights.append(size[1])
        return real_new(mode, size, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pyramid.Image, "new", spy)
    rows, cols, tile = 40, 30, 32  # 960 x 1280 px at full resolution
    tile_img = real_new("RGB", (tile, tile), (90, 90, 200))
    result = write_dzi([f"p{i}" for i in range(rows * cols)], np.arange(rows * cols), rows, cols,
                       tmp_path, tile=tile, load_tile=lambda p: tile_img)
    assert result.height == 1280 and heights and max(heights) <= DZI_TILE


def test_unreadable_images_are_reported_and_left_as_background(tmp_path: Path) -> None:
    paths = _images(tmp_path / "img", 3)
    bad = tmp_path / "img" / "broken.png"
    bad.write_bytes(b"not a png")
    result = write_dzi([*paths, bad], np.arange(4), 2, 2, tmp_path / "out", tile=16,
                       background=(0, 0, 255), fmt="png")
    assert [s.path for s in result.failed] == [str(bad)]
    top = tmp_path / "out" / "grid_files" / str(result.levels - 1) / "0_0.png"
    with Image.open(top) as im:
        assert im.convert("RGB").getpixel((24, 24)) == (0, 0, 255)


def test_rewrite_removes_stale_levels(tmp_path: Path) -> None:
    tile_img = Image.new("RGB", (64, 64))
    write_dzi(["a"] * 64, np.arange(64), 8, 8, tmp_path, tile=64, load_tile=lambda p: tile_img)
    small = write_dzi(["a"], np.arange(1), 1, 1, tmp_path, tile=64, load_tile=lambda p: tile_img)
    assert len(list((tmp_path / "grid_files").iterdir())) == small.levels == 7


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"cells": np.arange(3)}, "paths but"),
    ({"cells": np.array([0, 9])}, "cells must lie"),
    ({"fmt": "gif"}, "tile format"),
    ({"tile": 0}, "has no pixels"),
])
def test_rejected_inputs(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"cells": np.arange(2), "tile": 8, "fmt": "jpg"}
    args.update(kwargs)
    with pytest.raises(InputError, match=message):
        write_dzi(["a", "b"], args.pop("cells"), 3, 3, tmp_path, **args)  # type: ignore[arg-type]


def _smooth(path: Path, seed: int, size: tuple[int, int]) -> Path:
    """A colour gradient (JPEG keeps it within a few levels, unlike noise)."""
    rng = np.random.default_rng(seed)
    lo, hi = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, size[0])[None, :, None]
    arr = lo + (hi - lo) * np.broadcast_to(ramp, (size[1], size[0], 3))
    Image.fromarray(arr.astype(np.uint8)).save(path)
    return path


def _jpeg_tiles(level: Image.Image) -> Image.Image:
    """The reference: ``level`` cut into DZI tiles, each through Pillow's JPEG at quality 85."""
    out = Image.new("RGB", level.size)
    for y in range(0, level.height, DZI_TILE):
        for x in range(0, level.width, DZI_TILE):
            buf = io.BytesIO()
            level.crop((x, y, min(x + DZI_TILE, level.width),
                        min(y + DZI_TILE, level.height))).save(buf, "JPEG", quality=85)
            with Image.open(buf) as t:
                out.paste(t.convert("RGB"), (x, y))
    return out


def test_jpeg_tiles_match_a_pillow_reference_with_holes_and_failures(tmp_path: Path) -> None:
    """Layout and (within JPEG's error) pixels of every level against the in-memory mosaic,
    halved by Pillow: cells straddle band edges, four cells are holes, two images fail."""
    rows, cols, tile = 6, 5, 56  # 280 x 336 px: 2 x 2 tiles at the top, bands cut cell rows
    folder = tmp_path / "img"
    folder.mkdir()
    paths = [_smooth(folder / f"g{i:02d}.png", i, (50 + i % 9, 60)) for i in range(24)]
    for name in ("bad1.png", "bad2.png"):
        (folder / name).write_bytes(b"not a png")
        paths.append(folder / name)
    cells = np.random.default_rng(3).permutation(rows * cols)[:len(paths)].astype(np.int64)
    background = (30, 60, 90)
    result = write_dzi(paths, cells, rows, cols, tmp_path / "out", tile=tile,
                       background=background, fmt="jpg")

    mosaic, failed = render_mosaic(paths, cells, rows, cols, tile=tile, background=background)
    assert [s.path for s in result.failed] == [s.path for s in failed] == [str(p) for p in
                                                                          paths[-2:]]
    files = tmp_path / "out" / "grid_files"
    top = result.levels - 1
    want_names = set()
    for level in range(result.levels):
        w, h = level_size(result.width, result.height, level, top)
        want_names |= {f"{level}/{c}_{r}.jpg" for c in range(-(-w // DZI_TILE))
                       for r in range(-(-h // DZI_TILE))}
    got_names = {p.relative_to(files).as_posix() for p in files.rglob("*") if p.is_file()}
    assert got_names == want_names
    for level in range(result.levels):
        size_l = level_size(result.width, result.height, level, top)
        got = np.asarray(_stitch(files / str(level), size_l, "jpg"), np.int16)
        want = _halve(mosaic, top - level)
        ref = np.asarray(_jpeg_tiles(want), np.int16)
        assert np.abs(got - ref).mean() < 1.0, f"level {level}"
        if min(size_l) >= 128:  # chroma subsampling blurs the small levels' 1-2 px cells
            assert np.abs(got - np.asarray(want, np.int16)).mean() < 3.5, f"level {level}"
    # a hole and a failed image are background at full resolution
    full = _stitch(files / str(top), (result.width, result.height), "jpg")
    for cell in range(rows * cols):
        if cell not in cells[:24]:
            r, c = divmod(cell, cols)
            centre = np.asarray(full.getpixel((c * tile + tile // 2, r * tile + tile // 2)))
            assert np.abs(centre - background).max() <= 6


def test_every_image_is_loaded_once_in_chunks(tmp_path: Path) -> None:
    calls: list[str] = []
    thumb = Image.new("RGB", (48, 48), (200, 10, 10))

    def load(path: str | Path) -> Image.Image:
        calls.append(str(path))
        return thumb

    n, side = 600, 25  # 1,200 px: 48 px rows straddle the 256 px bands
    cells = np.random.default_rng(0).permutation(side * side)[:n].astype(np.int64)
    write_dzi([f"p{i}" for i in range(n)], cells, side, side, tmp_path, tile=48, load_tile=load,
              workers=3)
    assert sorted(calls) == sorted(f"p{i}" for i in range(n))


def test_a_failing_load_publishes_no_dzi(tmp_path: Path) -> None:
    def load(path: str | Path) -> Image.Image:
        if path == "p40":
            raise RuntimeError("disk gone")
        return Image.new("RGB", (32, 32))

    with pytest.raises(RuntimeError, match="disk gone"):
        write_dzi([f"p{i}" for i in range(64)], np.arange(64), 8, 8, tmp_path, tile=32,
                  load_tile=load)
    assert not (tmp_path / "grid.dzi").exists()


def test_a_failing_tile_write_publishes_no_dzi(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(self: object, band: Image.Image) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pyramid._LevelWriter, "_write_tiles", full_disk)
    tile_img = Image.new("RGB", (32, 32))
    with pytest.raises(OSError, match="No space"):
        write_dzi(["a"] * 64, np.arange(64), 8, 8, tmp_path, tile=32,
                  load_tile=lambda p: tile_img)
    assert not (tmp_path / "grid.dzi").exists()
