"""The app factory: ``create_app(config)`` builds the ASGI app; nothing happens at import time.

Start-up takes the data folder's lock (one server per folder), re-queues jobs whose worker died
with a previous server on this folder (or whose lease ran out), removes what a killed server
left behind (work folders, unfinished blob writes), starts the blob collector and the worker
processes (supervised: a dead one is replaced); shutdown stops them. Several servers may share
one PostgreSQL database and blob store, each with its own data folder.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tsnegrid.service import gc, jobs
from tsnegrid.service.api import errors as api_errors
from tsnegrid.service.api.embedders import EmbedRunner
from tsnegrid.service.api.paths import UserAppPrefix
from tsnegrid.service.api.routes import apps, health, inputs, models, visualizations
from tsnegrid.service.api.state import ServiceState
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.db import Database
from tsnegrid.service.errors import ServerBusyError
from tsnegrid.service.ingest import DecodeBudget, FetchSlots
from tsnegrid.service.pool import WorkerPool
from tsnegrid.service.storage import BlobStore
from tsnegrid.service.urlfetch import AllowList

log = logging.getLogger(__name__)


class BodyLimit:
    """Answer 413 to request bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _too_large(self, send: Send) -> None:
        await api_errors.error_response(
            413, api_errors.Code.CONN_EXCEEDS_LIMITS,
            f"request body exceeds the limit of {self.max_bytes:,} bytes")(
            {"type": "http"}, _no_receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared:
            if not declared.isdigit() or int(declared) > self.max_bytes:
                await self._too_large(send)
                return
            await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:  # no length given: buffer, up to the limit
            msg = await receive()
            if msg["type"] != "http.request":
                return
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            more = msg.get("more_body", False)
            if size > self.max_bytes:
                await self._too_large(send)
                return
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks),
                                  "more_body": False}]

        async def replay_receive() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replay_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _take_lock(config: ServiceConfig) -> int:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(config.data_dir / "server.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise ServerBusyError(f"another server is using {config.data_dir}") from exc
    return fd


def ensure_unlocked(config: ServiceConfig) -> None:
    """Raise ``ServerBusyError`` now if another server holds the data folder."""
    os.close(_take_lock(config))


def _start_grpc(state: ServiceState, app: FastAPI) -> Any:
    from tsnegrid.service.api.grpc import server

    return server.start(state, app.url_path_for)


def _check_port(host: str, port: int, what: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ServerBusyError(f"cannot bind {what} to {host}:{port}: "
                                  f"{exc.strerror or exc}") from None


def check_backends(config: ServiceConfig) -> None:
    """Fail now, with a clear error, if the data folder is taken, a port is in use or the
    database or blob store cannot be used (rather than after uvicorn started)."""
    ensure_unlocked(config)
    if config.grpc_port:
        _check_port(config.host, config.grpc_port, "--grpc-port (0: no gRPC)")
    Database(config.db_url).close()
    BlobStore(config.blob_url)


def create_app(config: ServiceConfig) -> FastAPI:
    """Build the service's ASGI app for ``config``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        fd = _take_lock(config)
        state = ServiceState(config, Database(config.db_url), BlobStore(config.blob_url),
                             AllowList.parse(config.url_allow),
                             EmbedRunner(config.cache, config.threads, config.max_image_pixels),
                             FetchSlots(config.url_fetches_max, config.url_fetches_per_app,
                                        config.url_timeout_s),
                             DecodeBudget(config.decode_budget_bytes))
        with state.db.session() as s:
            n = jobs.requeue_orphans(s, config.node)
        if n:
            log.warning("re-queued %d job(s) whose worker was lost", n)
        gc.clean_at_startup(config, state.store)
        gc.sweep(state.db, state.store, config.blob_grace_s)
        janitor = gc.Janitor(state.db, state.store, config.blob_grace_s,
                             min(max(config.blob_grace_s / 2, 1.0), 300.0),
                             state.orphans).start()
        pool = WorkerPool(config, state.db)
        pool.start()
        rpc = _start_grpc(state, app) if config.grpc_port else None
        app.state.service, app.state.workers = state, pool
        try:
            yield
        finally:
            if rpc is not None:
                rpc.stop(grace=5).wait()
            janitor.stop()
            pool.stop()
            state.db.close()
            os.close(fd)

    app = FastAPI(title="tsnegrid visualization service", version="2",
                  summary="Clarifai's v2 API (inputs, models, visualizations): add image "
                          "inputs, start a visualization, poll it, fetch the grid.",
                  lifespan=lifespan)
    api_errors.install(app)
    for module in (inputs, visualizations, models, apps, health):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(UserAppPrefix)
    return app


def run(config: ServiceConfig, **uvicorn_options: Any) -> None:
    """Serve ``config`` with uvicorn until interrupted."""
    import uvicorn

    from tsnegrid.service.slowclients import protocol

    uvicorn_options.setdefault("http", protocol(config.header_timeout_s, config.body_timeout_s))
    if config.tls_cert is not None:
        uvicorn_options.setdefault("ssl_certfile", str(config.tls_cert))
        uvicorn_options.setdefault("ssl_keyfile", str(config.tls_key))
    uvicorn.run(create_app(config), host=config.host, port=config.port,
                log_level=uvicorn_options.pop("log_level", "info"), **uvicorn_options)
