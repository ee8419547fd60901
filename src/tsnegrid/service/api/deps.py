"""Request dependencies as ``Annotated`` aliases: the service state, a session, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from tsnegrid.service.apps import app_for_key
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.db import App, Database
from tsnegrid.service.errors import AuthError
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


def get_caller(session: SessionDep, authorization: Annotated[str | None,
                                                             Depends(api_key_header)]) -> App:
    """The app whose key came in ``Authorization: Key <key>``; 401 otherwise."""
    if not authorization:
        raise AuthError("missing Authorization header; send 'Authorization: Key <api key>'")
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() != "key" or not key.strip():
        raise AuthError("malformed Authorization header; send 'Authorization: Key <api key>'")
    app = app_for_key(session, key.strip())
    if app is None:
        raise AuthError("API key not valid (unknown or revoked)")
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
