"""Visualization jobs as rows: an explicit state machine and the queries that move jobs along.

PENDING -> RUNNING -> DONE | FAILED; RUNNING -> PENDING when the server restarts after its
worker died mid-job (the job is retried from the start, embeddings come from the cache).
"""

from __future__ import annotations

import enum
import uuid
from typing import Any

from sqlalchemy import func, select, update
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

# Share of the progress bar each pipeline stage fills, in order.
STAGE_SPANS: dict[str, tuple[int, int]] = {
    "load": (0, 2), "embed": (2, 80), "reduce": (80, 90), "assign": (90, 93),
    "render": (93, 99),
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


def active_count(session: Session, app_id: int) -> int:
    """Pending and running jobs of an app."""
    return session.scalar(select(func.count()).select_from(Visualization).where(
        Visualization.app_id == app_id,
        Visualization.status.in_([JobStatus.PENDING.value, JobStatus.RUNNING.value]))) or 0


def _move(session: Session, pk: int, frm: JobStatus, to: JobStatus, **values: Any) -> bool:
    """Compare-and-set the status; False when the job is not in ``frm`` (or was deleted)."""
    assert to in TRANSITIONS[frm], f"illegal transition {frm} -> {to}"
    res = session.execute(update(Visualization)
                          .where(Visualization.pk == pk, Visualization.status == frm.value)
                          .values(status=to.value, updated_at=utcnow(), **values))
    return bool(getattr(res, "rowcount", 0))


def claim_next(session: Session, max_attempts: int) -> Visualization | None:
    """Take the oldest pending job (atomically); jobs out of attempts are failed instead."""
    while True:
        job = session.scalar(select(Visualization)
                             .where(Visualization.status == JobStatus.PENDING.value)
                             .order_by(Visualization.pk).limit(1))
        if job is None:
            return None
        if job.attempts >= max_attempts:
            _move(session, job.pk, JobStatus.PENDING, JobStatus.FAILED, finished_at=utcnow(),
                  error=f"abandoned after {job.attempts} attempts: the worker stopped "
                        "each time before the job finished")
            session.commit()
            continue
        won = _move(session, job.pk, JobStatus.PENDING, JobStatus.RUNNING,
                    attempts=job.attempts + 1, progress=0, stage="")
        session.commit()
        if won:
            session.refresh(job)
            return job


def set_progress(session: Session, pk: int, stage: str, percent: int) -> bool:
    """Store progress; False when the job is no longer running (deleted meanwhile)."""
    res = session.execute(update(Visualization)
                          .where(Visualization.pk == pk,
                                 Visualization.status == JobStatus.RUNNING.value)
                          .values(stage=stage, progress=percent, updated_at=utcnow()))
    session.commit()
    return bool(getattr(res, "rowcount", 0))


def finish(session: Session, pk: int, image_key: str, layout_key: str) -> bool:
    ok = _move(session, pk, JobStatus.RUNNING, JobStatus.DONE, progress=100, stage="done",
               image_key=image_key, layout_key=layout_key, finished_at=utcnow(), error=None)
    session.commit()
    return ok


def fail(session: Session, pk: int, reason: str) -> bool:
    ok = _move(session, pk, JobStatus.RUNNING, JobStatus.FAILED, error=reason,
               finished_at=utcnow())
    session.commit()
    return ok


def requeue_running(session: Session) -> int:
    """Put every RUNNING job back to PENDING; only safe when no worker is alive (at start-up)."""
    res = session.execute(update(Visualization)
                          .where(Visualization.status == JobStatus.RUNNING.value)
                          .values(status=JobStatus.PENDING.value, progress=0, stage="",
                                  updated_at=utcnow()))
    session.commit()
    return int(getattr(res, "rowcount", 0))
