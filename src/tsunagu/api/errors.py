"""One mapping from tsunagu's errors to HTTP status codes and a JSON body.

The body is `{"error": {"code", "field", "message"}}`; `code` and `message` are repeated at the top
level because Segment's clients read them there. Every answer that is an error has it: the
framework's own (an unknown path, a method the path does not take) and an unexpected failure too,
which the server logs with its trace, answers 500 without details.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

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


class ErrorDetail(BaseModel):
    code: str
    field: str | None
    """The input at fault (`batch[3].userId`, `Authorization`, `store_id`), if one is."""
    message: str


class ErrorBody(BaseModel):
    """Every error's body."""

    model_config = ConfigDict(extra="allow")  # the collector adds `accepted` and `rejected`

    success: bool
    code: str
    message: str
    error: ErrorDetail


_MEANING = {
    400: "Bad input: `error.field` names the field and `message` the reason",
    401: "No key, or one that is not recognised, expired or revoked",
    403: "The key or role may not do this (or a store's staff act for another store)",
    404: "No such thing (or no such path)",
    405: "The path does not take this method (`Allow` lists those it takes)",
    409: "It conflicts with what is stored (a coupon used already)",
    413: "The body is larger than the limit; refused before it was read",
    422: "Valid, but what is stored refuses it now (expired, not enough data yet, ...)",
    429: "Too many attempts: wait `Retry-After` seconds",
    503: "Not available now (the store is busy, or the feature is not configured)",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": meaning} for status, meaning in _MEANING.items()
}
"""Documented on every operation: what any of them may answer besides its success."""


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


_HTTP_CODES = {400: "invalid_input", 404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """The framework's own errors: no route for the path (404), not for this method (405)."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    if status == 404:
        message = f"path: no {request.url.path} here (the API is described at /docs)"
        field = "path"
    elif status == 405:
        allow = _allowed_methods(request, (exc.headers or {}).get("Allow", ""))
        exc.headers = {**(exc.headers or {}), "Allow": allow}
        message = f"method: {request.method} is not allowed here" + (
            f" (allowed: {allow})" if allow else ""
        )
        field = "method"
    elif status == 400:  # the body FastAPI could not read or parse
        message, field = f"body: {str(exc.detail).lower()}", "body"
    else:
        message, field = str(exc.detail), None
    return JSONResponse(error_body(code, message, field), status_code=status, headers=exc.headers)


def _allowed_methods(request: Request, starlette_allows: str) -> str:
    """Every method some route takes at this path (Starlette names the first route's only,
    and GET and POST of a path may be two routes)."""
    methods = {m.strip() for m in starlette_allows.split(",") if m.strip()}
    path = request.url.path
    documented = request.app.openapi().get("paths", {})
    if path in documented:  # the path as it is documented (a template may match it too)
        return ", ".join(sorted(methods | {m.upper() for m in documented[path]}))
    for template, operations in documented.items():
        pattern = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            methods |= {m.upper() for m in operations}
    return ", ".join(sorted(methods))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug. Starlette raises the exception again once this is sent: the server logs it."""
    request_id = getattr(request.state, "request_id", None)
    message = "the server failed to answer this request; it is logged" + (
        f" (request id {request_id})" if request_id else ""
    )
    return JSONResponse(error_body("internal_error", message), status_code=500)


async def _gone(request: Request, exc: Exception) -> JSONResponse:
    """The client went away (or api/limits.py cut its body off): nobody reads this answer."""
    return JSONResponse(error_body("client_disconnected", "the request was cut off"), 400)


def install(app: FastAPI) -> None:
    app.add_exception_handler(TsunaguError, _tsunagu_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _gone)
    app.add_exception_handler(Exception, _unexpected)
