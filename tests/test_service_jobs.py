"""The job queue on both databases: concurrent workers never take the same job, leases bring back
the jobs of lost workers and fence those workers out, and a node starting up leaves other
nodes' live jobs alone."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update

from service_helpers import db_url, postgres_database
from tsnegrid.service import jobs
from tsnegrid.service.apps import create_app
from tsnegrid.service.db import App, Database, Visualization, utcnow
from tsnegrid.service.worker import LeaseKeeper

__all__ = ["db_url"]  # fixture used by name

KEY_A, KEY_B = "a" * 64, "b" * 64


@pytest.fixture
def url(db_url: str | None, tmp_path: Path) -> str:
    return db_url or f"sqlite:///{tmp_path / 'queue.sqlite'}"


@pytest.fixture
def db(url: str) -> Iterator[Database]:
    database = Database(url)
    yield database
    database.close()


def seed(db: Database, n: int) -> list[int]:
    """An app with ``n`` pending jobs; their primary keys."""
    with db.session() as s:
        create_app(s, f"app-{time.monotonic_ns()}")
        app_id = s.scalar(select(App.id).order_by(App.id.desc()).limit(1))
        assert app_id is not None
        return [jobs.enqueue(s, app_id, {}, [["x", KEY_A]]).pk for _ in range(n)]


def job_row(db: Database, pk: int) -> Visualization:
    with db.session() as s:
        row = s.get(Visualization, pk)
        assert row is not None
        return row


def claimer(url: str, owner: str, ready: Any, results: Any) -> None:
    """Worker process: take jobs until none is left; report the primary keys taken."""
    database = Database(url)
    ready.wait(60)
    taken = []
    while True:
        with database.session() as s:
            job = jobs.claim_next(s, 3, owner, 60.0)
        if job is None:
            break
        taken.append(job.pk)
    results.put((owner, taken))
    database.close()


def test_concurrent_workers_never_claim_a_job_twice(url: str, db: Database) -> None:
    pks = seed(db, 60)
    ctx = mp.get_context("spawn")
    ready, results = ctx.Barrier(5), ctx.Queue()
    procs = [ctx.Process(target=claimer, args=(url, f"node-{i}", ready, results))
             for i in range(4)]
    for p in procs:
        p.start()
    try:
        ready.wait(60)
        taken = dict(results.get(timeout=120) for _ in procs)
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    claimed = [pk for got in taken.values() for pk in got]
    assert sorted(claimed) == sorted(pks), "a job was claimed twice or not at all"
    for owner, got in taken.items():
        for pk in got:
            row = job_row(db, pk)
            assert (row.status, row.attempts, row.owner) == ("RUNNING", 1, owner)


def test_claim_skips_a_row_another_worker_has_locked() -> None:
    with postgres_database() as pg:
        db = Database(pg)
        try:
            first, second = seed(db, 2)
            with db.session() as holder:
                locked = holder.scalar(select(Visualization).where(Visualization.pk == first)
                                       .with_for_update())
                assert locked is not None
                with db.session() as other:
                    other.execute(text("SET lock_timeout = '5s'"))  # fail, not hang
                    job = jobs.claim_next(other, 3, "node-b")
                    assert job is not None and job.pk == second
        finally:
            db.close()


def test_expired_lease_is_retried_and_the_lost_attempt_fenced_out(db: Database) -> None:
    (pk,) = seed(db, 1)
    with db.session() as s:
        job = jobs.claim_next(s, 3, "node-a", 60.0)
        assert job is not None and job.attempts == 1
        assert jobs.requeue_orphans(s, "node-b") == 0  # another node starting up
        assert jobs.claim_next(s, 3, "node-b", 60.0) is None  # the lease is alive
        s.execute(update(Visualization).where(Visualization.pk == pk)
                  .values(lease_until=utcnow() - dt.timedelta(seconds=1)))
        s.commit()
        again = jobs.claim_next(s, 3, "node-b", 60.0)
        assert again is not None and again.pk == pk
        assert (again.attempts, again.owner) == (2, "node-b")
        # the first attempt's worker may still be running: it can no longer write
        assert not jobs.set_progress(s, pk, "embed", 50, attempt=1)
        assert not jobs.renew_lease(s, pk, 1, 60.0)
        assert not jobs.finish(s, pk, KEY_A, KEY_B, attempt=1)
        assert not jobs.fail(s, pk, "late", attempt=1)
        assert jobs.set_progress(s, pk, "embed", 50, attempt=2)
        assert jobs.finish(s, pk, KEY_A, KEY_B, attempt=2)
    row = job_row(db, pk)
    assert (row.status, row.attempts, row.image_key, row.lease_until) == ("DONE", 2, KEY_A, None)


def test_restarting_node_requeues_only_its_own_jobs(db: Database) -> None:
    mine, theirs = seed(db, 2)
    with db.session() as s:
        assert jobs.claim_next(s, 3, "node-a").pk == mine  # type: ignore[union-attr]
        assert jobs.claim_next(s, 3, "node-b").pk == theirs  # type: ignore[union-attr]
        assert jobs.requeue_orphans(s, "node-a") == 1
    assert (job_row(db, mine).status, job_row(db, mine).owner) == ("PENDING", "")
    assert (job_row(db, theirs).status, job_row(db, theirs).owner) == ("RUNNING", "node-b")


def test_job_out_of_attempts_is_failed(db: Database) -> None:
    (pk,) = seed(db, 1)
    for _ in range(2):
        with db.session() as s:
            assert jobs.claim_next(s, 2, "node-a") is not None
            assert jobs.requeue_orphans(s, "node-a") == 1  # the node died mid-job
    with db.session() as s:
        assert jobs.claim_next(s, 2, "node-a") is None
    row = job_row(db, pk)
    assert row.status == "FAILED" and "abandoned after 2 attempts" in (row.error or "")


def test_lease_keeper_renews_and_notices_a_lost_job(db: Database) -> None:
    keep, drop = seed(db, 2)
    lease_s = 0.8
    with db.session() as s:
        job = jobs.claim_next(s, 3, "node-a", lease_s)
        other = jobs.claim_next(s, 3, "node-a", lease_s)
    assert job is not None and other is not None and job.pk == keep
    with LeaseKeeper(db, job, lease_s) as kept, LeaseKeeper(db, other, lease_s) as lost:
        with db.session() as s:
            s.delete(s.get(Visualization, drop))
        time.sleep(1.5)  # past the first lease
        with db.session() as s:
            assert jobs.claim_next(s, 3, "node-b", lease_s) is None  # renewed, not taken
        assert lost.lost.is_set() and not kept.lost.is_set()
    time.sleep(lease_s + 0.2)  # no longer renewed: the job goes to the next worker
    with db.session() as s:
        again = jobs.claim_next(s, 3, "node-b", lease_s)
    assert again is not None and (again.pk, again.attempts) == (keep, 2)


def test_unknown_or_bad_database_urls_are_refused(tmp_path: Path) -> None:
    from tsnegrid.errors import InputError
    from tsnegrid.service.errors import BackendError

    for bad in ("mysql://u:p@localhost/db", "sqlite://", "postgresql+asyncpg://u@h/db"):
        with pytest.raises(InputError, match="database"):
            Database(bad)
    with pytest.raises(BackendError, match="cannot use the database") as info:
        Database("postgresql://user:secret@127.0.0.1:1/none")
    assert "secret" not in str(info.value)
    assert Database(tmp_path / "plain.sqlite").dialect == "sqlite"


def test_every_pipeline_stage_has_a_progress_span(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from tsnegrid import Settings, build
    from tsnegrid.service.jobs import STAGE_SPANS, stage_percent

    for i in range(6):
        Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / f"{i}.png")
    np.save(tmp_path / "v.npy", np.random.default_rng(0).normal(size=(6, 4)))
    seen: list[str] = []
    build([tmp_path], tmp_path / "out", Settings(cache_dir=tmp_path / "c", tiles=True, tile=8),
          vectors=tmp_path / "v.npy",
          progress=lambda stage, done, total: seen.append(stage))
    assert set(seen) <= set(STAGE_SPANS), set(seen) - set(STAGE_SPANS)
    spans = list(STAGE_SPANS.values())
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    order = list(dict.fromkeys(seen))
    assert [stage_percent(s, 1, 1) for s in order] == sorted(stage_percent(s, 1, 1)
                                                             for s in order)


def test_layout_document_names_skipped_and_undrawn_images_by_input_id() -> None:
    from tsnegrid.service.worker import layout_document

    doc = layout_document({"images": [{"path": "/w/a.png", "row": 0, "col": 0}],
                           "skipped": [{"path": "/w/b.png", "reason": "/w/b.png: no such file"}],
                           "undrawn": [{"path": "/w/a.png", "reason": "cannot decode (x)"}],
                           "settings": {"cache_dir": "/srv/cache", "tile": 8}},
                          {"/w/a.png": "a", "/w/b.png": "b"})
    assert doc["images"] == [{"input_id": "a", "row": 0, "col": 0}]
    assert doc["skipped"] == [{"input_id": "b", "reason": "no such file"}]
    assert doc["undrawn"] == [{"input_id": "a", "reason": "cannot decode (x)"}]
    assert "/w/" not in str(doc) and doc["settings"] == {"tile": 8}
