"""The CLI: options come from Settings, errors are one line with an exit code."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
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
    assert code == 2 and "Traceback" not in text
    assert text == (f"Error: {tmp_path / 'file' / 'sub'}: cannot make the output folder "
                    "(Not a directory)\n")


# ---- a new user's paper cuts --------------------------------------------------------------------

def _photo(path: Path, seed: int) -> Path:
    """A small noisy RGB photo (distinct content per seed)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("n", [1, 2])
def test_one_or_two_images_build_with_the_viewer_and_no_warning(
        tmp_path: Path, cache_dir: Path, n: int, caplog: pytest.LogCaptureFixture) -> None:
    images = [str(_photo(tmp_path / f"p{i}.png", i)) for i in range(n)]
    code, text = run("build", *images, "--out", str(tmp_path / "o"), "--html", "--quiet",
                     "--cache-dir", str(cache_dir))
    assert code == 0, text
    assert text == "" and not [r for r in caplog.records if r.levelno >= 30]
    doc = json.loads((tmp_path / "o" / "layout.json").read_text())
    assert doc["counts"]["placed"] == n and (tmp_path / "o" / "index.html").is_file()
    assert np.load(tmp_path / "o" / "neighbors.npy").shape == (n, n - 1)


def test_identical_vectors_still_warn(caplog: pytest.LogCaptureFixture) -> None:
    from tsnegrid.reduce.validate import trivial_layout

    assert trivial_layout(np.ones((1, 4))) is not None and not caplog.records
    assert trivial_layout(np.ones((3, 4))) is not None
    assert "all 3 vectors are identical" in caplog.text


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_and_quiet_work_before_and_after_the_command(tmp_path: Path, where: str) -> None:
    np.save(tmp_path / "v.npy", np.random.default_rng(0).normal(size=(10, 3)))
    command = ["reduce", str(tmp_path / "v.npy"), "--out", str(tmp_path / "c.npy"), "--method",
               "pca"]
    code, text = run(*(["--quiet", *command] if where == "before" else [*command, "-q"]))
    assert code == 0 and text == ""
    (tmp_path / "junk.npy").write_text("junk")
    bad = ["reduce", str(tmp_path / "junk.npy"), "--out", str(tmp_path / "c.npy")]
    code, text = run(*bad)
    assert code == 2 and "Traceback" not in text
    with pytest.raises(Exception, match="junk.npy"):  # --debug: the exception itself
        run(*(["--debug", *bad] if where == "before" else [*bad, "--debug"]))


