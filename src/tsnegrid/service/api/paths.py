"""Clarifai's two spellings of every v2 path, and a clear answer for the paths not served.

Each v2 method answers at ``/v2/...`` and at ``/v2/users/{user_id}/apps/{app_id}/...`` (the
form the official clients use when a request carries ``user_app_id``). ``UserAppPrefix``
serves the second by rewriting it to the first before routing and keeping the two ids in the
request state, where ``deps.get_caller`` checks that ``app_id`` names the caller's own app.
There are no users here, so ``user_id`` is accepted as given (clients send ``me`` by default),
and ``/v2/users/{user_id}/models`` (the current API's ListModels without an app) is
``/v2/models``.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from tsnegrid.service.api.status_codes import Code

PREFIX = re.compile(r"^/v2/users/(?P<user>[^/]+)/apps/(?P<app>[^/]+)(?P<rest>/.*)?$")
USER_MODELS = re.compile(r"^/v2/users/[^/]+/models/?$")  # ListModels, all of a user's
STATE_KEY = "path_app"

# Resources and sub-resources of Clarifai's v2 API that this server does not implement.
UNIMPLEMENTED = ("concepts", "vocabs", "workflows", "public_workflows", "searches",
                 "subscriptions", "status_codes", "annotations", "datasets", "tasks",
                 "modules", "collaborators", "keys", "apps", "users")
UNIMPLEMENTED_UNDER = {"inputs": ("stream", "searches", "jobs"),
                       "models": ("searches", "feedback", "output_info", "inputs", "metrics",
                                  "versions")}
SERVED = "inputs, models (embedding), visualizations"


class UserAppPrefix:
    """Route ``/v2/users/{user_id}/apps/{app_id}/REST`` as ``/v2/REST``, noting the ids."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            m = PREFIX.match(scope["path"])
            if USER_MODELS.match(scope["path"]):
                scope = {**scope, "path": "/v2/models", "raw_path": b"/v2/models"}
            elif m is not None:
                rest = m.group("rest") or ""
                scope = {**scope, "path": "/v2" + rest, "raw_path": ("/v2" + rest).encode(),
                         "state": {**scope.get("state", {}),
                                   STATE_KEY: (m.group("user"), m.group("app"))}}
        await self.app(scope, receive, send)


def path_app(state: Any) -> tuple[str, str] | None:
    """``(user_id, app_id)`` from the request's path, if it used the long form."""
    value = getattr(state, STATE_KEY, None)
    return value if isinstance(value, tuple) else None


def not_implemented(method: str, path: str) -> str:
    return (f"{method} {path} is part of Clarifai's v2 API but not implemented by this server "
            f"(it serves {SERVED}; see docs/service.md)")


def unrouted(method: str, path: str, http: int) -> tuple[int, Code, str]:
    """HTTP status, proto code and description for a request no route took (404 or 405)."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] != ["v2"]:
        return http, Code.CONN_DOES_NOT_EXIST, f"{method} {path} not found"
    rest = parts[1:]
    head = rest[0] if rest else ""
    known = head in UNIMPLEMENTED or any(
        p in UNIMPLEMENTED_UNDER.get(head, ()) for p in rest[1:])
    if http == 405:
        known = method == "PATCH" and head in UNIMPLEMENTED_UNDER
        if not known:
            return 405, Code.CONN_METHOD_NOT_ALLOWED, f"{method} not allowed on {path}"
    if known:
        return 501, Code.NOT_IMPLEMENTED, not_implemented(method, path)
    return 404, Code.CONN_DOES_NOT_EXIST, (
        f"{method} {path} not found: no such v2 method (this server serves {SERVED})")
