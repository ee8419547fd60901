"""Near-duplicates: grouping by cosine similarity, shared cells, and how they are listed."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import emoji_subset
from tsnegrid import Settings, build
from tsnegrid.cli import cli
from tsnegrid.embed.dedupe import find_duplicates
from tsnegrid.errors import InputError


def test_groups_take_the_first_member_and_many_copies_join() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 16))
    x = np.vstack([base, np.repeat(base[:1], 30, axis=0) * 2.0, base[5:6] + 1e-4])
    rep = find_duplicates(x, 0.999)
    np.testing.assert_array_equal(rep[:40], np.arange(40))
    assert (rep[40:70] == 0).all() and rep[70] == 5


def test_off_and_far_apart_vectors_keep_their_own_cells() -> None:
    x = np.eye(5)
    np.testing.assert_array_equal(find_duplicates(x, 0.0), np.arange(5))
    np.testing.assert_array_equal(find_duplicates(x, 0.5), np.arange(5))


def test_build_lists_duplicates_at_their_originals_cell(tmp_path: Path, cache_dir: Path) -> None:
    src = tmp_path / "e"
    paths = emoji_subset(src, 10)
    shutil.copy(paths[0], src / "copy.png")  # exact copy
    img = Image.open(paths[3]).convert("RGBA")
    img.resize((62, 62)).resize((64, 64)).save(src / "resampled.png")  # near copy
    out = tmp_path / "o"
    layout = build([src], out, Settings(cache_dir=cache_dir, dedupe=0.97))
    assert len(layout.paths) == 10
    assert layout.duplicates == {str(src / "copy.png"): str(paths[0]),
                                 str(src / "resampled.png"): str(paths[3])}
    data = json.loads((out / "layout.json").read_text())
    assert data["counts"]["duplicates"] == 2
    cell = {r["path"]: (r["row"], r["col"]) for r in data["images"]}
    for d in data["duplicates"]:
        assert (d["row"], d["col"]) == cell[d["duplicate_of"]]
    with open(out / "layout.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and sum(bool(r["duplicate_of"]) for r in rows) == 2
    assert "near-duplicates" in (out / "report.txt").read_text()


def test_threshold_out_of_range_rejected() -> None:
    with pytest.raises(InputError, match="dedupe must be"):
        Settings(dedupe=1.5)


def test_cli_rejects_negative_dedupe(tmp_path: Path) -> None:
    emoji_subset(tmp_path / "e", 3)
    res = CliRunner().invoke(cli, ["-q", "build", str(tmp_path / "e"), "--out",
                                   str(tmp_path / "o"), "--dedupe", "-0.5"])
    assert res.exit_code == 2 and "dedupe must be" in res.output


def test_dedupe_with_coords_rejected(tmp_path: Path) -> None:
    paths = emoji_subset(tmp_path / "e", 4)
    np.save(tmp_path / "c.npy", np.random.default_rng(0).normal(size=(4, 2)))
    with pytest.raises(InputError, match="cannot be used with --coords"):
        build(paths, settings=Settings(dedupe=0.9), coords=tmp_path / "c.npy")
