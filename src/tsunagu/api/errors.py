"""One mapping from tsunagu's errors to HTTP status codes and a JSON body.

The body is `{"error": {"code", "field", "message"}}`; `code` and `message` are repeated at the top
level because Segment's clients read them there.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tsunagu.exceptions import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotConfigured,
    NotFound,
    Refused,
    StoreBusy,
    TooManyAttempts,
    TsunaguError,
    invalid_from_errors,
)

_STATUS: list[tuple[type[TsunaguError], int]] = [
    (Forbidden, 403),
    (AuthError, 401),
    (InvalidInput, 400),
    (NotFound, 404),
    (Conflict, 409),
    (Refused, 422),
    (TooManyAttempts, 429),
    (StoreBusy, 503),
    (NotConfigured, 503),
]


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "success": False,
        "code": code,
        "message": message,
        "error": {"code": code, "field": field, "message": message},
        **extra,
    }


def status_of(exc: TsunaguError) -> int:
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), 500)


async def _tsunagu_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TsunaguError)
    headers = {"WWW-Authenticate": 'Basic realm="tsunagu"'} if status_of(exc) == 401 else None
    if isinstance(exc, TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse(
        error_body(exc.code, exc.message, exc.field), status_code=status_of(exc), headers=headers
    )


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    error = invalid_from_errors(exc.errors())
    return JSONResponse(error_body("invalid_input", error.message, error.field), status_code=400)


def install(app: FastAPI) -> None:
    app.add_exception_handler(TsunaguError, _tsunagu_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
