"""Where chunks of work run: in this process, or on a Dask cluster (local or remote).

``make_executor(scheduler, workers)`` picks the backend; both map a function over items and yield
``(index, result)`` as each item finishes, so that whatever is done can be kept at once (before a
loss or an interrupt), not only what precedes the first unfinished item. The Dask backend retries
a chunk whose worker was lost, so a lost worker costs only its chunk. A scheduler that cannot be
reached, is lost, or stops answering for ``timeout`` seconds (a frozen process keeps its socket
open, so only a deadline notices it) ends the run with one ``ClusterError`` naming its address,
never a hang.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from typing import Any, Protocol, TypeVar

from tsnegrid.errors import ClusterError, InputError, MissingDependencyError
from tsnegrid.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

RETRIES = 3
TIMEOUT = Settings.scheduler_timeout
"""Seconds to wait for the scheduler: to connect, and to answer while a build waits on it."""


class Executor(Protocol):
    """Maps a function over items; ``(index, result)`` pairs come back as items finish."""

    distributed: bool

    def map(self, fn: Callable[..., R], items: Sequence[Any],
            *args: Any) -> Iterator[tuple[int, R]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs everything in this process."""

    distributed = False

    def map(self, fn: Callable[..., R], items: Sequence[Any],
            *args: Any) -> Iterator[tuple[int, R]]:
        for i, item in enumerate(items):
            yield i, fn(item, *args)

    def close(self) -> None:
        pass


LOST = "connection lost (the scheduler stopped, or its host or network went away)"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no detail"
    return f"{type(exc).__name__}: {text}"


def _ask_identity(address: str, timeout: float) -> None:
    """Ask the scheduler who it is, within ``timeout`` seconds: a stopped (SIGSTOP) scheduler
    still accepts connections, and only an answer tells it is alive."""
    import asyncio

    from distributed.core import rpc

    async def ask() -> None:
        async with rpc(address, timeout=timeout) as scheduler:
            await scheduler.identity()

    # A second more than the connect timeout: a refused port ends as that OSError, not this.
    asyncio.run(asyncio.wait_for(ask(), timeout + 1))


class DaskExecutor:
    """Runs chunks on a Dask distributed cluster: an existing scheduler or a local one."""

    distributed = True

    def __init__(self, scheduler: str | None = None, workers: int = 0,
                 timeout: float = TIMEOUT) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise MissingDependencyError("distributed", extra="dask") from exc
        self.timeout = timeout
        self._cluster = None
        self.address = scheduler or "a local cluster"
        if scheduler:
            try:
                _ask_identity(scheduler, timeout)  # Client() itself waits forever on a frozen one
                self.client = Client(scheduler, timeout=f"{timeout}s")
            except TimeoutError:
                raise self._error(self._no_answer()) from None
            except (OSError, ValueError) as exc:
                raise self._error(f"cannot connect within {timeout:g} s", exc) from None
        else:
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            self.client = Client(self._cluster)
            self.address = str(self._cluster.scheduler_address)
        log.info("dask client: %s", self.client)

    def _no_answer(self) -> str:
        return f"no answer within {self.timeout:g} s (frozen, overloaded or unreachable)"

    def _error(self, what: str, exc: BaseException | None = None) -> ClusterError:
        detail = f" ({_one_line(exc)})" if exc is not None else ""
        return ClusterError(f"Dask scheduler at {self.address}: {what}{detail}")

    def _finished(self, pending: set[Any]) -> set[Any]:
        """Some finished futures of ``pending``; ``ClusterError`` once the scheduler does not
        answer a probe within ``timeout`` (a slow chunk on a live scheduler just waits longer)."""
        from distributed import wait

        while True:
            try:
                return set(wait(list(pending), timeout=self.timeout,
                                return_when="FIRST_COMPLETED").done)
            except CancelledError as exc:  # FuturesCancelledError: the connection was lost
                raise self._error(LOST) from exc
            except TimeoutError:
                try:
                    self.client.sync(self.client.scheduler.identity,
                                     callback_timeout=self.timeout)
                except TimeoutError:
                    raise self._error(self._no_answer()) from None
                except OSError as exc:
                    raise self._error(self._no_answer(), exc) from None

    def _result(self, future: Any) -> Any:
        """A finished future's result, its cluster failures as ``ClusterError``."""
        from distributed import KilledWorker

        try:
            return future.result(timeout=self.timeout)
        except CancelledError as exc:  # FutureCancelledError: the connection was lost
            raise self._error(LOST) from exc
        except KilledWorker as exc:
            raise self._error(f"workers died {RETRIES + 1} times running one chunk",
                              exc) from None
        except (OSError, TimeoutError) as exc:  # CommClosedError and the like
            raise self._error("connection failed", exc) from None

    def map(self, fn: Callable[..., R], items: Sequence[Any],
            *args: Any) -> Iterator[tuple[int, R]]:
        futures = [self.client.submit(fn, item, *args, retries=RETRIES, pure=False)
                   for item in items]
        index = {f.key: i for i, f in enumerate(futures)}
        pending = set(futures)
        try:
            while pending:
                done = self._finished(pending)
                pending -= done
                for f in sorted(done, key=lambda f: index[f.key]):
                    yield index[f.key], self._result(f)
        finally:
            try:  # one message on the batched stream: does not wait on the scheduler
                self.client.cancel(list(pending))
            except Exception as exc:  # a client already closed by the loss
                log.info("cancelling dask futures: %s", _one_line(exc))

    def close(self) -> None:
        try:
            self.client.close(timeout=self.timeout)
        except (OSError, TimeoutError) as exc:
            log.info("closing the dask client: %s", _one_line(exc))
        if self._cluster is not None:
            self._cluster.close()


def make_executor(scheduler: str | None = None, workers: int = 0,
                  timeout: float = TIMEOUT) -> Executor:
    """``scheduler`` address wins; else ``workers`` > 0 starts a local cluster; else in-process.
    ``timeout``: seconds the scheduler may take to connect or to answer."""
    if workers < 0:
        raise InputError(f"workers must be 0 or more, got {workers}")
    if timeout <= 0:
        raise InputError(f"scheduler timeout must be positive, got {timeout:g} s")
    if scheduler or workers > 0:
        return DaskExecutor(scheduler, workers, timeout)
    return LocalExecutor()
