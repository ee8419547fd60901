"""Streaming DZI pyramid: layout on disk, pixels equal to the in-memory mosaic, bounded bands."""

from __future__ import annotations

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
