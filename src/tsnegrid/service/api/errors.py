"""The one place where errors become HTTP answers: status code plus a Clarifai-style body.

Every answer is ``{"status": {"code", "description"}}``; no traceback ever leaves the server.
"""

from __future__ import annotations

import logging
from enum import IntEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tsnegrid import errors as lib
from tsnegrid.service import errors as svc

log = logging.getLogger(__name__)


class Code(IntEnum):
    """Status codes, named and numbered after Clarifai's v2 API."""

    SUCCESS = 10000
    MIXED_STATUS = 10010
    FAILURE = 10020
    CONN_EXCEEDS_LIMITS = 11006
    CONN_KEY_INVALID = 11008
    CONN_BAD_REQUEST_FORMAT = 11100
    CONN_DOES_NOT_EXIST = 11101
    CONN_INVALID_REQUEST = 11102
    CONN_METHOD_NOT_ALLOWED = 11103
    INPUT_DOWNLOAD_SUCCESS = 30000
    INPUT_DOWNLOAD_FAILED = 30002
    INPUT_DUPLICATE = 30100
    INPUT_UNSUPPORTED_FORMAT = 30101
    INPUT_INVALID_ARGUMENT = 30104
    INPUT_OVER_LIMIT = 30105
    INPUT_INVALID_URL = 30106
    INTERNAL_ERROR = 98000


# Most specific first.
ERROR_MAP: list[tuple[type[BaseException], int, Code]] = [
    (svc.AuthError, 401, Code.CONN_KEY_INVALID),
    (svc.NotFoundError, 404, Code.CONN_DOES_NOT_EXIST),
    (svc.ConflictError, 409, Code.INPUT_DUPLICATE),
    (svc.TooManyJobsError, 429, Code.CONN_EXCEEDS_LIMITS),
    (svc.LimitError, 413, Code.CONN_EXCEEDS_LIMITS),
    (svc.UrlRefusedError, 400, Code.INPUT_INVALID_URL),
    (lib.ImageError, 400, Code.INPUT_UNSUPPORTED_FORMAT),
    (lib.InputError, 400, Code.CONN_INVALID_REQUEST),
    (lib.MissingDependencyError, 400, Code.CONN_INVALID_REQUEST),
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
    return 500, Code.INTERNAL_ERROR


def input_code(exc: BaseException) -> Code:
    return next((c for cls, c in INPUT_CODES if isinstance(exc, cls)), Code.INPUT_DOWNLOAD_FAILED)


def error_response(http: int, code: Code, description: str) -> JSONResponse:
    return JSONResponse({"status": status(code, description)}, status_code=http)


def _validation_text(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    async def on_library(_req: Request, exc: Exception) -> JSONResponse:
        http, code = http_for(exc)
        return error_response(http, code, str(exc))

    async def on_validation(_req: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, Code.CONN_BAD_REQUEST_FORMAT, _validation_text(exc))

    async def on_http(_req: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {401: Code.CONN_KEY_INVALID, 404: Code.CONN_DOES_NOT_EXIST,
                405: Code.CONN_METHOD_NOT_ALLOWED, 413: Code.CONN_EXCEEDS_LIMITS}.get(
            exc.status_code, Code.FAILURE)
        resp = error_response(exc.status_code, code, str(exc.detail))
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    async def on_unexpected(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, Code.INTERNAL_ERROR, "internal server error")

    app.add_exception_handler(lib.TsnegridError, on_library)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
