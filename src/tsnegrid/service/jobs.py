"""Visualization jobs as rows: an explicit state machine and the queries that move jobs along.

PENDING -> RUNNING -> DONE | FAILED; RUNNING -> PENDING when its worker was lost mid-job or the
Dask scheduler it embedded on was (the job is retried from the start, embeddings come from the
cache). A running job carries its
node's name and a lease that its worker renews; a job whose lease ran out is queued again by
whichever worker looks for work next, and a restarting node queues its own jobs at once. The
attempt number is the fencing token: a worker whose job was taken from it can no longer write.
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
import uuid
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from tsnegrid.service.db import Visualization, utcnow


class JobStatus(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED)


TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.RUNNING, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.PENDING}),
    JobStatus.DONE: frozenset(),
    JobStatus.FAILED: frozenset(),
}

# Share of the progress bar each pipeline stage fills, in order. "place" is the incremental
# add's stand-in for reduce, assign and refine (new images into an existing layout).
STAGE_SPANS: dict[str, tuple[int, int]] = {
    "load": (0, 2), "embed": (2, 80), "reduce": (80, 89), "assign": (89, 91),
    "refine": (91, 92), "place": (92, 93), "render": (93, 97), "pyramid": (97, 99),
}


def stage_percent(stage: str, done: int, total: int) -> int:
    lo, hi = STAGE_SPANS.get(stage, (0, 0))
    frac = done / total if total > 0 else 1.0
    return int(lo + (hi - lo) * min(max(frac, 0.0), 1.0))


def enqueue(session: Session, app_id: int, params: dict[str, Any],
            inputs: list[list[str]]) -> Visualization:
    """Record a new pending job; ``inputs`` are ``[input_id, blob_key]`` pairs."""
    job = Visualization(app_id=app_id, viz_id=uuid.uuid4().hex, status=JobStatus.PENDING.value,
                        params=params, inputs=inputs, progress=0, stage="", attempts=0)
    session.add(job)
    session.flush()
    return job


def active_count(session: Session, app_id: int | None = None) -> int:
    """Pending and running jobs of an app (None: of every app)."""
    where: list[ColumnElement[bool]] = [
        Visualization.status.in_([JobStatus.PENDING.value, JobStatus.RUNNING.value])]
    if app_id is not None:
        where.append(Visualization.app_id == app_id)
    return session.scalar(select(func.count()).select_from(Visualization).where(*where)) or 0


def _move(session: Session, pk: int, frm: JobStatus, to: JobStatus, attempt: int | None = None,
          **values: Any) -> bool:
    """Compare-and-set the status; False when the job is not in ``frm`` (or was deleted, or
    ``attempt`` is given and is no longer the job's)."""
    assert to in TRANSITIONS[frm], f"illegal transition {frm} -> {to}"
    where = [Visualization.pk == pk, Visualization.status == frm.value]
    if attempt is not None:
        where.append(Visualization.attempts == attempt)
    res = session.execute(update(Visualization).where(*where)
                          .values(status=to.value, updated_at=utcnow(), **values))
    return bool(getattr(res, "rowcount", 0))


def _lease(lease_s: float) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=lease_s)


def claim_next(session: Session, max_attempts: int, owner: str = "",
               lease_s: float = 60.0) -> Visualization | None:
    """Take the oldest pending job for ``owner`` (atomically); jobs out of attempts are failed
    instead. Jobs whose lease ran out are queued again first.

    On PostgreSQL the candidate row is locked with ``FOR UPDATE SKIP LOCKED``, so concurrent
    workers each get a different job instead of queueing on one row; SQLite has one writer at a
    time and ignores the clause. The status compare-and-set guards both.
    """
    requeue_expired(session)
    while True:
        job = session.scalar(select(Visualization)
                             .where(Visualization.status == JobStatus.PENDING.value)
                             .order_by(Visualization.pk).limit(1)
                             .with_for_update(skip_locked=True))
        if job is None:
            session.commit()
            return None
        if job.attempts >= max_attempts:
            why = (f"failed after {job.attempts} attempts; the last: {job.error}" if job.error
                   else f"abandoned after {job.attempts} attempts: the worker stopped "
                        "each time before the job finished")
            _move(session, job.pk, JobStatus.PENDING, JobStatus.FAILED, finished_at=utcnow(),
                  error=why)
            session.commit()
            continue
        won = _move(session, job.pk, JobStatus.PENDING, JobStatus.RUNNING,
                    attempts=job.attempts + 1, progress=0, stage="", owner=owner,
                    lease_until=_lease(lease_s))
        session.commit()
        if won:
            session.refresh(job)
            return job


