"""The job worker processes of one server, supervised.

``WorkerPool`` starts ``config.workers`` child processes (``worker.worker_main``) and a thread
that checks them every second: a child that died (an OOM kill, a crash) has its running job
queued again at once, costing that job one attempt, its work folder is removed, and it is
replaced. ``healthy`` is False while fewer children run than configured, so ``/healthz``
reports it.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import shutil
import threading
from multiprocessing.process import BaseProcess

from tsnegrid.service import jobs
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.db import Database
from tsnegrid.service.worker import worker_main

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0


class WorkerPool:
    """``config.workers`` worker processes, started and stopped with the server."""

    def __init__(self, config: ServiceConfig, db: Database | None = None,
                 check_every_s: float = CHECK_EVERY_S) -> None:
        self.config, self.db, self.check_every_s = config, db, check_every_s
        self.procs: list[BaseProcess] = []
        self.restarts = 0
        self._ctx = mp.get_context("spawn")
        self._payload = config.model_dump_json()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def wanted(self) -> int:
        return self.config.workers

    def _spawn(self, i: int) -> BaseProcess:
        p = self._ctx.Process(target=worker_main, args=(self._payload, os.getpid()),
                              name=f"tsnegrid-worker-{i}", daemon=True)
        p.start()
        return p

    def start(self, supervise: bool = True) -> None:
        """Start the children, and (``supervise``) the thread that replaces dead ones."""
        with self._lock:
            self.procs = [self._spawn(i) for i in range(self.wanted)]
        if supervise and self.wanted:
            self._thread = threading.Thread(target=self._supervise, name="worker-supervisor",
                                            daemon=True)
            self._thread.start()

    def _supervise(self) -> None:
        while not self._stop.wait(self.check_every_s):
            try:
                self.check()
            except Exception:  # the database briefly unreachable: try again next time
                log.exception("worker supervision failed")

    def check(self) -> int:
        """One supervision pass: re-queue the jobs of dead children and replace them; returns
        how many were replaced."""
        replaced = 0
        with self._lock:
            for i, p in enumerate(self.procs):
                if p.is_alive() or self._stop.is_set():
                    continue
                p.join(0)
                n = 0
                if self.db is not None and p.pid is not None:
                    owner = jobs.worker_owner(self.config.node, p.pid)
                    with self.db.session() as s:
                        for viz_id in jobs.running_of(s, owner):  # before anyone retries it
                            shutil.rmtree(self.config.work_dir / viz_id, ignore_errors=True)
                        n = jobs.requeue_owner(s, owner)
                log.warning("worker process %s exited (code %s); %d job(s) queued again; "
                            "starting a new one", p.pid, p.exitcode, n)
                self.procs[i] = self._spawn(i)
                self.restarts += 1
                replaced += 1
        return replaced

    def alive(self) -> int:
        return sum(p.is_alive() for p in self.procs)

    @property
    def healthy(self) -> bool:
        """True when as many children run as configured."""
        return self.alive() >= self.wanted

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.pid is not None and p.is_alive()]

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s + self.check_every_s)
        with self._lock:
            for p in self.procs:
                p.terminate()
            for p in self.procs:
                p.join(timeout_s)
                if p.is_alive():
                    p.kill()
                    p.join(timeout_s)
            self.procs.clear()
