"""Apps and their API keys. A key is shown once at creation; only its sha256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tsnegrid.errors import InputError
from tsnegrid.service.db import App, utcnow


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AppInfo:
    """What ``apps list`` shows."""

    id: int
    name: str
    key_prefix: str
    created_at: str
    revoked: bool


def create_app(session: Session, name: str) -> str:
    """Create an app named ``name``; return its new API key (not stored in clear)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InputError("app name must be 1 to 200 characters")
    key = secrets.token_hex(20)
    session.add(App(name=name, key_hash=hash_key(key), key_prefix=key[:6]))
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise InputError(f"an app named {name!r} already exists") from exc
    return key


def list_apps(session: Session) -> list[AppInfo]:
    rows = session.scalars(select(App).order_by(App.id))
    return [AppInfo(a.id, a.name, a.key_prefix, a.created_at.isoformat(timespec="seconds"),
                    a.revoked_at is not None) for a in rows]


def revoke_app(session: Session, name: str) -> None:
    """Revoke the app's key: requests with it get 401 from now on; its data stays."""
    app = session.scalar(select(App).where(App.name == name))
    if app is None:
        raise InputError(f"no app named {name!r}")
    if app.revoked_at is None:
        app.revoked_at = utcnow()


def app_for_key(session: Session, key: str) -> App | None:
    """The active app whose key this is, or None."""
    app = session.scalar(select(App).where(App.key_hash == hash_key(key)))
    return app if app is not None and app.revoked_at is None else None
