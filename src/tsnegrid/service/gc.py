"""Collecting what the service no longer needs: work folders and half-written blobs left by a
killed process, and the blobs of deleted inputs and visualizations.

Blobs are content-addressed and shared: two inputs with the same bytes, a job's copy of its
inputs, the viewer files every visualization has in common. So a delete only records the keys
that lost a reference (``mark``); ``sweep`` removes a recorded blob once no input, no job and
no viewer manifest refers to it and it was not written again within ``grace_s`` (a request
storing the same bytes right now refreshes its time before its row is written, so it is never
left without its blob). Only local (or mounted shared) stores are swept: an object store
(s3://...) gives no cheap "written again" time, so its blobs are left to the bucket's own
lifecycle rules.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.db import BlobCandidate, Database, Input, Visualization, utcnow
from tsnegrid.service.storage import BlobStore

log = logging.getLogger(__name__)

MARK_CHUNK = 500


def clean_at_startup(config: ServiceConfig, store: BlobStore) -> tuple[int, int]:
    """Remove the job work folders (no worker of this folder runs yet: the server holds its
    lock) and ``.tmp-`` blobs: all of them in a store inside the data folder, else only those
    older than the grace period (another server may be writing to a shared store). Returns
    (work folders, temporary files) removed."""
    folders = 0
    if config.work_dir.is_dir():
        for entry in config.work_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            folders += 1
    private = store.root is not None and store.root.resolve().is_relative_to(
        config.data_dir.resolve())
    cutoff = time.time() - config.blob_grace_s
    files = 0
    for tmp in list(store.temporary_files()):
        try:
            if private or tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                files += 1
        except OSError:
            continue
    if folders or files:
        log.info("removed %d abandoned work folder(s) and %d unfinished blob write(s)",
                 folders, files)
    return folders, files


def mark(session: Session, keys: Iterable[str | None]) -> None:
    """Record blobs that lost a reference (call in the deleting transaction). One statement
    per chunk that skips keys already recorded (``ON CONFLICT DO NOTHING``), so two requests
    marking the same blob at once both succeed."""
    from sqlalchemy.dialects import postgresql, sqlite

    wanted = sorted({k for k in keys if k})
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else \
        sqlite.insert
    for start in range(0, len(wanted), MARK_CHUNK):  # bounded statements, however many
        now = utcnow()
        session.execute(insert(BlobCandidate)
                        .values([{"key": k, "since": now}
                                 for k in wanted[start:start + MARK_CHUNK]])
                        .on_conflict_do_nothing(index_elements=["key"]))


class Orphans:
    """Blobs written for rows that were never stored (the request failed after writing them:
    the database was full, an id was taken meanwhile). ``adopt`` records them for collection at
    once; when even that fails (a full database), they wait here and the collector records
    them on its next round."""

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    def adopt(self, db: Database, keys: Iterable[str | None]) -> None:
        with self._lock:
            self._keys.update(k for k in keys if k)
        self.flush(db)

    def flush(self, db: Database) -> None:
        with self._lock:
            keys, self._keys = self._keys, set()
        if not keys:
            return
        try:
            with db.session() as s:
                mark(s, keys)
        except Exception as exc:
            log.warning("cannot record %d unused blob(s) for collection yet (%s); will retry",
                        len(keys), type(exc).__name__)
            with self._lock:
                self._keys.update(keys)


def visualization_keys(job: Visualization, store: BlobStore) -> list[str]:
    """The blobs a visualization's row refers to: outputs, the viewer manifest, the viewer's
    files and its copy of its inputs (the inputs may have been deleted before it)."""
    keys = [k for k in (job.image_key, job.layout_key, job.viewer_key) if k]
    if job.viewer_key:
        try:
            keys.extend(json.loads(store.read(job.viewer_key)).values())
        except (OSError, ValueError):
            pass
    return keys + [k for _i, k in job.inputs]


def _referenced(session: Session, store: BlobStore, keys: set[str]) -> set[str]:
    """Those of ``keys`` still used by an input, a job's inputs or outputs, or a viewer."""
    used = set(session.scalars(select(Input.blob_key).where(Input.blob_key.in_(keys))))
    for image, layout, viewer, inputs in session.execute(select(
            Visualization.image_key, Visualization.layout_key, Visualization.viewer_key,
            Visualization.inputs)):
        used.update(k for k in (image, layout, viewer) if k in keys)
        used.update(k for _i, k in inputs if k in keys)
        if viewer and viewer not in keys:
            try:
                used.update(k for k in json.loads(store.read(viewer)).values() if k in keys)
            except (OSError, ValueError):
                used.update(keys)  # cannot tell what it holds: keep everything this time
    return used


def sweep(db: Database, store: BlobStore, grace_s: float) -> int:
    """Delete the recorded blobs that nothing uses any more; returns how many."""
    if not store.local:
        return 0
    cutoff = utcnow() - timedelta(seconds=grace_s)
    with db.session() as s:
        due = set(s.scalars(select(BlobCandidate.key).where(BlobCandidate.since <= cutoff)))
        if not due:
            return 0
        used = _referenced(s, store, due)
        removed, recent = 0, time.time() - grace_s
        for key in sorted(due - used):
            written = store.modified(key)
            if written is not None and written > recent:
                continue  # written again just now: a row may be about to refer to it
            store.delete(key)
            removed += 1
            s.execute(delete(BlobCandidate).where(BlobCandidate.key == key))
        if used:
            s.execute(delete(BlobCandidate).where(BlobCandidate.key.in_(used)))
    if removed:
        log.info("collected %d blob(s) of deleted inputs or visualizations", removed)
    return removed


class Janitor:
    """Sweeps from a thread every ``interval_s`` until stopped."""

    def __init__(self, db: Database, store: BlobStore, grace_s: float,
                 interval_s: float, orphans: Orphans | None = None) -> None:
        self.db, self.store, self.grace_s, self.interval_s = db, store, grace_s, interval_s
        self.orphans = orphans
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="blob-janitor", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if self.orphans is not None:
                    self.orphans.flush(self.db)
                sweep(self.db, self.store, self.grace_s)
            except Exception:  # the database briefly unreachable: try again next time
                log.exception("blob sweep failed")

    def start(self) -> Janitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
