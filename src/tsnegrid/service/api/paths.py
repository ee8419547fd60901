"""Clarifai's two spellings of every v2 path, and a clear answer for the paths not served.

Each v2 method answers at ``/v2/...`` and at ``/v2/users/{user_id}/apps/{app_id}/...`` (the
form the official clients use when a request carries ``user_app_id``). ``UserAppPrefix``
serves the second by rewriting it to the first before routing and keeping the two ids in the
request state, where ``deps.get_caller`` checks that ``app_id`` names the caller's own app.
There are no users here, so ``user_id`` is accepted as given (clients send ``me`` by default);
``/v2/users/{user_id}/models`` (ListModels without an app) is ``/v2/models``,
``/v2/users/{user_id}/apps/{app_id}`` (GetApp) is ``/v2/app`` and ``/v2/users/{user_id}/apps``
(ListApps) is ``/v2/apps``. A request no route takes is named by the proto's HTTP rules
(``rules``): a v2 method this server does not implement answers 501 with code 10040.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from tsnegrid.service.api.status_codes import Code

PREFIX = re.compile(r"^/v2/users/(?P<user>[^/]+)/apps/(?P<app>[^/]+)(?P<rest>/.*)?$")
USER_ONLY = re.compile(r"^/v2/users/(?P<user>[^/]+)/(?P<what>models|apps)/?$")
STATE_KEY = "path_app"
USER_KEY = "path_user"
SERVED = "apps, inputs, models (embedding and concepts), visualizations"


def _rewrite(scope: Scope, path: str, **state: Any) -> Scope:
    return {**scope, "path": path, "raw_path": path.encode(),
            "state": {**scope.get("state", {}), **state}}


class UserAppPrefix:
    """Route ``/v2/users/{user_id}/apps/{app_id}/REST`` as ``/v2/REST``, noting the ids."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            user = USER_ONLY.match(path)
            m = PREFIX.match(path)
            if user is not None:
                scope = _rewrite(scope, f"/v2/{user.group('what')}",
                                 **{USER_KEY: user.group("user")})
            elif m is not None:
                rest = m.group("rest") or ""
                scope = _rewrite(scope, "/v2" + (rest if rest.strip("/") else "/app"),
                                 **{STATE_KEY: (m.group("user"), m.group("app")),
                                    USER_KEY: m.group("user")})
        await self.app(scope, receive, send)


def path_app(state: Any) -> tuple[str, str] | None:
    """``(user_id, app_id)`` from the request's path, if it used the long form."""
    value = getattr(state, STATE_KEY, None)
    return value if isinstance(value, tuple) else None


def path_user(state: Any) -> str | None:
    """The ``user_id`` the request's path named, if any."""
    value = getattr(state, USER_KEY, None)
    return value if isinstance(value, str) else None


def not_implemented(method: str, path: str, name: str | None = None) -> str:
    what = f"{name} ({method} {path})" if name else f"{method} {path}"
    return (f"{what} is part of Clarifai's v2 API but not implemented by this server "
            f"(it serves {SERVED}; see docs/service.md)")


def unrouted(method: str, path: str, http: int) -> tuple[int, Code, str]:
    """HTTP status, proto code and description for a request no route took (404 or 405)."""
    if not path.startswith("/v2/") and path != "/v2":
        return http, Code.CONN_DOES_NOT_EXIST, f"{method} {path} not found"
    from tsnegrid.service.api.rules import method_for

    name = method_for(method, path)
    if name is not None:
        return 501, Code.NOT_IMPLEMENTED, not_implemented(method, path, name)
    if http == 405:
        return 405, Code.CONN_METHOD_NOT_ALLOWED, f"{method} not allowed on {path}"
    return 404, Code.CONN_DOES_NOT_EXIST, (
        f"{method} {path} not found: no such v2 method (this server serves {SERVED})")
