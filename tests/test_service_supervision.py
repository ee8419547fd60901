"""Supervision of job processes: a worker that dies (kill -9, as an OOM kill does) has its job
queued again at once and is replaced, and /healthz says unhealthy while one is missing."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service_helpers import Server, children_of, pid_alive, service_cache, start_server
from tsnegrid.errors import ClusterError
from tsnegrid.service import jobs
from tsnegrid.service.apps import create_app
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.db import App, Database, Visualization
from tsnegrid.service.pool import WorkerPool
from tsnegrid.service.worker import Worker

__all__ = ["service_cache", "start_server"]  # fixtures used by name


def wait_for(predicate: object, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_a_killed_worker_loses_its_job_attempt_and_is_replaced(tmp_path: Path) -> None:
    config = ServiceConfig(data_dir=tmp_path / "data", workers=1, cache_dir=tmp_path / "cache",
                           poll_interval_s=0.2)
    db = Database(config.db_url)
    pool = WorkerPool(config, db)
    pool.start(supervise=False)  # the test makes the supervision passes itself
    try:
        assert wait_for(lambda: pool.alive() == 1)
        (victim,) = pool.pids()
        owner = jobs.worker_owner(config.node, victim)
        with db.session() as s:  # the job the worker is running when it is killed
            create_app(s, "app")
            app_id = s.scalar(select(App.id))
            job = jobs.enqueue(s, app_id, {}, [["a", "0" * 64]])
            s.commit()
            claimed = jobs.claim_next(s, config.max_attempts, owner, lease_s=3600)
            assert claimed is not None and claimed.pk == job.pk
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: not pid_alive(victim))
        assert not pool.healthy
        assert pool.check() == 1
        assert pool.restarts == 1 and victim not in pool.pids()
        with db.session() as s:
            row = s.get(Visualization, job.pk)
            assert row is not None
            # Not left RUNNING under the dead process until its lease (an hour) runs out.
            assert row.owner != owner and row.attempts >= 1
            assert row.status != jobs.JobStatus.RUNNING.value or row.attempts == 2
        assert wait_for(lambda: pool.alive() == 1) and pool.healthy
    finally:
        pool.stop()
        db.close()


def worker_pids(server: Server) -> list[int]:
    assert server.proc is not None
    out = []
    for pid in children_of(server.proc.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline and pid_alive(pid):
            out.append(pid)
    return out


def test_server_replaces_a_killed_worker_and_healthz_reports_the_gap(start_server: object,
                                                                       ) -> None:
    server = start_server(TSNEGRID_SERVICE_WORKERS="1")  # type: ignore[operator]
    assert wait_for(lambda: len(worker_pids(server)) == 1)
    (victim,) = worker_pids(server)
    os.kill(victim, signal.SIGKILL)
    seen: list[int] = []

    def recovered() -> bool:
        r = httpx.get(server.url + "/healthz", timeout=5)
        seen.append(r.status_code)
        pids = worker_pids(server)
        return r.status_code == 200 and r.json()["workers"] == 1 and pids != [victim] \
            and len(pids) == 1

    assert wait_for(recovered, 60), seen[-5:]
    assert 503 in seen  # unhealthy while the worker was missing


# ---- losing the Dask scheduler --------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: connections are refused at once
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scheduler_down(address: str) -> Exception:
    """The error a Dask client gives when its scheduler is not there (a real connect to a
    loopback port nobody listens on, with a short timeout)."""
    from distributed.comm.core import connect

    try:
        asyncio.run(connect(address, timeout=0.3))
    except Exception as exc:
        return exc
    raise AssertionError("connected")


def scheduler_gone() -> Exception:
    from distributed.client import FutureCancelledError

    return FutureCancelledError("embed-chunk-0", "scheduler-connection-lost")


@pytest.mark.parametrize("make_error", ["down", "gone", "cluster"])
def test_losing_the_dask_scheduler_retries_the_job_and_names_the_scheduler(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_error: str) -> None:
    import tsnegrid.pipeline

    address = f"tcp://127.0.0.1:{closed_port()}"
    config = ServiceConfig(data_dir=tmp_path / "data", workers=0, cache_dir=tmp_path / "cache",
                           scheduler=address, max_attempts=2)
    calls: list[int] = []

    def build(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if make_error == "down":  # raised inside distributed's code, as Client(...) does
            raise scheduler_down(address)
        if make_error == "cluster":  # the executor's own error, its cause suppressed
            raise ClusterError(f"Dask scheduler at {address}: connection lost") from None
        raise RuntimeError("gathering results failed") from scheduler_gone()

    monkeypatch.setattr(tsnegrid.pipeline, "build", build)
    worker = Worker(config)
    with worker.db.session() as s:
        create_app(s, "app")
        key = worker.store.put(b"not read by the fake build")
        job = jobs.enqueue(s, s.scalar(select(App.id)), {}, [["a", key]])
        s.commit()
    assert worker.run_once()
    with worker.db.session() as s:
        row = s.get(Visualization, job.pk)
        assert row is not None
        assert row.status == "PENDING" and row.attempts == 1  # queued again, not failed
        assert address in (row.error or "") and "Dask scheduler" in (row.error or "")
    assert worker.run_once()  # the second attempt loses it too
    assert not worker.run_once()  # claiming fails it: out of attempts
    with worker.db.session() as s:
        row = s.get(Visualization, job.pk)
        assert row is not None and row.status == "FAILED", row.status
        assert f"Dask scheduler at {address}" in (row.error or ""), row.error
        assert "internal error" not in (row.error or "")
    assert len(calls) == 2
    worker.db.close()


def test_other_errors_still_fail_the_job_at_once_when_a_scheduler_is_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tsnegrid.pipeline

    config = ServiceConfig(data_dir=tmp_path / "data", workers=0, cache_dir=tmp_path / "cache",
                           scheduler=f"tcp://127.0.0.1:{closed_port()}")

    def build(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(tsnegrid.pipeline, "build", build)
    worker = Worker(config)
    with worker.db.session() as s:
        create_app(s, "app")
        job = jobs.enqueue(s, s.scalar(select(App.id)), {}, [["a", worker.store.put(b"x")]])
        s.commit()
    assert worker.run_once()
    with worker.db.session() as s:
        row = s.get(Visualization, job.pk)
        assert row is not None and row.status == "FAILED"
        assert row.error == "internal error while building the grid (ZeroDivisionError)"
    worker.db.close()
