"""One call of a v2 method: who calls, on what, and how to name the server's own urls."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from tsnegrid.service.api.errors import Code, status
from tsnegrid.service.api.state import ServiceState
from tsnegrid.service.db import App

OK = status(Code.SUCCESS, "Ok")

Answer = tuple[dict[str, Any], int]
"""A method's answer: the response body (proto field names, JSON values) and its HTTP status."""


@dataclass(frozen=True)
class Links:
    """Absolute urls of what the REST side serves; ``url_for(name, **params)`` builds one the
    way the transport can (from the request, or from the configured public url)."""

    url_for: Callable[..., str]

    @classmethod
    def under(cls, base: str, path_for: Callable[..., str]) -> Links:
        """Urls under ``base`` (``https://images.example.org``), paths from the REST app."""
        root = base.rstrip("/")
        return cls(lambda name, **params: root + str(path_for(name, **params)))

    def input_image(self, input_id: str) -> str:
        return self.url_for("get_input_image", input_id=input_id)


@dataclass(frozen=True)
class Call:
    """The caller's app (already authenticated), a database session, the server's state."""

    state: ServiceState
    session: Session
    caller: App
    links: Links


def iso(value: dt.datetime) -> str:
    """A stored (naive UTC) time as the API writes it: RFC 3339 with milliseconds."""
    return value.isoformat(timespec="milliseconds") + "Z"


def summary(n_ok: int, n: int, what: str) -> tuple[dict[str, Any], int]:
    """The top status of a batch (each item has its own): all, some or none went through."""
    if n_ok == n:
        return OK, 200
    if n_ok:
        return status(Code.MIXED_STATUS, f"Some inputs failed; see each {what}'s status"), 200
    return status(Code.FAILURE, f"No input was {'added' if what == 'input' else 'embedded'}; "
                                f"see each {what}'s status"), 400
