"""Who is calling: the app whose key came as ``Authorization: Key <key>`` (HTTP header or
gRPC metadata), and the app ids a request names, which must be that app's own."""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from tsnegrid.service.api.errors import KeyNotFoundError
from tsnegrid.service.apps import app_for_key, hash_key
from tsnegrid.service.db import App
from tsnegrid.service.errors import AuthError, NotFoundError, TooManyAuthFailuresError

HOW = "send 'Authorization: Key <api key>'"


def client_of(address: str) -> str:
    """The bucket a client address falls in: an IPv4 address itself, an IPv6 address's /64
    (one host gets a whole /64), anything else (a unix socket) as given."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class FailureLimiter:
    """Failed authentications per client address, as a token bucket: each failure takes a
    token, ``per_min`` of them come back a minute (at most ``per_min`` held). An address
    with none left is answered 429 before its key is even looked at, until one is back; a
    correct key from it waits too. ``per_min`` 0: no limit."""

    MAX_CLIENTS = 50_000

    def __init__(self, per_min: int) -> None:
        self.burst, self.rate = float(per_min), per_min / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, as of)
        self._lock = threading.Lock()

    def _tokens(self, client: str, now: float) -> float:
        tokens, then = self._buckets.get(client, (self.burst, now))
        return min(self.burst, tokens + (now - then) * self.rate)

    def check(self, address: str) -> None:
        """``TooManyAuthFailuresError`` (with the seconds to wait) when ``address`` has
        failed too often."""
        if not self.rate:
            return
        client, now = client_of(address), time.monotonic()
        with self._lock:
            tokens = self._tokens(client, now)
        if tokens < 1:
            wait = math.ceil((1 - tokens) / self.rate)
            raise TooManyAuthFailuresError(
                f"too many failed authentications from this address; retry in {wait} s",
                wait)

    def failed(self, address: str) -> None:
        if not self.rate:
            return
        client, now = client_of(address), time.monotonic()
        with self._lock:
            if len(self._buckets) >= self.MAX_CLIENTS:  # forget those refilled by now
                self._buckets = {c: b for c, b in self._buckets.items()
                                 if self._tokens(c, now) < self.burst}
            self._buckets[client] = (self._tokens(client, now) - 1, now)


def authenticate(session: Session, authorization: str | None,
                 limiter: FailureLimiter | None = None, client: str = "") -> App:
    """The active app of the key (``AuthError``: missing, malformed or revoked;
    ``KeyNotFoundError``: no app has it). With a ``limiter``, a ``client`` address that
    failed too often is refused first (``TooManyAuthFailuresError``), and each failure
    counts against it."""
    if limiter is None:
        return _authenticate(session, authorization)
    limiter.check(client)
    try:
        return _authenticate(session, authorization)
    except AuthError:
        limiter.failed(client)
        raise


def _authenticate(session: Session, authorization: str | None) -> App:
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
