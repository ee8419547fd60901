"""Deadlines for slow clients: a request's headers must arrive within ``header_timeout_s`` of
its first byte (or of the connection, for the first request), and its body within
``body_timeout_s`` of the headers; otherwise the server answers 408 and closes the connection.
Without them, a client that opens connections and stalls (slowloris) holds each one until the
file descriptors run out. Idle keep-alive connections are uvicorn's own (``timeout_keep_alive``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

TIMEOUT_ANSWER = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                  b"connection: close\r\ncontent-length: %d\r\n\r\n%s")


def _body(what: str, seconds: float) -> bytes:
    return (b'{"status": {"code": 11006, "description": "the request\'s %s did not arrive '
            b'within %g s"}}' % (what.encode(), seconds))


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's headers and body."""

    header_timeout_s = 10.0
    body_timeout_s = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: Any = None

    def _arm(self, state: Any, seconds: float, what: str) -> None:
        self._disarm()
        self._waiting_for = state
        self._deadline = self.loop.call_later(seconds, self._expired, what, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline, self._waiting_for = None, None

    def _expired(self, what: str, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            body = _body(what, seconds)
            self.transport.write(TIMEOUT_ANSWER % (len(body), body))
        self.logger.info("closed a connection whose request %s did not arrive within %g s",
                         what, seconds)
        self.transport.close()

    def _follow(self) -> None:
        """Arm the deadline of what the client is sending now, or none once it has sent it."""
        state = self.conn.their_state
        if state is self._waiting_for:
            return
        if state is h11.IDLE:
            self._arm(state, self.header_timeout_s, "headers")
        elif state is h11.SEND_BODY:
            self._arm(state, self.body_timeout_s, "body")
        else:
            self._disarm()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._follow()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._follow()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._follow()

    def on_response_complete(self) -> None:
        self._disarm()  # between requests, the keep-alive timeout applies
        super().on_response_complete()
        if self.conn.their_state is not h11.IDLE:  # a pipelined request began
            self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol(header_timeout_s: float, body_timeout_s: float) -> type[DeadlineProtocol]:
    """The protocol class for uvicorn's ``http=`` with these deadlines."""
    return type("ServiceProtocol", (DeadlineProtocol,),
                {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s})
