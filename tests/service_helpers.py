"""Shared helpers and fixtures of the service tests: real servers on free ports, keys, images,
and the database each test runs against.

Test modules import the fixtures they use from here (tests/conftest.py is not this module's).
``db_url`` runs a test on SQLite (``None``: the default file in the data folder) and on a fresh
PostgreSQL database made on the server named by ``TSNEGRID_TEST_DATABASE_URL`` (skipped when it
is unset; ``bash .ci/start-postgres`` starts one and prints its URL).
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

DEMO = Path(__file__).resolve().parents[1] / "demo" / "emoji-1024" / "images"
START_TIMEOUT_S = 60.0
PG_ENV = "TSNEGRID_TEST_DATABASE_URL"


def demo_images(n: int, start: int = 0) -> list[Path]:
    files = sorted(DEMO.glob("*.png"))[start:start + n]
    assert len(files) == n, f"need {n} demo images in {DEMO}"
    return files


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def image_inputs(files: list[Path], **metadata: Any) -> list[dict[str, Any]]:
    """``inputs`` entries for POST /v2/inputs, ids from the file names."""
    return [{"id": f.stem, "data": {"image": {"base64": b64(f.read_bytes())},
                                    "metadata": {"name": f.stem, **metadata}}} for f in files]


def assert_same_concepts(got: list[dict[str, Any]], want: list[dict[str, Any]],
                         tol: float = 1e-3) -> None:
    """Two top-k concept lists of the same model and image agree: place by place in value
    (within ``tol``), and in id but for near-ties: which of two concepts about equally probable
    comes first rests on the floats' last bits, which another machine or batch size changes."""
    assert len(got) == len(want)
    assert max(abs(a["value"] - b["value"]) for a, b in zip(got, want, strict=True)) < tol
    wanted = {c["id"]: c["value"] for c in want}
    for a in got:
        if a["id"] in wanted:  # the same concept, at about the same probability
            assert abs(a["value"] - wanted[a["id"]]) < tol, (a, want)
        else:  # in one top-k, just past the other's: tied with the last there
            assert abs(a["value"] - want[-1]["value"]) < tol, (a, want)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty schema on the test PostgreSQL database (dropped afterwards): a URL whose
    connections see only that schema. Cheaper than a database per test."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (bash .ci/start-postgres prints one)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from tsnegrid.service.db import database_url

    url = make_url(database_url(base))
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
                hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text("SET lock_timeout = '20s'"))
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The test's database: ``None`` (SQLite in the data folder) or a fresh PostgreSQL URL."""
    if request.param == "sqlite":
        yield None
        return
    with postgres_database() as url:
        yield url


# On a test: run it on SQLite only (it checks nothing the database changes; saves time).
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def db_args(db: str | None) -> list[str]:
    """``--db URL`` for the CLI, or nothing for the default SQLite file."""
    return ["--db", db] if db else []


def create_key(data_dir: Path, name: str, db: str | None = None) -> str:
    from tsnegrid.service.apps import create_app
    from tsnegrid.service.db import Database

    database = Database(db or data_dir / "service.sqlite")
    try:
        with database.session() as s:
            return create_app(s, name)
    finally:
        database.close()


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Server:
    """``python -m tsnegrid.service`` on 127.0.0.1 and a free port, with its own data folder."""

    def __init__(self, data_dir: Path, cache_dir: Path, db: str | None = None,
                 grpc: bool = False, tls: tuple[Path, Path] | None = None, **env: str) -> None:
        """``grpc``: serve gRPC too, on a free port; ``tls``: (certificate, key) files."""
        self.data_dir, self.cache_dir, self.db, self.env = data_dir, cache_dir, db, env
        self.grpc, self.tls = grpc, tls
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = self.grpc_port = 0
        self.log = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _options(self) -> list[str]:
        options = ["--host", "127.0.0.1", "--port", str(self.port), *db_args(self.db),
                   "--grpc-port", str(self.grpc_port)]
        if self.tls:
            options += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        return options

    def start(self) -> Server:
        env = {**os.environ, "TSNEGRID_SERVICE_CACHE_DIR": str(self.cache_dir),
               "TSNEGRID_SERVICE_POLL_INTERVAL_S": "0.2", **self.env}
        for _attempt in range(3):
            self.port = free_port()
            self.grpc_port = free_port() if self.grpc else 0
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "tsnegrid.service", "--data", str(self.data_dir),
                     *self._options()],
                    stdout=log, stderr=subprocess.STDOUT, env=env)
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError(f"server did not start; log:\n{self.log.read_text()[-3000:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                r = httpx.get(self.url + "/healthz", timeout=2,
                              verify=(ssl.create_default_context(cafile=str(self.tls[0]))
                                      if self.tls else True))
                wanted = 0 if self.env.get("TSNEGRID_SERVICE_WORKERS") == "0" else 1
                if r.status_code == 200 and r.json()["workers"] >= wanted:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)


class Client:
    """httpx against a server with one app's key; every call has a timeout."""

    def __init__(self, base_url: str, key: str | None) -> None:
        headers = {"Authorization": f"Key {key}"} if key else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=60)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)

    def wait_done(self, viz_id: str, timeout_s: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            out = self.http.get(f"/v2/visualizations/{viz_id}").json()["output"]
            if out["status"]["code"] in ("DONE", "FAILED"):
                return dict(out)
            time.sleep(0.2)
        raise AssertionError(f"visualization {viz_id} not finished after {timeout_s} s")


@pytest.fixture(scope="session")
def service_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model/embedding cache for all service tests (the ONNX export happens once)."""
    return tmp_path_factory.mktemp("service-cache")


@pytest.fixture
def start_server(tmp_path: Path, service_cache: Path) -> Iterator[Any]:
    """Factory: start a server on a data folder; every server is stopped at teardown."""
    servers: list[Server] = []

    def start(data_dir: Path | None = None, db: str | None = None, **env: str) -> Server:
        server = Server(data_dir or tmp_path / "data", service_cache, db, **env).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()
