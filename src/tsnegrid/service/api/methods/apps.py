"""GetApp and ListApps: the one app a key opens."""

from __future__ import annotations

from typing import Any

from tsnegrid.service.api.methods.auth import check_app
from tsnegrid.service.api.methods.call import OK, Answer, Call, iso
from tsnegrid.service.api.methods.pages import Page
from tsnegrid.service.db import App


def app_json(app: App, user_id: str | None) -> dict[str, Any]:
    """``App``: its name is its id (what ``user_app_id.app_id`` and paths name)."""
    out: dict[str, Any] = {"id": app.name, "name": app.name, "created_at": iso(app.created_at),
                           "default_language": "en"}
    if user_id:
        out["user_id"] = user_id
    return out


def get_app(call: Call, app_id: str | None, user_id: str | None = None) -> Answer:
    """The caller's app (another app's id answers 404, as an app that does not exist)."""
    check_app(call.caller, [app_id])
    return {"status": OK, "app": app_json(call.caller, user_id)}, 200


def list_apps(call: Call, page: Page, user_id: str | None = None) -> Answer:
    """The apps this key opens: its own."""
    apps = [call.caller][page.offset:page.offset + page.per_page]
    return {"status": OK, "apps": [app_json(a, user_id) for a in apps]}, 200
