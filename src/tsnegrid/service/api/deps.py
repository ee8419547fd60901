"""Request dependencies as ``Annotated`` aliases: the service state, a session, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from tsnegrid.service.api.embedders import EmbedRunner
from tsnegrid.service.api.errors import KeyNotFoundError
from tsnegrid.service.api.paths import path_app
from tsnegrid.service.apps import app_for_key, hash_key
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.db import App, Database
from tsnegrid.service.errors import AuthError, NotFoundError
from tsnegrid.service.ingest import DecodeBudget, FetchSlots
from tsnegrid.service.storage import BlobStore
from tsnegrid.service.urlfetch import AllowList

T = TypeVar("T")


@dataclass
class ServiceState:
    """Everything a request handler may touch; built once by the app factory."""

    config: ServiceConfig
    db: Database
    store: BlobStore
    allow: AllowList
    embed: EmbedRunner
    fetch_slots: FetchSlots | None = None
    decode_budget: DecodeBudget | None = None


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with state.db.session() as s:
        yield s


SessionDep = Annotated[Session, Depends(get_session)]

api_key_header = APIKeyHeader(name="Authorization", auto_error=False,
                              description="`Key <your API key>`")


def get_caller(request: Request, session: SessionDep,
               authorization: Annotated[str | None, Depends(api_key_header)]) -> App:
    """The app whose key came in ``Authorization: Key <key>`` (401 otherwise: 11009 for a key
    no app has, 11008 for a revoked, missing or malformed one). A path of the form
    ``/v2/users/{user_id}/apps/{app_id}/...`` must name that app (its name) in ``app_id``;
    any other answers 404, as an app that does not exist would."""
    if not authorization:
        raise AuthError("missing Authorization header; send 'Authorization: Key <api key>'")
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() != "key" or not key.strip():
        raise AuthError("malformed Authorization header; send 'Authorization: Key <api key>'")
    app = app_for_key(session, key.strip())
    if app is None:
        if session.scalar(select(App.id).where(App.key_hash == hash_key(key.strip()))):
            raise AuthError("API key revoked")
        raise KeyNotFoundError("API key not found")
    named = path_app(request.state)
    for app_id in (named[1] if named else None, request.query_params.get("user_app_id.app_id")):
        if app_id and app_id != app.name:  # the clients repeat user_app_id in GET queries
            raise NotFoundError(f"app {app_id!r} not found")
    return app


CallerDep = Annotated[App, Depends(get_caller)]


@dataclass(frozen=True)
class Page:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def fetch(self, session: Session, model: type[T], app_id: int,
              order: ColumnElement[Any]) -> tuple[list[T], dict[str, int]]:
        """This page of an app's rows of ``model`` and the pagination block."""
        where = model.app_id == app_id  # type: ignore[attr-defined]
        rows = list(session.scalars(select(model).where(where).order_by(order)
                                    .offset(self.offset).limit(self.per_page)))
        total = session.scalar(select(func.count()).select_from(model).where(where)) or 0
        return rows, {"page": self.page, "per_page": self.per_page, "total": total}


def get_page(state: StateDep,
             page: Annotated[int, Query(ge=1, le=1_000_000, description="1-based page")] = 1,
             per_page: Annotated[int, Query(ge=1, le=1000, description="items per page")] = 30,
             ) -> Page:
    return Page(page, min(per_page, state.config.page_size_max))


PageDep = Annotated[Page, Depends(get_page)]


def check_body_app(caller: App, user_app_id: Any) -> None:
    """A body's ``user_app_id.app_id``, when given, must name the caller's app (else 404)."""
    app_id = getattr(user_app_id, "app_id", None)
    if app_id and app_id != caller.name:
        raise NotFoundError(f"app {app_id!r} not found")
