"""Outputs are published whole: a killed rebuild leaves the old set or the new one, never a mix;
one build at a time per folder; a full disk names the file and keeps the old set; a cache that
cannot be written only costs the caching."""

from __future__ import annotations

import builtins
import csv
import errno
import io
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import noise
from tsnegrid import publish
from tsnegrid.cli import cli

FAST = ["--model", "pixels", "--reducer", "pca", "--refine", "off", "--quiet"]
OLD = ["--tile", "8", "--seed", "1"]  # 12 images, no viewer
NEW = ["--tile", "12", "--seed", "2", "--html"]  # 16 images, with the viewer's files and folder

# Run in a subprocess: the real CLI, with a hook that stops it (SIGKILL, or a pause until told to
# go on) before the K-th file opened for writing in the output folder ("write:K"), or before the
# K-th rename of the publishing ("publish:K"; "publish:last" is the rename of layout.json).
RUNNER = r"""
import builtins, io, os, signal, sys, time
from pathlib import Path

out = os.path.abspath(os.environ["TEST_OUT"])
kind, _, at = os.environ.get("TEST_STOP", "none:0").partition(":")
pause = os.environ.get("TEST_PAUSE")
seen = {"write": 0, "publish": 0}

def stop_here():
    if pause:
        Path(pause, "paused").touch()
        while not Path(pause, "go").exists():
            time.sleep(0.02)
    else:
        os.kill(os.getpid(), signal.SIGKILL)

real_open = builtins.open

def hooked_open(file, mode="r", *args, **kwargs):
    if (any(c in mode for c in "wax+") and isinstance(file, (str, os.PathLike))
            and os.path.abspath(file).startswith(out + os.sep)):
        seen["write"] += 1
        if kind == "write" and seen["write"] == int(at):
            stop_here()
    return real_open(file, mode, *args, **kwargs)

builtins.open = io.open = hooked_open

def hook(real):
    def moved(src, dst, *args, **kwargs):
        s = os.fspath(src)
        if s.endswith(".tsnegrid-new") or ".tsnegrid-commit" in s:
            seen["publish"] += 1
            last = os.path.basename(os.fspath(dst)) == "layout.json"
            if kind == "publish" and (last if at == "last" else seen["publish"] == int(at)):
                stop_here()
        return real(src, dst, *args, **kwargs)
    return moved

os.replace, os.rename = hook(os.replace), hook(os.rename)
from tsnegrid.cli import main
main()
"""


def tsnegrid(*args: str, stop: str = "none:0", pause: Path | None = None, out: Path,
             wait: bool = True) -> Any:
    env = {**os.environ, "TEST_OUT": str(out), "TEST_STOP": stop}
    if pause is not None:
        env["TEST_PAUSE"] = str(pause)
    cmd = [sys.executable, "-c", RUNNER, *args]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """12 images (the old build's) and 4 more (the new build adds them)."""
    root = tmp_path_factory.mktemp("images")
    (root / "a").mkdir()
    (root / "b").mkdir()
    for i in range(16):
        noise(root / ("a" if i < 12 else "b") / f"n{i:02d}.png", i, (24, 24))
    return root / "a", root / "b"


