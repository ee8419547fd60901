"""Named errors of the service layer; ``api.errors`` maps them (and the library's) to HTTP."""

from __future__ import annotations

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
    """The app already has as many pending or running jobs as it may."""


class UrlRefusedError(InputError):
    """An image url is not allowed (scheme, address) or could not be fetched within limits."""


class ServerBusyError(ServiceError):
    """Another server already uses this data folder."""


class BackendError(ServiceError):
    """The database or the blob store cannot be reached or used as configured."""


def api_message(exc: BaseException) -> str:
    """An error's message as the service gives it: in the API's words (request fields, not
    CLI options) where the library's message speaks of the command line."""
    if isinstance(exc, GridTooSmallError):
        return (f'grid: "{exc.rows}x{exc.cols}" has {exc.rows * exc.cols} cells, too few for '
                f'{exc.n} inputs; use a larger grid or "auto"')
    return str(exc)
