"""The one place where errors become HTTP answers: status code plus a Clarifai-style body.

Every answer is ``{"status": {"code", "description"}}``; no traceback ever leaves the server.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tsnegrid import errors as lib
from tsnegrid.service import errors as svc
from tsnegrid.service.api.paths import unrouted
from tsnegrid.service.api.status_codes import Code

__all__ = ["Code", "error_response", "http_for", "input_code", "install", "status",
           "describe", "unexpected", "validation_text"]

log = logging.getLogger(__name__)


class KeyNotFoundError(svc.AuthError):
    """No app has this key (proto: CONN_KEY_NOT_FOUND); a revoked key is CONN_KEY_INVALID."""


class VisualizationRequestError(lib.InputError):
    """A visualization request that cannot be run (proto: VISUALIZATION_INVALID_REQUEST)."""


class MissingAppVisualizationError(svc.NotFoundError):
    """The app has no visualization yet (proto: MISSING_APP_VISUALIZATION)."""


class ModelNotFoundError(svc.NotFoundError):
    """No model of that id (or version) on this server (proto: MODEL_DOES_NOT_EXIST)."""


class NotImplementedMethodError(svc.ServiceError):
    """A method of Clarifai's v2 API that this server does not implement."""


# Most specific first.
ERROR_MAP: list[tuple[type[BaseException], int, Code]] = [
    (svc.TooManyAuthFailuresError, 429, Code.CONN_THROTTLED),
    (KeyNotFoundError, 401, Code.CONN_KEY_NOT_FOUND),
    (svc.AuthError, 401, Code.CONN_KEY_INVALID),
    (MissingAppVisualizationError, 404, Code.MISSING_APP_VISUALIZATION),
    (ModelNotFoundError, 404, Code.MODEL_DOES_NOT_EXIST),
    (svc.NotFoundError, 404, Code.CONN_DOES_NOT_EXIST),
    (NotImplementedMethodError, 501, Code.NOT_IMPLEMENTED),
    (VisualizationRequestError, 400, Code.VISUALIZATION_INVALID_REQUEST),
    (svc.ConflictError, 409, Code.INPUT_DUPLICATE),
    (svc.TooManyJobsError, 429, Code.CONN_EXCEEDS_LIMITS),
    (svc.LimitError, 413, Code.CONN_EXCEEDS_LIMITS),
    (svc.UrlRefusedError, 400, Code.INPUT_INVALID_URL),
    (lib.ImageError, 400, Code.INPUT_UNSUPPORTED_FORMAT),
    (lib.InputError, 400, Code.CONN_INVALID_REQUEST),
    (lib.MissingDependencyError, 400, Code.CONN_INVALID_REQUEST),
    (svc.StorageFullError, 507, Code.INTERNAL_RESOURCE_EXHAUSTED),
    (svc.ServerBusyError, 503, Code.FAILURE),
    (svc.BackendError, 503, Code.FAILURE),
    (lib.TsnegridError, 400, Code.FAILURE),
]

INPUT_CODES: list[tuple[type[BaseException], Code]] = [
    (svc.ConflictError, Code.INPUT_DUPLICATE),
    (svc.LimitError, Code.INPUT_OVER_LIMIT),
    (svc.UrlRefusedError, Code.INPUT_INVALID_URL),
    (lib.ImageError, Code.INPUT_UNSUPPORTED_FORMAT),
    (lib.InputError, Code.INPUT_INVALID_ARGUMENT),
]


def status(code: Code, description: str) -> dict[str, Any]:
    return {"code": int(code), "description": description}


def http_for(exc: BaseException) -> tuple[int, Code]:
    for cls, http, code in ERROR_MAP:
        if isinstance(exc, cls):
            return http, code
    if svc.storage_exhausted(exc):
        return 507, Code.INTERNAL_RESOURCE_EXHAUSTED
    return 500, Code.INTERNAL_SERVER_ISSUE


def unexpected(exc: BaseException) -> tuple[int, Code, str]:
    """The answer to an error no method raised on purpose: storage exhaustion (a full disk or
    database: 507, the reason in words, the client may retry later), else a bug (500, logged
    with its traceback)."""
    full = svc.storage_exhausted(exc)
    if full:
        log.error("storage exhausted: %s (%s)", full, type(exc).__name__)
        return 507, Code.INTERNAL_RESOURCE_EXHAUSTED, storage_text(full)
    log.exception("unexpected error", exc_info=exc)
    return 500, Code.INTERNAL_SERVER_ISSUE, "internal server error"


def describe(exc: BaseException) -> tuple[int, Code, str]:
    """A library or service error's HTTP status, code and description."""
    http, code = http_for(exc)
    description = svc.api_message(exc)
    if isinstance(exc, svc.StorageFullError):
        description = storage_text(description)
    return http, code, description


def storage_text(reason: str) -> str:
    return (f"the server's storage is full ({reason}); nothing of this request was kept: "
            "try again later, or delete inputs or visualizations you no longer need")


def retry_headers(exc: BaseException) -> dict[str, str]:
    """``Retry-After`` for an error that says when to come back."""
    after = getattr(exc, "retry_after_s", None)
    return {"Retry-After": str(after)} if after is not None else {}


def input_code(exc: BaseException) -> Code:
    return next((c for cls, c in INPUT_CODES if isinstance(exc, cls)), Code.INPUT_DOWNLOAD_FAILED)


def error_response(http: int, code: Code, description: str) -> JSONResponse:
    return JSONResponse({"status": status(code, description)}, status_code=http)


def validation_text(exc: RequestValidationError | ValidationError) -> str:
    """A request that does not fit its schema, in a line: where and what, for five errors."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    async def on_library(_req: Request, exc: Exception) -> JSONResponse:
        resp = error_response(*describe(exc))
        resp.headers.update(retry_headers(exc))
        return resp

    async def on_validation(_req: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, Code.CONN_BAD_REQUEST_FORMAT, validation_text(exc))

    async def on_http(req: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        http, description = exc.status_code, str(exc.detail)
        if http in (404, 405):  # no route took it
            http, code, description = unrouted(req.method, req.url.path, http)
        else:
            code = {401: Code.CONN_KEY_INVALID, 413: Code.CONN_EXCEEDS_LIMITS}.get(
                http, Code.FAILURE)
        resp = error_response(http, code, description)
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    async def on_unexpected(_req: Request, exc: Exception) -> JSONResponse:
        return error_response(*unexpected(exc))

    app.add_exception_handler(lib.TsnegridError, on_library)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