def test_internal_error_names_an_option_the_command_takes(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import tsnegrid.reduce as reduce_mod

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(reduce_mod, "reduce", broken)
    np.save(tmp_path / "v.npy", np.zeros((4, 3)))
    args = ["reduce", str(tmp_path / "v.npy"), "--out", str(tmp_path / "c.npy")]
    code, text = run(*args)
    assert code == 70 and "run with --debug" in text
    with pytest.raises(ZeroDivisionError):  # typed where the message suggests: it works
        run(*args, "--debug")


def test_a_bad_out_is_refused_before_any_work(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import tsnegrid.pipeline as pipeline

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("discovery ran before --out was checked")

    monkeypatch.setattr(pipeline, "discover", no_work)
    (tmp_path / "existing.txt").write_text("x")
    code, text = run("build", "imgs", "--out", str(tmp_path / "existing.txt"))
    assert code == 2
    assert text.startswith(f"Error: {tmp_path / 'existing.txt'}: exists and is not a folder")
    assert len(text.splitlines()) == 1


def test_an_unwritable_out_folder_is_one_line(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os
    import tempfile

    import tsnegrid.pipeline as pipeline

    monkeypatch.setattr(pipeline, "discover", lambda *a: pytest.fail("work before the check"))
    (tmp_path / "ro").mkdir()

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    code, text = run("build", "imgs", "--out", str(tmp_path / "ro"))
    assert (code, text) == (2, f"Error: {tmp_path / 'ro'}: cannot write into the output folder "
                               "(Read-only file system)\n")
    code, text = run("build", "imgs", "--out", str(tmp_path / "ro" / "new"))
    assert (code, text) == (2, f"Error: {tmp_path / 'ro' / 'new'}: cannot make the output "
                               "folder (Read-only file system)\n")
    assert not (tmp_path / "ro" / "new").exists()  # the check leaves nothing behind


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                    reason="needs root and unshare for a read-only bind mount")
def test_a_read_only_mount_is_refused_by_the_command(tmp_path: Path, emoji_dir: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    cmd = (f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} || exit 99; "
           f"{sys.executable} -c 'from tsnegrid.cli import main; main()' build {emoji_dir} "
           f"--out {ro} --quiet")
    out = subprocess.run(["unshare", "-m", "sh", "-c", cmd], capture_output=True, text=True,
                         timeout=120)
    if out.returncode == 99:
        pytest.skip("bind mounts are not allowed here")
    assert out.returncode == 2
    assert out.stderr == (f"Error: {ro}: cannot write into the output folder (Read-only file "
                          "system)\n")


def test_npy_outputs_are_checked_first_and_named_when_written(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.random.default_rng(0).normal(size=(30, 4)))
    code, text = run("reduce", str(tmp_path / "v.npy"), "--out", str(tmp_path), "--method",
                     "pca")
    assert code == 2 and "is a directory" in text  # click's own check of the option
    (tmp_path / "file").write_text("x")
    code, text = run("reduce", str(tmp_path / "v.npy"), "--out", str(tmp_path / "file" / "c.npy"))
    assert (code, text) == (2, f"Error: {tmp_path / 'file' / 'c.npy'}: {tmp_path / 'file'} is "
                               "not a folder\n")
    code, text = run("reduce", str(tmp_path / "v.npy"), "--out", str(tmp_path / "new" / "c"),
                     "--method", "pca", "-q")
    assert (code, text) == (0, "") and (tmp_path / "new" / "c.npy").is_file()
    code, text = run("reduce", str(tmp_path / "v.npy"), "--out", str(tmp_path / "coords"),
                     "--method", "pca")
    assert code == 0
    assert text == (f"reduced 30 4-d vectors to 2-D (pca, seed 0); wrote "
                    f"{tmp_path / 'coords.npy'}\n")
    code, text = run("assign", str(tmp_path / "coords.npy"), "--grid", "5x6", "--out",
                     str(tmp_path / "cells.npy"))
    assert code == 0 and text == (f"assigned 30 points to distinct cells of a 5x6 grid (auto, "
                                  f"sqeuclidean); wrote {tmp_path / 'cells.npy'}\n")
    assert sorted(np.load(tmp_path / "cells.npy").tolist()) == list(range(30))


def test_quiet_hides_bars_and_summary_but_lists_what_was_skipped(emoji_dir: Path,
                                                                 cache_dir: Path,
                                                                 tmp_path: Path) -> None:
    (emoji_dir / "broken.png").write_text("not a png")
    code, text = run("build", str(emoji_dir), "--out", str(tmp_path / "o"), "--quiet",
                     "--cache-dir", str(cache_dir), "--tile", "8")
    assert code == 0
    assert text == (f"  skipped {emoji_dir / 'broken.png'}: not an image file (unrecognised "
                    "format)\n")
    code, text = run("build", str(emoji_dir), "--out", str(tmp_path / "o"),
                     "--cache-dir", str(cache_dir), "--tile", "8")
    assert "placed 24 images on a" in text and "skipped 1;" in text
    assert text.count("embed") == text.count("embed  :")  # one bar, not two empty ones
    assert not re.search(r"(?<![\d.])0img", text)  # no empty bar ("277.20img/s" is a rate)
    assert "24/25" not in text and "25/25" in text


def test_the_embed_bar_counts_images_identical_and_cached_ones_included(
        tmp_path: Path, cache_dir: Path) -> None:
    from tsnegrid import build

    for i in range(4):
        _photo(tmp_path / f"p{i}.png", 100 + i)
    shutil.copy(tmp_path / "p0.png", tmp_path / "same.png")  # byte-identical
    seen: list[tuple[int, int]] = []
    layout = build([tmp_path], None, Settings(cache_dir=cache_dir),
                   progress=lambda stage, done, total: seen.append((done, total))
                   if stage == "embed" else None)
    assert len(layout.paths) == 5 and seen[-1] == (5, 5) and seen[0][1] == 5
    seen.clear()
    build([tmp_path], None, Settings(cache_dir=cache_dir),
          progress=lambda stage, done, total: seen.append((done, total))
          if stage == "embed" else None)
    assert seen == [(5, 5)]  # all cached: one full bar
