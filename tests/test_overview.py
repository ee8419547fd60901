"""The overview in the pyramid's low levels: representatives chosen and drawn where cells are
too small to see."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tsnegrid.regions import medoids
from tsnegrid.render.overview import CELL_PX, bake_overview, block_areas
from tsnegrid.render.pyramid import TILE_SAVE_OPTIONS, level_count, write_dzi


def test_medoids_are_the_rows_nearest_their_labels_mean() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    labels = rng.integers(0, 7, 300)
    reps = medoids(x, labels, most=3)
    assert len(reps) == 7
    for k, picked in enumerate(reps):
        members = np.flatnonzero(labels == k)
        d = ((x[members] - x[members].mean(axis=0)) ** 2).sum(axis=1)
        assert len(picked) == 3 and set(picked) <= set(members.tolist())
        assert picked == members[np.argsort(d)[:3]].tolist()


def test_blocks_are_shown_by_an_image_near_their_centre() -> None:
    rows, cols, side = 10, 13, 4
    cells = np.random.default_rng(1).permutation(rows * cols)[:100].astype(np.int64)
    areas = block_areas(cells, rows, cols, side)
    r, c = np.divmod(cells, cols)
    blocks = {(a // side, b // side) for a, b in zip(r.tolist(), c.tolist(), strict=True)}
    assert len(areas) == len(blocks) and sum(a.size for a in areas) == len(cells)
    for a in areas:
        (i,) = a.images
        assert (int(r[i]), int(c[i])) == a.anchor
        assert (a.anchor[0] // side, a.anchor[1] // side) in blocks


def test_low_levels_show_the_representative_over_a_dimmed_mosaic(tmp_path: Path) -> None:
    rows = cols = 16
    tile = 8  # 128 px; the 64 px level has 4 px cells: an overview level
    centre = 7 * cols + 7  # of the four cells nearest the middle, the first
    cells = np.arange(rows * cols, dtype=np.int64)
    colour = {centre: (220, 20, 20)}

    def load_tile(path: str | Path) -> Image.Image:
        return Image.new("RGB", (tile, tile), colour.get(int(str(path)), (250, 250, 250)))

    paths = [str(i) for i in range(len(cells))]
    pyramid = write_dzi(paths, cells, rows, cols, tmp_path, tile=tile, fmt="png",
                        load_tile=load_tile)
    levels = level_count(cols * tile, rows * tile)
    assert pyramid.levels == levels
    folder = tmp_path / "grid_files"
    top = np.asarray(Image.open(folder / str(levels - 1) / "0_0.png"))
    areas = block_areas(cells, rows, cols, 16)  # one block: the whole grid
    assert areas[0].images == (centre,)
    pil_format, options = TILE_SAVE_OPTIONS["png"]
    done = bake_overview(folder, "png", rows, cols, tile, levels, [areas],
                         lambda i, side: load_tile(str(i)).resize((side, side)),
                         lambda im, p: im.save(p, format=pil_format, **options))
    assert done == sum(tile / 2 ** (levels - 1 - lv) < CELL_PX for lv in range(levels))
    low = np.asarray(Image.open(folder / str(levels - 2) / "0_0.png"))  # 64 px, 4 px cells
    assert tuple(low[30, 30]) == (220, 20, 20)  # the representative, at the block's centre
    assert low[1, 1].max() < 0.5 * 250  # the rest dimmed
    assert np.array_equal(np.asarray(Image.open(folder / str(levels - 1) / "0_0.png")), top)
