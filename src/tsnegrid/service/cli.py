"""``tsnegrid serve`` and ``tsnegrid apps create|list|revoke``.

Imported by the main CLI at start-up, so FastAPI, SQLAlchemy and uvicorn load only when one of
these commands runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from tsnegrid.errors import TsnegridError

DATA_OPTION = click.option("--data", "data_dir", required=True,
                           type=click.Path(file_okay=False, path_type=Path),
                           help="Folder holding the service's database, blobs and cache.")
DB_OPTION = click.option("--db", default=None, metavar="URL", envvar="TSNEGRID_SERVICE_DB",
                         help="Database: sqlite:///PATH or postgresql://USER:PASS@HOST:PORT/DB"
                              "  [default: SQLite in DATA]")


def _logs() -> None:
    """Set up logging as the main CLI's commands do (``--debug`` from the root command)."""
    from tsnegrid import logs

    ctx = click.get_current_context(silent=True)
    logs.configure(bool(ctx and ctx.find_root().params.get("debug")))


def _config(data_dir: Path, **values: Any) -> Any:
    from tsnegrid.service.config import load_config

    return load_config(data_dir=data_dir, **values)


@click.command()
@DATA_OPTION
@DB_OPTION
@click.option("--blobs", default=None, metavar="URL",
              help="Blob store: a folder or fsspec URL (file:///shared/blobs, "
                   "s3://bucket/prefix)  [default: DATA/blobs]")
@click.option("--host", default=None, help="Address to bind  [default: 127.0.0.1]")
@click.option("--port", default=None, type=int, help="Port to bind  [default: 8080]")
@click.option("--grpc-port", default=None, type=int,
              help="Port of the gRPC API (clarifai.api.V2, for the current Clarifai SDK); "
                   "0: none  [default: 18080]")
@click.option("--tls-cert", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="TLS certificate (PEM): serve HTTPS and secure gRPC  [default: none]")
@click.option("--tls-key", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="The TLS certificate's private key (PEM)")
@click.option("--public-url", default=None, metavar="URL",
              help="The address clients reach the service at, for urls in answers  "
                   "[default: as requested]")
@click.option("--workers", default=None, type=int,
              help="Job worker processes  [default: 1]")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler (tcp://host:8786) on which jobs embed  [default: none]")
def serve(data_dir: Path, db: str | None, blobs: str | None, host: str | None,
          port: int | None, grpc_port: int | None, tls_cert: Path | None,
          tls_key: Path | None, public_url: str | None, workers: int | None,
          scheduler: str | None) -> None:
    """Run the visualization API (Clarifai's v2: REST, and gRPC for the current SDK) on DATA.

    Other limits are read from TSNEGRID_SERVICE_* environment variables (see docs/service.md).
    """
    from tsnegrid.service.app import check_backends, run

    _logs()
    try:
        config = _config(data_dir, db=db, blobs=blobs, host=host, port=port,
                         grpc_port=grpc_port, tls_cert=tls_cert, tls_key=tls_key,
                         public_url=public_url, workers=workers, scheduler=scheduler)
        check_backends(config)
    except TsnegridError as exc:
        raise click.ClickException(str(exc)) from exc
    run(config)


def _database(data_dir: Path | None, db: str | None) -> Any:
    from tsnegrid.service.db import Database

    if db is None:
        if data_dir is None:
            raise click.UsageError("give --data DIR (its SQLite database) or --db URL")
        db = str(data_dir / "service.sqlite")
    try:
        return Database(db)
    except TsnegridError as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def _apps_session(data_dir: Path | None, db: str | None) -> Iterator[Any]:
    """A session on the apps' database, closed afterwards; library errors become one line."""
    database = _database(data_dir, db)
    try:
        with database.session() as s:
            yield s
    except TsnegridError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        database.close()


APPS_DATA_OPTION = click.option("--data", "data_dir", default=None,
                                type=click.Path(file_okay=False, path_type=Path),
                                help="The service's data folder (its SQLite database).")


@click.group()
def apps() -> None:
    """Create, list and revoke the apps (API keys) of a service's DATA folder."""


@apps.command("create")
@click.argument("name")
@APPS_DATA_OPTION
@DB_OPTION
def apps_create(name: str, data_dir: Path | None, db: str | None) -> None:
    """Create app NAME and print its API key (shown only this once)."""
    from tsnegrid.service.apps import create_app

    _logs()
    with _apps_session(data_dir, db) as s:
        key = create_app(s, name)
    click.echo(key)
    click.echo(f"created app {name!r}; the key above is shown only once", err=True)


@apps.command("list")
@APPS_DATA_OPTION
@DB_OPTION
def apps_list(data_dir: Path | None, db: str | None) -> None:
    """List apps: id, name, key prefix, created, state."""
    from tsnegrid.service.apps import list_apps

    _logs()
    with _apps_session(data_dir, db) as s:
        rows = list_apps(s)
    for a in rows:
        click.echo(f"{a.id}\t{a.name}\t{a.key_prefix}...\t{a.created_at}\t"
                   f"{'revoked' if a.revoked else 'active'}")


@apps.command("revoke")
@click.argument("name")
@APPS_DATA_OPTION
@DB_OPTION
def apps_revoke(name: str, data_dir: Path | None, db: str | None) -> None:
    """Revoke app NAME's key (its data stays)."""
    from tsnegrid.service.apps import revoke_app

    _logs()
    with _apps_session(data_dir, db) as s:
        revoke_app(s, name)
    click.echo(f"revoked app {name!r}", err=True)