def renew_lease(session: Session, pk: int, attempt: int, lease_s: float) -> bool:
    """Extend a running job's lease; False when the job is no longer this attempt's."""
    res = session.execute(update(Visualization)
                          .where(Visualization.pk == pk, Visualization.attempts == attempt,
                                 Visualization.status == JobStatus.RUNNING.value)
                          .values(lease_until=_lease(lease_s)))
    session.commit()
    return bool(getattr(res, "rowcount", 0))


def set_progress(session: Session, pk: int, stage: str, percent: int,
                 attempt: int | None = None) -> bool:
    """Store progress; False when the job is no longer running (deleted meanwhile, or taken
    from this attempt)."""
    where = [Visualization.pk == pk, Visualization.status == JobStatus.RUNNING.value]
    if attempt is not None:
        where.append(Visualization.attempts == attempt)
    res = session.execute(update(Visualization).where(*where)
                          .values(stage=stage, progress=percent, updated_at=utcnow()))
    session.commit()
    return bool(getattr(res, "rowcount", 0))


def finish(session: Session, pk: int, image_key: str, layout_key: str,
           attempt: int | None = None, viewer_key: str | None = None) -> bool:
    """Mark a job done with its output blobs; the viewer gets a fresh secret link token."""
    token = secrets.token_urlsafe(24) if viewer_key else None
    ok = _move(session, pk, JobStatus.RUNNING, JobStatus.DONE, attempt, progress=100,
               stage="done", image_key=image_key, layout_key=layout_key,
               viewer_key=viewer_key, viewer_token=token, finished_at=utcnow(), error=None,
               lease_until=None)
    session.commit()
    return ok


def fail(session: Session, pk: int, reason: str, attempt: int | None = None) -> bool:
    ok = _move(session, pk, JobStatus.RUNNING, JobStatus.FAILED, attempt, error=reason,
               finished_at=utcnow(), lease_until=None)
    session.commit()
    return ok


def retry(session: Session, pk: int, reason: str, attempt: int | None = None) -> bool:
    """Queue a running job again after a failure that was not its own (the cluster it ran on
    went away); ``reason`` is kept, and becomes the job's error if it runs out of attempts."""
    ok = _move(session, pk, JobStatus.RUNNING, JobStatus.PENDING, attempt, error=reason,
               progress=0, stage="", owner="", lease_until=None)
    session.commit()
    return ok


def _requeue(session: Session, *conditions: Any) -> int:
    res = session.execute(update(Visualization)
                          .where(Visualization.status == JobStatus.RUNNING.value, *conditions)
                          .values(status=JobStatus.PENDING.value, progress=0, stage="",
                                  owner="", lease_until=None, updated_at=utcnow()))
    session.commit()
    return int(getattr(res, "rowcount", 0))


def requeue_expired(session: Session) -> int:
    """Queue again the running jobs whose lease ran out (their worker was lost)."""
    expired = or_(Visualization.lease_until.is_(None), Visualization.lease_until < utcnow())
    if session.scalar(select(Visualization.pk).where(  # read first: polls write nothing
            Visualization.status == JobStatus.RUNNING.value, expired).limit(1)) is None:
        return 0
    return _requeue(session, expired)


def worker_owner(node: str, pid: int) -> str:
    """The owner name of a job run by process ``pid`` of ``node``."""
    return f"{node}/{pid}"


def requeue_orphans(session: Session, node: str) -> int:
    """At a node's start-up: queue again the jobs this node's previous workers held (they died
    with it) and those whose lease ran out; other live nodes' jobs are left alone."""
    return _requeue(session, or_(Visualization.owner == node,
                                 Visualization.owner.startswith(node + "/", autoescape=True),
                                 Visualization.lease_until.is_(None),
                                 Visualization.lease_until < utcnow()))


def running_of(session: Session, owner: str) -> list[str]:
    """The ids of the jobs ``owner`` is running."""
    return list(session.scalars(select(Visualization.viz_id).where(
        Visualization.status == JobStatus.RUNNING.value, Visualization.owner == owner)))


def requeue_owner(session: Session, owner: str) -> int:
    """Queue again the running jobs of one worker process that died (the attempt it used
    counts; the job does not wait for its lease to run out)."""
    return _requeue(session, Visualization.owner == owner)
