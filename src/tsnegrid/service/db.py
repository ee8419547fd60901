"""Metadata in SQLite (WAL, the default) or PostgreSQL: apps and their keys, inputs, jobs.

SQLite runs with ``synchronous=FULL``: a commit returns once it is on disk (WAL and all), so
an acknowledged upload survives a power loss, not only a crash of the process.

``Database`` owns the engine; callers get sessions from it and pass them on, never a global.
The schema is created the same way on both (``create_all``); PostgreSQL lets several API nodes
and workers share one database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from tsnegrid.errors import InputError, MissingDependencyError
from tsnegrid.service.errors import BackendError

# Held while creating the schema, so that nodes starting together do not race on PostgreSQL.
_SCHEMA_LOCK = 0x7473_6E65


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class App(Base):
    """An application: a named owner of inputs and visualizations, with one API key."""

    __tablename__ = "apps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Input(Base):
    """One stored image of an app; its bytes are a blob."""

    __tablename__ = "inputs"
    __table_args__ = (UniqueConstraint("app_id", "input_id"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    input_id: Mapped[str] = mapped_column(String(128))
    blob_key: Mapped[str] = mapped_column(String(64))
    mime: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Visualization(Base):
    """A grid job: its parameters, the inputs it was given, its state and its output blobs."""

    __tablename__ = "visualizations"
    __table_args__ = (Index("ix_vis_status", "status", "pk"),)
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    viz_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str] = mapped_column(String(16), default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    inputs: Mapped[list[list[str]]] = mapped_column(JSON)
    image_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    layout_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    viewer_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    viewer_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str] = mapped_column(String(300), default="")
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class BlobCandidate(Base):
    """A blob that lost a reference (its input or visualization was deleted); collected once
    no row uses it and it was not written again for a while (see ``service.gc``)."""

    __tablename__ = "blob_candidates"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    since: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class InputsAddJob(Base):
    """One ``PostInputs`` batch sent with an ``inputs_add_job_id`` (the current client's
    uploads): a batch is stored within its request, so a job is complete once recorded, and
    ``GetInputsAddJob`` answers the sum of its batches' counts."""

    __tablename__ = "inputs_add_jobs"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id"), index=True)
    job_id: Mapped[str] = mapped_column(String(128), index=True)
    succeeded: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # a commit is on disk: it survives a power loss
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


# Columns added after the first release, created on databases that lack them.
_ADDED_COLUMNS = {"visualizations": {"owner": "VARCHAR(300) NOT NULL DEFAULT ''",
                                     "lease_until": "TIMESTAMP", "viewer_key": "VARCHAR(64)",
                                     "viewer_token": "VARCHAR(64)"}}


def database_url(url: str | Path) -> str:
    """A SQLAlchemy URL for ``url``: a path means SQLite; postgresql:// means psycopg 3."""
    if isinstance(url, Path) or "://" not in url:
        return f"sqlite:///{url}"
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InputError(f"not a database URL: {url!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise InputError("an SQLite database URL needs a file: sqlite:///PATH")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() != "postgresql" or parsed.get_driver_name() != "psycopg":
        raise InputError(f"unsupported database {parsed.drivername!r}: use sqlite:///PATH or "
                         "postgresql://USER:PASSWORD@HOST:PORT/DB")
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("psycopg", extra="postgres") from exc
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _create_schema(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
    Base.metadata.create_all(conn)
    insp = inspect(conn)
    for table, columns in _ADDED_COLUMNS.items():
        have = {c["name"] for c in insp.get_columns(table)}
        for name, ddl in columns.items():
            if name not in have:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}"))


def insert_new_inputs(session: Session, rows: list[Input]) -> set[str]:
    """Insert those of ``rows`` whose id the app does not have yet, in one statement that
    skips conflicting ids (``ON CONFLICT DO NOTHING``: a concurrent upload of the same id makes
    that input a duplicate, not the batch an error); return the input ids inserted."""
    if not rows:
        return set()
    from sqlalchemy.dialects import postgresql, sqlite

    pg = session.get_bind().dialect.name == "postgresql"
    insert = postgresql.insert if pg else sqlite.insert
    columns = [c.key for c in Input.__table__.columns if c.key != "pk"]
    for r in rows:  # column defaults, also on the objects (the caller answers with them)
        r.created_at = r.created_at or utcnow()
        r.meta = r.meta or {}
    values = [{c: getattr(r, c) for c in columns} for r in rows]
    stmt = (insert(Input).values(values)
            .on_conflict_do_nothing(index_elements=["app_id", "input_id"])
            .returning(Input.input_id))
    return set(session.scalars(stmt))


class Database:
    """The service's database (SQLite file or PostgreSQL server); create one per process."""

    def __init__(self, url: str | Path) -> None:
        self.engine: Engine = _create_engine(database_url(url))
        try:
            with self.engine.begin() as conn:
                _create_schema(conn)
        except OperationalError as exc:
            self.engine.dispose()
            shown = self.engine.url.render_as_string(hide_password=True)
            raise BackendError(f"cannot use the database {shown}: {exc.orig}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self._sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def close(self) -> None:
        self.engine.dispose()
