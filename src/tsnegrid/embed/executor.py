"""Where chunks of work run: in this process, or on a Dask cluster (local or remote).

``make_executor(scheduler, workers)`` picks the backend; both map a function over items and yield
results in item order. The Dask backend retries a chunk whose worker was lost, so a lost worker
costs only its chunk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from tsnegrid.errors import InputError, MissingDependencyError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

RETRIES = 3


class Executor(Protocol):
    """Maps a function over items; results come back in item order."""

    distributed: bool

    def map(self, fn: Callable[..., R], items: Sequence[Any], *args: Any) -> Iterator[R]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs everything in this process."""

    distributed = False

    def map(self, fn: Callable[..., R], items: Sequence[Any], *args: Any) -> Iterator[R]:
        for item in items:
            yield fn(item, *args)

    def close(self) -> None:
        pass


class DaskExecutor:
    """Runs chunks on a Dask distributed cluster: an existing scheduler or a local one."""

    distributed = True

    def __init__(self, scheduler: str | None = None, workers: int = 0) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise MissingDependencyError("distributed", extra="dask") from exc
        self._cluster = None
        if scheduler:
            self.client = Client(scheduler, timeout="30s")
        else:
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            self.client = Client(self._cluster)
        log.info("dask client: %s", self.client)

    def map(self, fn: Callable[..., R], items: Sequence[Any], *args: Any) -> Iterator[R]:
        futures = [self.client.submit(fn, item, *args, retries=RETRIES, pure=False)
                   for item in items]
        try:
            for f in futures:
                yield f.result()
        finally:
            for f in futures:
                f.cancel()

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(scheduler: str | None = None, workers: int = 0) -> Executor:
    """``scheduler`` address wins; else ``workers`` > 0 starts a local cluster; else in-process."""
    if workers < 0:
        raise InputError(f"workers must be 0 or more, got {workers}")
    if scheduler or workers > 0:
        return DaskExecutor(scheduler, workers)
    return LocalExecutor()
