"""Who is calling: the app whose key came as ``Authorization: Key <key>`` (HTTP header or
gRPC metadata), and the app ids a request names, which must be that app's own."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from tsnegrid.service.api.errors import KeyNotFoundError
from tsnegrid.service.apps import app_for_key, hash_key
from tsnegrid.service.db import App
from tsnegrid.service.errors import AuthError, NotFoundError

HOW = "send 'Authorization: Key <api key>'"


def authenticate(session: Session, authorization: str | None) -> App:
    """The active app of the key (``AuthError``: missing, malformed or revoked;
    ``KeyNotFoundError``: no app has it)."""
    if not authorization:
        raise AuthError(f"missing Authorization; {HOW}")
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "key" or not key:
        raise AuthError(f"malformed Authorization; {HOW}")
    app = app_for_key(session, key)
    if app is None:
        if session.scalar(select(App.id).where(App.key_hash == hash_key(key))):
            raise AuthError("API key revoked")
        raise KeyNotFoundError("API key not found")
    return app


def check_app(caller: App, app_ids: Iterable[str | None]) -> None:
    """Every app id a request names (``user_app_id.app_id``, a path's ``apps/{app_id}``) must
    be the caller's app; empty means it. Another answers 404, as an app that does not exist
    would. There are no users here: ``user_id`` is accepted as given."""
    for app_id in app_ids:
        if app_id and app_id != caller.name:
            raise NotFoundError(f"app {app_id!r} not found")
