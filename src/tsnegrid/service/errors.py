"""Named errors of the service layer; ``api.errors`` maps them (and the library's) to HTTP."""

from __future__ import annotations

import errno

from tsnegrid.errors import GridTooSmallError, InputError, TsnegridError


class ServiceError(TsnegridError):
    """Base class of the service's own errors."""


class AuthError(ServiceError):
    """Missing, malformed, unknown or revoked API key."""


class NotFoundError(ServiceError):
    """No such object for this app (another app's objects are not found either)."""


class ConflictError(InputError):
    """The object already exists."""


class LimitError(InputError):
    """A configured size or count limit was exceeded."""


class TooManyJobsError(ServiceError):
    """The app (or the server) already has as many pending or running jobs as it may."""


class TooManyAuthFailuresError(ServiceError):
    """This client address failed to authenticate too often; it may retry after a while."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StorageFullError(ServiceError):
    """The blob store or the database has no space left: nothing of the request was kept."""


class UrlRefusedError(InputError):
    """An image url is not allowed (scheme, address) or could not be fetched within limits."""


class ServerBusyError(ServiceError):
    """Another server already uses this data folder."""


class BackendError(ServiceError):
    """The database or the blob store cannot be reached or used as configured."""


_FULL_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


def storage_exhausted(exc: BaseException) -> str | None:
    """What ran out, in words, when ``exc`` (or an error it wraps) says the disk or the
    database is full: ENOSPC or EDQUOT, SQLite's SQLITE_FULL, PostgreSQL's disk_full (53100);
    None for any other error."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        if isinstance(cur, StorageFullError):
            return str(cur)
        if isinstance(cur, OSError) and cur.errno in _FULL_ERRNOS:
            return _FULL_ERRNOS[cur.errno]
        if type(cur).__module__ == "sqlite3" and "database or disk is full" in str(cur):
            return "the database or its disk is full"
        if getattr(cur, "sqlstate", None) == "53100":
            return "the database server's disk is full"
        cur = getattr(cur, "orig", None) or cur.__cause__ or cur.__context__
    return None


def api_message(exc: BaseException) -> str:
    """An error's message as the service gives it: in the API's words (request fields, not
    CLI options) where the library's message speaks of the command line."""
    if isinstance(exc, GridTooSmallError):
        return (f'grid: "{exc.rows}x{exc.cols}" has {exc.rows * exc.cols} cells, too few for '
                f'{exc.n} inputs; use a larger grid or "auto"')
    return str(exc)
