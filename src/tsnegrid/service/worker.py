"""Job workers: take pending visualizations from the database, run the pipeline, store outputs.

``Worker`` is usable in-process (``drain`` for tests); ``pool.WorkerPool`` runs it in child
processes so that embedding never blocks the HTTP server. Children die with the server
(PDEATHSIG and a parent check), and the next server start re-queues the jobs they held; a job
whose worker is lost otherwise (its node gone) is re-queued when its lease, renewed by a
thread, runs out.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import signal
import threading
import time
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import select

from tsnegrid.errors import ClusterError, InputError, TsnegridError
from tsnegrid.layout import Layout
from tsnegrid.metadata import Metadata
from tsnegrid.service import gc, incremental, jobs
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.db import App, Database, Input, Visualization
from tsnegrid.service.errors import api_message, storage_exhausted
from tsnegrid.service.storage import BlobStore
from tsnegrid.settings import Settings

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.3


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _from_dask(exc: BaseException) -> bool:
    """Raised by (or on the way through) the ``distributed`` package: a cancelled future, a
    closed comm, a connection timeout."""
    if type(exc).__module__.split(".")[0] == "distributed":
        return True
    tb = exc.__traceback__
    while tb is not None:
        if f"{os.sep}distributed{os.sep}" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def scheduler_lost(exc: BaseException, scheduler: str) -> str | None:
    """The reason to retry a job that failed because its Dask scheduler went away or could not
    be reached (not the job's fault); None for any other failure."""
    if not scheduler:
        return None
    for e in _chain(exc):
        if isinstance(e, ClusterError):  # the executor's own word: it names the address
            return f"{str(e).splitlines()[0][:300]} (not the job's fault)"
        if _from_dask(e) and isinstance(e, OSError | TimeoutError | CancelledError):
            detail = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            return (f"lost the Dask scheduler at {scheduler} ({type(e).__name__}: {detail}; "
                    "not the job's fault)")
    return None


class JobGone(Exception):
    """The job was deleted (or taken from this worker) while it ran."""


def job_settings(params: dict[str, Any], config: ServiceConfig) -> Settings:
    """The pipeline settings of a job: its request parameters plus the server's own (every job
    also gets the viewer, and the deep-zoom pyramid when its grid is too big for one image)."""
    return Settings(**incremental.settings_params(params), threads=config.threads,
                    cache_dir=config.cache, max_image_pixels=config.max_image_pixels,
                    scheduler=config.scheduler, html=True)


VIEWER_SKIP = frozenset({"layout.csv", "layout.json", "report.txt", "neighbors.npy"})


def layout_document(layout_dict: dict[str, Any], ids_by_path: dict[str, str]) -> dict[str, Any]:
    """layout.json with work-folder paths replaced by input ids and server paths removed."""
    doc = dict(layout_dict)
    doc["images"] = [{"input_id": ids_by_path.get(r["path"], r["path"]),
                      **{k: v for k, v in r.items() if k != "path"}}
                     for r in layout_dict["images"]]
    for key in ("skipped", "undrawn"):  # by input id: work-folder paths never leave
        doc[key] = [{"input_id": ids_by_path.get(s["path"], "?"),
                     "reason": s["reason"].replace(s["path"] + ": ", "")}
                    for s in layout_dict.get(key, [])]
    doc["settings"] = {k: v for k, v in layout_dict["settings"].items() if k != "cache_dir"}
    return doc


class LeaseKeeper:
    """Renews a running job's lease from a thread; ``lost`` is set once the job is not ours."""

    def __init__(self, db: Database, job: Visualization, lease_s: float) -> None:
        self.db, self.pk, self.attempt, self.lease_s = db, job.pk, job.attempts, lease_s
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job.pk}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                with self.db.session() as s:
                    if not jobs.renew_lease(s, self.pk, self.attempt, self.lease_s):
                        self.lost.set()
                        return
            except Exception:  # database briefly unreachable: try again next time
                log.exception("job %d: lease renewal failed", self.pk)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Worker:
    """Runs jobs one at a time with its own database connection."""

    def __init__(self, config: ServiceConfig, db: Database | None = None) -> None:
        self.config = config
        self.db = db or Database(config.db_url)
        self.store = BlobStore(config.blob_url)
        self._written: list[str] = []  # the running job's output blobs so far

    @property
    def owner(self) -> str:
        """This worker's name on the jobs it runs: its node and process id."""
        return jobs.worker_owner(self.config.node, os.getpid())

    def run_once(self) -> bool:
        """Run the next pending job; False when there was none."""
        with self.db.session() as s:
            job = jobs.claim_next(s, self.config.max_attempts, self.owner,
                                  self.config.lease_s)
        if job is None:
            return False
        self.run(job)
        return True

    def drain(self, limit: int = 1000) -> int:
        """Run pending jobs until none is left (tests); returns how many ran."""
        n = 0
        while n < limit and self.run_once():
            n += 1
        return n

    def _progress(self, job: Visualization, lease: LeaseKeeper) -> Any:
        last: dict[str, Any] = {"t": 0.0, "pct": -1, "stage": ""}
        pk, attempt = job.pk, job.attempts

        def report(stage: str, done: int, total: int) -> None:
            if lease.lost.is_set():
                raise JobGone()
            pct = max(jobs.stage_percent(stage, done, total), last["pct"])  # never backwards
            now = time.monotonic()
            if stage == last["stage"] and (pct == last["pct"]
                                           or now - last["t"] < PROGRESS_EVERY_S):
                return
            last.update(t=now, pct=pct, stage=stage)
            with self.db.session() as s:
                if not jobs.set_progress(s, pk, stage, pct, attempt):
                    raise JobGone()
        return report

    def run(self, job: Visualization) -> None:
        """Build the job's grid from its input blobs and store the outputs as blobs."""
        work = self.config.work_dir / job.viz_id
        shutil.rmtree(work, ignore_errors=True)
        (work / "in").mkdir(parents=True)
        self._written = []
        log.info("job %s: %d inputs, attempt %d", job.viz_id, len(job.inputs), job.attempts)
        try:
            with LeaseKeeper(self.db, job, self.config.lease_s) as lease:
                image_key, layout_key, viewer_key = self._build(job, work, lease)
            with self.db.session() as s:
                if jobs.finish(s, job.pk, image_key, layout_key, job.attempts, viewer_key):
                    log.info("job %s done", job.viz_id)
                else:
                    log.info("job %s was deleted or taken over before it finished", job.viz_id)
                    self._collect_written(job)
        except JobGone:
            log.info("job %s was deleted or taken over while running", job.viz_id)
            self._collect_written(job)
        except Exception as exc:
            lost = scheduler_lost(exc, self.config.scheduler)
            if lost is None:
                self._fail_with(job, exc, work)
            else:
                log.warning("job %s: %s; queued again", job.viz_id, lost)
                with self.db.session() as s:
                    jobs.retry(s, job.pk, lost, job.attempts)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _fail_with(self, job: Visualization, exc: Exception, work: Path) -> None:
        """Fail the job: a library error with its message, anything else (a bug) as an
        internal error, logged with its traceback, so that it fails the job, not the worker.
        A full disk or database is said as such, and the outputs stored so far are recorded
        for collection."""
        self._collect_written(job)
        full = storage_exhausted(exc)
        if full:
            log.error("job %s: storage exhausted: %s", job.viz_id, full)
            self._fail(job, f"the server's storage is full ({full}) while building the grid; "
                            "start the visualization again once space is freed")
            return
        if isinstance(exc, TsnegridError):
            self._fail(job, api_message(exc).replace(str(work / "in") + "/", ""))
            return
        log.error("job %s failed", job.viz_id, exc_info=exc)
        self._fail(job, f"internal error while building the grid ({type(exc).__name__})")

    def _build(self, job: Visualization, work: Path,
               lease: LeaseKeeper) -> tuple[str, str, str]:
        """Run the pipeline in ``work``; return the image, layout and viewer blob keys."""
        from tsnegrid.pipeline import build

        ids_by_path: dict[str, str] = {}
        for i, (input_id, key) in enumerate(job.inputs):
            dest = work / "in" / f"{i:06d}"
            self.store.link(key, dest)
            ids_by_path[str(dest)] = input_id
        extra: dict[str, Any] = {}
        if job.params.get("incremental"):
            layout, extra = self._add(job, work, ids_by_path, lease)
        else:
            settings = job_settings(job.params, self.config)
            layout = build([Path(p) for p in ids_by_path], work / "out", settings,
                           metadata=self._names_metadata(job, settings, ids_by_path),
                           progress=self._progress(job, lease))
        fmt = layout.settings.format
        image_key = self._put((work / "out" / f"grid.{fmt}").read_bytes())
        doc = {**layout_document(layout.to_dict(), ids_by_path), **extra}
        layout_key = self._put(json.dumps(doc).encode("utf-8"))
        viewer_key = self._store_viewer(job, layout, ids_by_path, work / "out")
        return image_key, layout_key, viewer_key

    def _add(self, job: Visualization, work: Path, ids_by_path: dict[str, str],
             lease: LeaseKeeper) -> tuple[Layout, dict[str, Any]]:
        """Extend the base's layout with the job's other inputs (``tsnegrid.pipeline.add``);
        return the layout and the ``incremental`` summary for the layout document."""
        from tsnegrid.pipeline import add

        base_id = str(job.params["base"])
        with self.db.session() as s:
            base = s.scalar(select(Visualization).where(Visualization.app_id == job.app_id,
                                                        Visualization.viz_id == base_id))
            base_inputs = dict(base.inputs) if base is not None else {}
            layout_key = base.layout_key if base is not None else None
        if layout_key is None:
            raise InputError(f"the base visualization {base_id} was deleted before this job ran")
        base_doc = json.loads(self.store.read(layout_key))
        keys = dict(job.inputs)
        kept = {path: i for path, i in ids_by_path.items() if base_inputs.get(i) == keys[i]}
        placed = {r["input_id"] for r in base_doc["images"]}
        sources = [Path(p) for p, i in ids_by_path.items() if p not in kept or i not in placed]
        seed = incremental.seed_layout(base_doc, {i: p for p, i in kept.items()},
                                       job_settings(job.params, self.config))
        (work / "out").mkdir()
        (work / "out" / "layout.json").write_text(json.dumps(seed), encoding="utf-8")
        added = add(sources, work / "out", progress=self._progress(job, lease))
        summary = {"base": base_id, "added": added.added, "moved": added.moved,
                   "rows_added": added.rows_added,
                   "dropped": len(placed - set(kept.values()))}
        return added.layout, {"incremental": summary}

    def _names_metadata(self, job: Visualization, settings: Settings,
                        ids_by_path: dict[str, str]) -> Metadata | None:
        """The inputs' metadata, keyed by their work paths, when the regions are named by a
        metadata field (read only then, a few hundred rows at a time)."""
        from tsnegrid.regions.naming import NAME_SOURCES

        if settings.names in NAME_SOURCES:
            return None
        path_of = {i: p for p, i in ids_by_path.items()}
        records: dict[str, dict[str, Any]] = {}
        ids = list(path_of)
        with self.db.session() as s:
            for start in range(0, len(ids), 500):
                rows = s.execute(select(Input.input_id, Input.meta).where(
                    Input.app_id == job.app_id, Input.input_id.in_(ids[start:start + 500])))
                records.update({path_of[i]: meta for i, meta in rows if meta})
        return Metadata.from_mapping(records)

    def _store_viewer(self, job: Visualization, layout: Layout, ids_by_path: dict[str, str],
                      out: Path) -> str:
        """Rewrite the viewer with input ids, metadata (no server paths) and the layout's
        look-alikes, titled after the app (as the CLI's page is after its output folder); store
        each of its files as a blob and return the key of the manifest
        ``{relative path: blob key}``."""
        from tsnegrid.render.viewer import write_viewer

        layout_dict = layout.to_dict()

        ids = [ids_by_path.get(r["path"], r["path"]) for r in layout_dict["images"]]
        view = {**layout_dict, "skipped": [], "undrawn": [],
                "images": [{**r, "path": i} for r, i in zip(layout_dict["images"], ids,
                                                              strict=True)]}
        with self.db.session() as s:
            rows = s.execute(select(Input.input_id, Input.meta).where(
                Input.app_id == job.app_id, Input.input_id.in_(ids)))
            metadata = {input_id: meta for input_id, meta in rows if meta}
            app = s.get(App, job.app_id)
        title = f"tsnegrid: {app.name if app is not None else job.viz_id}"
        write_viewer(view, out, metadata=metadata or None, title=title,
                     image_url=lambda input_id: "inputs/" + quote(input_id, safe=""),
                     neighbors=layout.neighbors, neighbors_from=layout.neighbors_from)
        manifest = {f.relative_to(out).as_posix(): self._put(f.read_bytes())
                    for f in sorted(out.rglob("*")) if f.is_file() and f.name not in VIEWER_SKIP}
        return self._put(json.dumps(manifest, sort_keys=True).encode("utf-8"))

    def _put(self, data: bytes) -> str:
        """Store an output blob, remembering it until the job is done."""
        key = self.store.put(data)
        self._written.append(key)
        return key

    def _collect_written(self, job: Visualization) -> None:
        """Record the failed job's output blobs for collection (best effort: the database may
        be what is full)."""
        if not self._written:
            return
        try:
            with self.db.session() as s:
                gc.mark(s, self._written)
        except Exception as exc:
            log.warning("job %s: cannot record its %d output blob(s) for collection (%s)",
                        job.viz_id, len(self._written), type(exc).__name__)

    def _fail(self, job: Visualization, reason: str) -> None:
        log.info("job %s failed: %s", job.viz_id, reason)
        with self.db.session() as s:
            jobs.fail(s, job.pk, reason, job.attempts)

    def run_forever(self, parent_pid: int | None = None) -> None:
        """Poll for jobs until the parent process goes away."""
        while parent_pid is None or os.getppid() == parent_pid:
            try:
                ran = self.run_once()
            except Exception:  # database busy or similar: retry after a pause
                log.exception("worker loop error")
                ran = False
            if not ran:
                time.sleep(self.config.poll_interval_s)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def worker_main(config_json: str, parent_pid: int) -> None:
    """Entry point of a worker process."""
    _die_with_parent()
    if os.getppid() != parent_pid:
        return
    logging.basicConfig(level=logging.INFO, format="%(levelname)s worker %(process)d: "
                                                   "%(message)s")
    Worker(ServiceConfig.model_validate_json(config_json)).run_forever(parent_pid)
