"""GetApp and ListApps (REST over ``methods.apps``): ``/v2/users/{user_id}/apps/{app_id}``
and ``/v2/app``, ``/v2/users/{user_id}/apps`` and ``/v2/apps``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tsnegrid.service.api.deps import CallDep, PageDep
from tsnegrid.service.api.methods import apps
from tsnegrid.service.api.paths import path_app, path_user
from tsnegrid.service.api.schemas import ERRORS, AppResponse, AppsResponse

router = APIRouter(prefix="/v2", tags=["apps"], responses=ERRORS)


@router.get("/app", response_model=AppResponse)
def get_app(request: Request, call: CallDep) -> dict[str, Any]:
    """The key's app."""
    named = path_app(request.state)
    return apps.get_app(call, named[1] if named else None,
                        named[0] if named else None)[0]


@router.get("/apps", response_model=AppsResponse)
def list_apps(request: Request, call: CallDep, page: PageDep) -> dict[str, Any]:
    """The apps the key opens: its own."""
    return apps.list_apps(call, page, path_user(request.state))[0]