@pytest.fixture(scope="module")
def old_build(images: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An output folder of the old build, to copy and rebuild over."""
    root = tmp_path_factory.mktemp("old")
    out = root / "out"
    code, text = run("build", str(images[0]), "--out", str(out), "--cache-dir",
                     str(root / "cache"), *FAST, *OLD)
    assert code == 0, text
    return out


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def new_args(images: tuple[Path, Path], out: Path, cache: Path) -> list[str]:
    return ["build", str(images[0]), str(images[1]), "--out", str(out), "--cache-dir",
            str(cache), *FAST, *NEW]


def which(out: Path) -> str:
    """"old" or "new" when ``out`` holds that build's whole set; fails on a mix. Checked from the
    files themselves, not from what layout.json says of them."""
    doc = json.loads((out / "layout.json").read_text())
    tile, seed, html = (doc["settings"][k] for k in ("tile", "seed", "html"))
    rows, cols = doc["grid"]["rows"], doc["grid"]["cols"]
    assert Image.open(out / "grid.jpg").size == (cols * tile, rows * tile), "grid.jpg"
    with open(out / "layout.csv", newline="") as f:
        placed = [(r["path"], int(r["row"]), int(r["col"])) for r in csv.DictReader(f)]
    assert placed == [(r["path"], r["row"], r["col"]) for r in doc["images"]], "layout.csv"
    report = (out / "report.txt").read_text()
    assert f"seed:           {seed}\n" in report and f"{rows} x {cols}" in report, "report.txt"
    for name in ("index.html", "layout.js", "neighbors.npy", "data", "viewer"):
        assert (out / name).exists() == html, name
    if html:
        page = json.loads((out / "layout.js").read_text().split(" = ", 1)[1].rstrip(";\n"))
        assert (page["rows"], page["cols"], page["tile"]) == (rows, cols, tile), "layout.js"
        assert len(list((out / "viewer").iterdir())) == 9
    return {8: "old", 12: "new"}[tile]


def listing(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


# ---- one file --------------------------------------------------------------------------------

def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    publish.write_text(target, "old\n")
    with pytest.raises(publish.OutputWriteError, match=r"report.txt: cannot write it: no space"):
        with publish.atomic_path(target) as tmp:
            tmp.write_text("half of the ne")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]
    assert target.read_text() == "old\n"


# ---- kill -9 during a rebuild ----------------------------------------------------------------

@pytest.mark.parametrize("stop", ["write:1", "write:2", "write:5", "publish:1", "publish:2",
                                  "publish:4", "publish:last"])
def test_a_killed_rebuild_leaves_the_old_set_or_the_new_one(
        stop: str, images: tuple[Path, Path], old_build: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(old_build, out)
    done = tsnegrid(*new_args(images, out, tmp_path / "cache"), stop=stop, out=out)
    assert done.returncode == -signal.SIGKILL, (stop, done.returncode, done.stderr)
    pending = (out / publish.COMMIT).exists()
    assert pending == (stop not in ("write:1", "write:2", "write:5", "publish:1"))
    if not pending:  # killed before the commit: every file is the old build's
        assert which(out) == "old" and publish.check(out) == []
    else:  # killed among the renames: said as such, and finished by the next build's lock
        assert any("stopped while publishing" in p for p in publish.check(out))
    with publish.locked(out):  # kill -9 left no lock behind; what it left is cleared
        pass
    assert which(out) == ("new" if pending else "old") and publish.check(out) == []
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


# ---- one build at a time ---------------------------------------------------------------------

def test_a_second_build_into_a_folder_being_written_is_refused(
        images: tuple[Path, Path], old_build: Path, tmp_path: Path) -> None:
    out, gate = tmp_path / "out", tmp_path / "gate"
    shutil.copytree(old_build, out)
    gate.mkdir()
    first = tsnegrid(*new_args(images, out, tmp_path / "cache"), stop="write:3", pause=gate,
                     out=out, wait=False)
    try:
        deadline = time.monotonic() + 60
        while not (gate / "paused").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        second = subprocess.run([sys.executable, "-c", "from tsnegrid.cli import main; main()",
                                 "build",
                                 str(images[0]), "--out", str(out), *FAST, "--cache-dir",
                                 str(tmp_path / "cache")],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert second.stderr == (f"Error: {out}: another tsnegrid build is writing this folder; "
                                 "wait for it to finish, or give another output folder\n")
        assert which(out) == "old"
    finally:
        (gate / "go").touch()
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert which(out) == "new" and publish.check(out) == []
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_a_build_killed_while_holding_the_lock_does_not_block_the_next(
        images: tuple[Path, Path], tmp_path: Path) -> None:
    out, gate = tmp_path / "out", tmp_path / "gate"
    gate.mkdir()
    first = tsnegrid(*new_args(images, out, tmp_path / "cache"), stop="write:1", pause=gate,
                     out=out, wait=False)
    deadline = time.monotonic() + 60
    while not (gate / "paused").exists():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    first.kill()  # SIGKILL
    first.communicate(timeout=60)
    code, text = run(*new_args(images, out, tmp_path / "cache"))
    assert code == 0, text
    assert which(out) == "new" and publish.check(out) == []


def test_the_lock_refuses_in_one_line_in_process(images: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    with publish.locked(out):
        code, text = run("build", str(images[0]), "--out", str(out), *FAST)
    assert code == 2 and text == (f"Error: {out}: another tsnegrid build is writing this "
                                  "folder; wait for it to finish, or give another output folder\n")
    assert not out.exists()  # the folder the lock made is gone with it


# ---- a full disk -----------------------------------------------------------------------------

class _FullDisk:
    """A file in the output folder on a disk that fills after ``budget`` more bytes."""

    def __init__(self, f: Any, budget: list[int]) -> None:
        self.f, self.budget = f, budget

    def write(self, data: Any) -> int:
        n = len(memoryview(data).cast("B"))
        if n > self.budget[0]:
            self.f.write(bytes(memoryview(data).cast("B"))[:self.budget[0]])
            self.budget[0] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.budget[0] -= n
        return int(self.f.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)

    def fileno(self) -> int:  # writers fall back to write(), where the disk fills
        raise io.UnsupportedOperation("fileno")

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``fill(folder, budget)``: files opened for writing under ``folder`` share ``budget``
    bytes, then every write fails with ENOSPC, as on a full disk."""
    real_open = builtins.open

    def fill(folder: Path, budget: int) -> None:
        left = [budget]

        def opener(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            f = real_open(file, mode, *args, **kwargs)
            if (any(c in mode for c in "wax+") and isinstance(file, (str, os.PathLike))
                    and Path(os.path.abspath(file)).is_relative_to(folder.absolute())):
                if "b" in mode:  # (text files are written as bytes, via write_text)
                    return _FullDisk(f, left)
            return f

        monkeypatch.setattr(builtins, "open", opener)
        monkeypatch.setattr(io, "open", opener)

    yield fill


@pytest.mark.parametrize("budget", [100, 2000])  # in grid.jpg; in a later file
def test_a_full_disk_names_the_file_and_keeps_the_old_outputs(
        full_disk: Any, images: tuple[Path, Path], old_build: Path, tmp_path: Path,
        budget: int) -> None:
    out = tmp_path / "out"
    shutil.copytree(old_build, out)
    before = listing(out)
    full_disk(out, budget)
    code, text = run(*new_args(images, out, tmp_path / "cache"))
    assert code == 1, text
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {out}/")
    assert ": cannot write it: no space left on device; nothing was replaced" in lines[0]
    assert "internal error" not in text and ".tsnegrid" not in text
    assert listing(out) == before  # byte for byte, and nothing else left behind
    assert which(out) == "old"


def _unshare(script: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare for a small tmpfs")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                          timeout=180)
    if done.returncode == 99:
        pytest.skip("mounts are not allowed here")
    return done


CLI = f"{sys.executable} -c 'from tsnegrid.cli import main; main()'"


def test_a_really_full_disk_keeps_the_old_outputs(images: tuple[Path, Path], old_build: Path,
                                                  tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = (f"mount -t tmpfs -o size=256k tmpfs {mnt} || exit 99\n"
              f"cp -r {old_build} {mnt}/out\n"
              f"dd if=/dev/zero of={mnt}/filler bs=1k count=1000 2>/dev/null || true\n"
              f"rm -f {mnt}/filler; dd if=/dev/zero of={mnt}/filler bs=1k "
              f"count=$(( $(df -k --output=avail {mnt} | tail -1) - 8 )) 2>/dev/null\n"
              f"{CLI} {' '.join(new_args(images, mnt / 'out', tmp_path / 'cache'))}; "
              f"echo rc=$? >&2\n"
              f"cp -r {mnt}/out {tmp_path}/after\n")
    done = _unshare(script)
    assert "rc=1" in done.stderr, done.stderr
    line = done.stderr.splitlines()[0]
    assert line.startswith(f"Error: {mnt / 'out'}/") and "no space left on device" in line
    assert listing(tmp_path / "after") == listing(old_build)


# ---- a cache that cannot be written ----------------------------------------------------------

def test_a_full_cache_disk_only_costs_the_caching(
        images: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from tsnegrid.embed import cache as cache_mod

    cache = tmp_path / "cache"
    cache_mod.EmbeddingCache(cache / "embeddings.sqlite").close()  # made, then full
    real_connect = sqlite3.connect

    def full(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL on the next page
        return conn

    monkeypatch.setattr(cache_mod.sqlite3, "connect", full)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        code, text = run(*new_args(images, out, cache))
    assert code == 0, text
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "cannot be written (database or disk is full)" in warned[0]
    assert "going on without caching" in warned[0]
    assert which(out) == "new"


def test_a_really_full_or_read_only_cache_disk_builds_without_caching(
        images: tuple[Path, Path], tmp_path: Path) -> None:
    full, ro = tmp_path / "full", tmp_path / "ro"
    full.mkdir()
    ro.mkdir()
    script = (f"mount -t tmpfs -o size=64k tmpfs {full} || exit 99\n"
              f"dd if=/dev/zero of={full}/filler bs=1k count=1000 2>/dev/null || true\n"
              f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} || exit 99\n"
              f"for c in {full}/cache {ro}; do\n"
              f"  {CLI} {' '.join(new_args(images, tmp_path / 'out', Path('$c')))}; "
              f"echo rc=$? >&2\n"
              "done\n")
    done = _unshare(script)
    assert done.stderr.count("rc=0") == 2, done.stderr
    warnings = [ln for ln in done.stderr.splitlines() if ln.startswith("WARNING")]
    assert len(warnings) == 2, done.stderr
    assert "No space left on device" in warnings[0] or "disk is full" in warnings[0]
    assert "unable to open database file" in warnings[1] or "read" in warnings[1].lower()
    assert which(tmp_path / "out") == "new"
