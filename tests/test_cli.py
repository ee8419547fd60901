"""The CLI: options come from Settings, errors are one line with an exit code."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from tsnegrid.cli import cli
from tsnegrid.settings import Settings


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_every_setting_is_an_option_with_its_default() -> None:
    code, text = run("build", "--help")
    assert code == 0
    flat = " ".join(text.split())
    for f in fields(Settings):
        assert "--" + f.name.replace("_", "-") in flat
        if f.default not in ("", None) and not isinstance(f.default, bool):
            assert f"[default: {f.default}]" in flat, f.name


def test_build_command(emoji_dir: Path, cache_dir: Path, tmp_path: Path) -> None:
    code, text = run("--quiet", "build", str(emoji_dir), "--out", str(tmp_path / "o"),
                     "--cache-dir", str(cache_dir), "--tile", "12", "--format", "webp",
                     "--grid", "5x6", "--seed", "3")
    assert code == 0, text
    assert (tmp_path / "o" / "grid.webp").exists()


def test_bad_grid_string_is_one_line_and_exit_2(emoji_dir: Path, tmp_path: Path) -> None:
    code, text = run("build", str(emoji_dir), "--out", str(tmp_path / "o"), "--grid", "10by10")
    assert code == 2 and "Traceback" not in text
    assert text.strip().splitlines()[-1] == ("Error: grid: expected ROWSxCOLS (e.g. 32x32) or "
                                             "auto, got '10by10'")


def test_no_images_exit_3(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, text = run("build", str(tmp_path / "empty"), "--out", str(tmp_path / "o"))
    assert code == 3 and "no image files found" in text and "Traceback" not in text


def test_assign_command(tmp_path: Path) -> None:
    pts = np.random.default_rng(0).random((12, 2))
    np.save(tmp_path / "p.npy", pts)
    code, text = run("assign", str(tmp_path / "p.npy"), "--grid", "3x5", "--out",
                     str(tmp_path / "c.npy"))
    assert code == 0, text
    cells = np.load(tmp_path / "c.npy")
    assert cells.shape == (12,) and len(set(cells.tolist())) == 12 and cells.max() < 15


def test_assign_rejects_bad_points(tmp_path: Path) -> None:
    np.save(tmp_path / "nan.npy", np.array([[0.0, np.nan], [1.0, 1.0]]))
    code, text = run("assign", str(tmp_path / "nan.npy"), "--grid", "2x2", "--out",
                     str(tmp_path / "c.npy"))
    assert code == 2 and "NaN" in text
    np.save(tmp_path / "p.npy", np.zeros((5, 2)))
    code, text = run("assign", str(tmp_path / "p.npy"), "--grid", "2x2", "--out",
                     str(tmp_path / "c.npy"))
    assert code == 2 and "fewer than the 5 points" in text
    (tmp_path / "junk.npy").write_text("junk")
    code, text = run("assign", str(tmp_path / "junk.npy"), "--grid", "2x2", "--out",
                     str(tmp_path / "c.npy"))
    assert code == 2 and "junk.npy" in text


def test_reduce_command(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.random.default_rng(0).normal(size=(40, 6)))
    code, text = run("reduce", str(tmp_path / "v.npy"), "--out", str(tmp_path / "c.npy"),
                     "--method", "pca")
    assert code == 0, text
    assert np.load(tmp_path / "c.npy").shape == (40, 2)


def test_unwritable_output_is_one_line(emoji_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    np.save(tmp_path / "c.npy", np.random.default_rng(0).random((24, 2)))
    code, text = run("--quiet", "build", str(emoji_dir), "--coords", str(tmp_path / "c.npy"),
                     "--out", str(tmp_path / "file" / "sub"))
    assert code == 1 and "Traceback" not in text and text.startswith("Error: ")
