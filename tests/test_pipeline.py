"""The whole job on real images: outputs, determinism, edge cases and layout quality."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import DEMO, emoji_labels, emoji_subset, noise, solid
from tsnegrid import Settings, build
from tsnegrid.errors import GridError, NoImagesError, OutputTooLargeError
from tsnegrid.metrics import neighbour_agreement

# Measured on 256 evenly spaced demo emoji with the default pipeline, seeds 0 and 1: 0.448-0.455
# (model alone: 0.407-0.451), raw pixels 0.328-0.364, random vectors 0.123-0.128 (category
# agreement with the 8 grid neighbours).
MIN_AGREEMENT = 0.40


def test_build_writes_all_outputs(emoji_dir: Path, cache_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    layout = build([emoji_dir], out, Settings(cache_dir=cache_dir, tile=16, format="png"))
    rows, cols = layout.rows, layout.cols
    assert 24 <= rows * cols < 24 + max(rows, cols)
    # look-alikes (neighbors.npy) are the viewer's: only with --html
    assert {p.name for p in out.iterdir()} == {"grid.png", "layout.csv", "layout.json",
                                               "report.txt"}
    assert Image.open(out / "grid.png").size == (cols * 16, rows * 16)
    with open(out / "layout.csv", newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0] == ["path", "row", "col", "x", "y", "concepts", "region",
                        "region_name", "coarse_region", "coarse_region_name"]
    assert len(lines) == 25
    cells = {(int(r[1]), int(r[2])) for r in lines[1:]}
    assert len(cells) == 24 and all(0 <= r < rows and 0 <= c < cols for r, c in cells)
    meta = json.loads((out / "layout.json").read_text())
    assert meta["grid"] == {"rows": rows, "cols": cols, "cells": rows * cols}
    assert meta["model"].startswith("efficientnet-lite0-")
    assert set(meta["timings"]) >= {"load", "embed", "reduce", "assign", "render"}
    assert "neighbors" not in meta["timings"] and "neighbors" not in meta
    assert set(meta["metrics"]) >= {"mean_displacement", "knn10_preservation", "dpq16"}
    assert meta["settings"]["tile"] == 16 and len(meta["images"]) == 24
    report = (out / "report.txt").read_text()
    assert "images placed:  24" in report and "dpq16" in report


def test_same_seed_same_layout(emoji_dir: Path, cache_dir: Path) -> None:
    s = Settings(cache_dir=cache_dir, seed=7)
    a, b = build([emoji_dir], None, s), build([emoji_dir], None, s)
    np.testing.assert_array_equal(a.cells, b.cells)
    np.testing.assert_array_equal(a.coords, b.coords)


def test_corrupt_files_are_skipped_and_reported(emoji_dir: Path, cache_dir: Path,
                                                tmp_path: Path) -> None:
    (emoji_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (emoji_dir / "empty.jpg").write_bytes(b"")
    layout = build([emoji_dir, tmp_path / "missing"], tmp_path / "o",
                   Settings(cache_dir=cache_dir, tile=8))
    assert len(layout.paths) == 24
    reasons = {Path(s.path).name: s.reason for s in layout.skipped}
    assert set(reasons) == {"broken.png", "empty.jpg", "missing"}
    assert "broken.png" in (tmp_path / "o" / "report.txt").read_text()


def test_explicit_rectangular_grid_with_holes(emoji_dir: Path, cache_dir: Path) -> None:
    layout = build([emoji_dir], None, Settings(cache_dir=cache_dir, grid="4x10"))
    assert (layout.rows, layout.cols) == (4, 10)
    assert len(set(layout.cells.tolist())) == 24 and layout.cells.max() < 40


def test_grid_too_small(emoji_dir: Path, cache_dir: Path) -> None:
    with pytest.raises(GridError, match="too few for 24 images"):
        build([emoji_dir], None, Settings(cache_dir=cache_dir, grid="3x3"))


def test_output_too_large_is_refused_before_work(emoji_dir: Path, tmp_path: Path) -> None:
    empty_cache = tmp_path / "never-used"
    with pytest.raises(OutputTooLargeError):
        build([emoji_dir], tmp_path / "o", Settings(cache_dir=empty_cache, tile=64,
                                                    max_pixels=10_000))
    assert not empty_cache.exists()


def test_zero_images(tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoImagesError):
        build([tmp_path / "empty"], None, Settings(cache_dir=cache_dir))


def test_only_unreadable_images(tmp_path: Path, cache_dir: Path) -> None:
    (tmp_path / "a.jpg").write_text("text")
    with pytest.raises(NoImagesError, match="a.jpg: not an image"):
        build([tmp_path / "a.jpg"], None, Settings(cache_dir=cache_dir))


def test_one_image(tmp_path: Path, cache_dir: Path) -> None:
    path = noise(tmp_path / "one.png", 1)
    layout = build([path], tmp_path / "o", Settings(cache_dir=cache_dir, tile=10))
    assert (layout.rows, layout.cols) == (1, 1) and layout.cells.tolist() == [0]
    assert Image.open(tmp_path / "o" / "grid.jpg").size == (10, 10)


def test_all_identical_images(tmp_path: Path, cache_dir: Path) -> None:
    for i in range(9):
        solid(tmp_path / f"same{i}.png", (120, 30, 200))
    layout = build([tmp_path], None, Settings(cache_dir=cache_dir))
    assert (layout.rows, layout.cols) == (3, 3)
    assert sorted(layout.cells.tolist()) == list(range(9))


def test_vectors_and_coords_inputs(emoji_dir: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "v.npy", rng.normal(size=(24, 8)))
    np.save(tmp_path / "c.npy", rng.normal(size=(24, 2)))
    s = Settings(cache_dir=tmp_path / "unused")
    assert build([emoji_dir], None, s, vectors=tmp_path / "v.npy").model_id == "vectors"
    layout = build([emoji_dir], None, s, coords=tmp_path / "c.npy")
    assert "reduce" not in layout.timings and "embed" not in layout.timings
    np.save(tmp_path / "short.npy", rng.normal(size=(5, 2)))
    with pytest.raises(ValueError, match="expected shape 24 x 2"):
        build([emoji_dir], None, s, coords=tmp_path / "short.npy")


def _agreement(layout_paths: tuple[str, ...], cells: np.ndarray, rows: int, cols: int) -> float:
    labels = emoji_labels()
    return neighbour_agreement(np.array([labels[Path(p).name] for p in layout_paths]), cells,
                               rows, cols)


def test_lite0_grid_groups_categories_and_random_vectors_do_not(cache_dir: Path,
                                                                tmp_path: Path) -> None:
    paths = emoji_subset(tmp_path / "e", 256)
    layout = build([tmp_path / "e"], None, Settings(cache_dir=cache_dir))
    assert len(layout.paths) == 256
    assert _agreement(layout.paths, layout.cells, layout.rows, layout.cols) > MIN_AGREEMENT
    np.save(tmp_path / "random.npy", np.random.default_rng(0).normal(size=(len(paths), 1280)))
    rand = build([tmp_path / "e"], None, Settings(cache_dir=cache_dir),
                 vectors=tmp_path / "random.npy")
    assert _agreement(rand.paths, rand.cells, rand.rows, rand.cols) < MIN_AGREEMENT


def _counts_add_up(out: Path) -> dict[str, int]:
    doc = json.loads((out / "layout.json").read_text())
    c = doc["counts"]
    assert c["found"] == c["placed"] + c["skipped"] + c["duplicates"], c
    assert len(doc["images"]) == c["placed"] and len(doc["skipped"]) == c["skipped"]
    report = (out / "report.txt").read_text()
    assert f"images found:   {c['found']}\n" in report
    assert f"images placed:  {c['placed']}\nimages skipped: {c['skipped']}\n" in report
    return dict(c)


def test_found_is_placed_plus_skipped_plus_duplicates(tmp_path: Path, cache_dir: Path) -> None:
    emoji_subset(tmp_path / "tree" / "a", 6)
    (tmp_path / "tree" / "b").mkdir()
    (tmp_path / "tree" / "b" / "bad.png").write_text("junk")
    (tmp_path / "tree" / "b" / "broken.jpg").symlink_to(tmp_path / "nowhere.jpg")
    build([tmp_path / "tree"], tmp_path / "o1", Settings(cache_dir=cache_dir, tile=8))
    c = _counts_add_up(tmp_path / "o1")
    assert (c["found"], c["placed"], c["skipped"], c["duplicates"]) == (8, 6, 2, 0)
    lst = tmp_path / "l.txt"
    lst.write_text("tree/a/" + sorted(p.name for p in (tmp_path / "tree" / "a").iterdir())[0]
                   + "  # the first\nmissing.png\n")
    build([lst], tmp_path / "o2", Settings(cache_dir=cache_dir, tile=8))
    assert _counts_add_up(tmp_path / "o2")["found"] == 2
    shutil.copy(next((tmp_path / "tree" / "a").iterdir()), tmp_path / "tree" / "a" / "copy.png")
    build([tmp_path / "tree"], tmp_path / "o3", Settings(cache_dir=cache_dir, tile=8,
                                                         dedupe=0.98))
    c = _counts_add_up(tmp_path / "o3")
    assert c["duplicates"] >= 1 and c["found"] == 9


def test_added_images_keep_the_counts_adding_up(tmp_path: Path, cache_dir: Path) -> None:
    from tsnegrid import add

    emoji_subset(tmp_path / "old", 12)
    build([tmp_path / "old", tmp_path / "gone.png"], tmp_path / "o",
          Settings(cache_dir=cache_dir, tile=8))
    assert _counts_add_up(tmp_path / "o")["skipped"] == 1
    names = sorted(emoji_labels())
    (tmp_path / "new").mkdir()
    for name in names[-3:]:
        shutil.copy(DEMO / "images" / name, tmp_path / "new" / name)
    (tmp_path / "new" / "bad.png").write_text("junk")
    result = add([tmp_path / "new", tmp_path / "old"], tmp_path / "o")
    assert [s.path for s in result.skipped] == [str(tmp_path / "new" / "bad.png")]
    c = _counts_add_up(tmp_path / "o")
    assert (c["found"], c["placed"], c["skipped"]) == (17, 15, 2)


def test_undrawn_images_stay_placed_and_are_listed(tmp_path: Path, cache_dir: Path) -> None:
    from tsnegrid.render import render_outputs

    emoji_subset(tmp_path / "img", 6)
    layout = build([tmp_path / "img"], None, Settings(cache_dir=cache_dir, tile=8))
    gone = layout.paths[2]
    Path(gone).write_text("changed after embedding")
    drawn = render_outputs(layout, tmp_path / "o")
    assert [s.path for s in drawn.undrawn] == [gone] and drawn.skipped == layout.skipped
    from tsnegrid.output import write_outputs

    write_outputs(drawn, tmp_path / "o")
    c = _counts_add_up(tmp_path / "o")
    assert c["undrawn"] == 1 and c["placed"] == 6
    assert "placed but not drawn" in (tmp_path / "o" / "report.txt").read_text()


def test_report_says_which_background_shows_transparent_images(tmp_path: Path,
                                                               cache_dir: Path) -> None:
    (tmp_path / "img").mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        rgba = np.zeros((32, 32, 4), dtype=np.uint8)
        r0, c0 = rng.integers(0, 20, 2)
        rgba[r0:r0 + 10, c0:c0 + 10] = (245, 245, 240, 255)  # light marks on transparency
        Image.fromarray(rgba, "RGBA").save(tmp_path / "img" / f"m{i}.png")
    solid(tmp_path / "img" / "plain.png", (10, 20, 30))
    layout = build([tmp_path / "img"], tmp_path / "o", Settings(cache_dir=cache_dir, tile=16))
    assert layout.transparent == 5
    report = (tmp_path / "o" / "report.txt").read_text()
    line = next(ln for ln in report.splitlines() if ln.startswith("transparent:"))
    assert "5 images are mostly transparent" in line and "5 of them have" in line
    assert "--background '#333333' would show them" in line
    assert layout.transparent_faint == 5
    assert json.loads((tmp_path / "o" / "layout.json").read_text())["counts"][
        "transparent"] == 5
