"""Request dependencies as ``Annotated`` aliases: the service state, a session, the caller,
and the ``Call`` a v2 method runs with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader
from sqlalchemy.orm import Session

from tsnegrid.service.api.methods.auth import authenticate, check_app
from tsnegrid.service.api.methods.call import Call, Links
from tsnegrid.service.api.methods.models import PUBLIC_APP
from tsnegrid.service.api.methods.pages import MAX_PAGE, Page
from tsnegrid.service.api.paths import path_app
from tsnegrid.service.api.state import ServiceState
from tsnegrid.service.db import App

__all__ = ["CallDep", "CallerDep", "PageDep", "ServiceState", "SessionDep", "StateDep"]


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
    ``/v2/users/{user_id}/apps/{app_id}/...`` must name that app (its name) in ``app_id``, as
    must a query's ``user_app_id.app_id`` (the clients repeat it in GET queries); any other
    answers 404, as an app that does not exist would (a model may also be read in ``main``)."""
    state = get_state(request)
    app = authenticate(session, authorization, state.auth_failures,
                       request.client.host if request.client else "")
    named = path_app(request.state)
    app_ids = [named[1] if named else None, request.query_params.get("user_app_id.app_id")]
    if request.url.path.startswith("/v2/models"):  # the built-in models' public app
        app_ids = [None if a == PUBLIC_APP else a for a in app_ids]
    check_app(app, app_ids)
    return app


CallerDep = Annotated[App, Depends(get_caller)]


def links(request: Request, state: ServiceState) -> Links:
    """Urls as the caller reached this server, or under the configured public url."""
    if state.config.public_url:
        return Links.under(state.config.public_url, request.app.url_path_for)
    return Links(lambda name, **params: str(request.url_for(name, **params)))


def get_call(request: Request, state: StateDep, session: SessionDep,
             caller: CallerDep) -> Call:
    return Call(state, session, caller, links(request, state))


CallDep = Annotated[Call, Depends(get_call)]


def get_page(state: StateDep,
             page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page")] = 1,
             per_page: Annotated[int, Query(ge=1, le=1000, description="items per page")] = 30,
             ) -> Page:
    return Page.of(page, per_page, state.config.page_size_max)


PageDep = Annotated[Page, Depends(get_page)]


def check_body_app(caller: App, user_app_id: object) -> None:
    """A body's ``user_app_id.app_id``, when given, must name the caller's app (else 404)."""
    check_app(caller, [getattr(user_app_id, "app_id", None)])
