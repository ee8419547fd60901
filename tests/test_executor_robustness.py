"""A lost, frozen or absent Dask scheduler, and Ctrl-C, during a build: one line, a clear exit
code, no hang, and the vectors finished before it kept in the embedding cache.

The scheduler and its worker are real processes on loopback; the test kills (SIGKILL) or freezes
(SIGSTOP) the scheduler once the worker has embedded a batch. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT, solid
from tsnegrid import pipeline
from tsnegrid.cli import cli

pytest.importorskip("distributed")

ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'tests'}",
       "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
FAST = ["--model", "pixels", "--features", "semantic", "--reducer", "pca", "--refine", "off",
        "--tile", "8"]
TIMEOUT = 3  # --scheduler-timeout in these tests


def images(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        solid(folder / f"i{i:03d}.png", (i * 6 % 256, i * 11 % 256, 90))
    return folder


def wait_for(test: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not test():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"no {what} after {seconds} s"
        time.sleep(0.1)


def marks(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    marks: Path


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A scheduler and one slow-embedding worker, as separate processes on loopback."""
    info = tmp_path / "scheduler.json"
    sched = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", str(info)], env=ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [sched]
    try:
        wait_for(lambda: info.exists() and info.stat().st_size > 0, 60, "scheduler")
        address = json.loads(info.read_text())["address"]
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
             "--no-nanny", "--no-dashboard", "--preload", "slow_pixels"],
            env={**ENV, "TSNEGRID_TEST_MARKS": str(tmp_path / "marks"),
                 "TSNEGRID_TEST_DELAY": "0.5"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(worker)
        yield Cluster(address, sched, worker, tmp_path / "marks")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
            p.wait(30)


def start_build(src: Path, out: Path, cache: Path, *extra: str,
                env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "slow_pixels", "build", str(src), "--out", str(out),
         "--cache-dir", str(cache), *FAST, *extra, "--quiet"],
        env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # as from a shell: Ctrl-C's default action, even if something in this test process
        # (a library's server or pool) has set SIGINT to be ignored, which a child inherits
        preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(proc: subprocess.Popen[str], seconds: float) -> tuple[int, list[str]]:
    try:
        _, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the build still ran {seconds} s after the event (a hang)")
    return proc.returncode, [ln for ln in err.splitlines() if ln.strip()]


@pytest.mark.parametrize("how", ["kill", "freeze"])
def test_losing_the_scheduler_is_one_line_and_exit_1(cluster: Cluster, tmp_path: Path,
                                                     how: str) -> None:
    src = images(tmp_path / "src", 48)
    build = start_build(src, tmp_path / "o", tmp_path / "cache", "--scheduler",
                        cluster.address, "--scheduler-timeout", str(TIMEOUT), "--batch-size",
                        "4")
    try:
        wait_for(lambda: marks(cluster.marks) >= 1 or build.poll() is not None, 90,
                 "embedded batch on the worker")
    except AssertionError:
        build.kill()
        raise
    assert build.poll() is None, build.communicate()
    t0 = time.monotonic()
    cluster.scheduler.send_signal(signal.SIGKILL if how == "kill" else signal.SIGSTOP)
    code, lines = finish(build, 60)
    took = time.monotonic() - t0
    assert code == 1, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"Error: Dask scheduler at {cluster.address}: "), lines
    if how == "freeze":
        assert f"no answer within {TIMEOUT} s" in lines[0]
        assert took < 4 * TIMEOUT + 20


def test_absent_scheduler_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:  # a loopback port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = images(tmp_path / "src", 4)
    build = start_build(src, tmp_path / "o", tmp_path / "cache", "--scheduler",
                        f"tcp://127.0.0.1:{port}", "--scheduler-timeout", str(TIMEOUT))
    code, lines = finish(build, 90)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"Error: Dask scheduler at tcp://127.0.0.1:{port}: cannot "
                               f"connect within {TIMEOUT} s ("), lines


def test_ctrl_c_exits_130_and_keeps_finished_vectors(tmp_path: Path) -> None:
    src = images(tmp_path / "src", 40)
    cache = tmp_path / "cache"
    build = start_build(src, tmp_path / "o", cache, "--batch-size", "4",
                        env={**ENV, "TSNEGRID_TEST_MARKS": str(tmp_path / "marks"),
                             # 1 s per batch: on a loaded machine the test may not look for a
                             # while, and the build must still be running when it does
                             "TSNEGRID_TEST_DELAY": "1.0"})
    wait_for(lambda: marks(tmp_path / "marks") >= 3 or build.poll() is not None, 90,
             "third batch")
    assert build.poll() is None, "the build ended before it could be interrupted"
    build.send_signal(signal.SIGINT)
    code, lines = finish(build, 30)
    assert code == 130, lines
    assert len(lines) == 1 and lines[0].startswith("Interrupted: "), lines
    with sqlite3.connect(cache / "embeddings.sqlite") as db:
        saved = db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    assert 12 <= saved < 40
    assert lines[0] == (f"Interrupted: {saved} of 40 vectors to compute were done and are saved "
                        f"in {cache / 'embeddings.sqlite'}; the same command resumes from there")


def test_oserror_without_a_file_has_no_empty_field(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def timed_out(*args: object, **kwargs: object) -> None:
        raise TimeoutError("Timed out")

    monkeypatch.setattr(pipeline, "build", timed_out)
    result = CliRunner().invoke(cli, ["build", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: Timed out"


def test_quiet_after_the_subcommand(tmp_path: Path, cache_dir: Path) -> None:
    src = images(tmp_path / "src", 4)
    result = CliRunner().invoke(cli, ["build", str(src), "--out", str(tmp_path / "o"),
                                      "--cache-dir", str(cache_dir), *FAST, "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output == ""


def test_scheduler_frozen_before_the_build(cluster: Cluster, tmp_path: Path) -> None:
    """distributed's own Client() waits forever on a stopped scheduler: the build must not."""
    cluster.scheduler.send_signal(signal.SIGSTOP)
    src = images(tmp_path / "src", 4)
    build = start_build(src, tmp_path / "o", tmp_path / "cache", "--scheduler",
                        cluster.address, "--scheduler-timeout", str(TIMEOUT))
    code, lines = finish(build, 90)
    assert code == 1 and len(lines) == 1, lines
    assert lines[0] == (f"Error: Dask scheduler at {cluster.address}: no answer within "
                        f"{TIMEOUT} s (frozen, overloaded or unreachable)")
