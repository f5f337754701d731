"""Errors tsunagu raises, all with fields a person can act on.

TsunaguError
├── InvalidInput (ValueError)        bad input: names the field and the reason  → 400
│   ├── InvalidEvent                 a Segment message that cannot be accepted
│   └── PayloadTooLarge              Segment's size and count limits            → 400
├── AuthError                        missing or wrong key                        → 401
│   └── Forbidden                    key lacks the scope                         → 403
│       └── OriginRefused            a page of an origin the source does not allow
├── NotFound (LookupError)           no such profile / source / ...              → 404
├── Conflict                         the state does not allow it (stock held)     → 409
├── Refused                          understood and refused (a coupon expired)    → 422
├── TooManyAttempts                  sign-in failures over the limit              → 429
├── StoreBusy                        the database is held by another process     → 503
└── NotConfigured                    a channel's settings are missing           → 503
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class TsunaguError(Exception):
    """Base of every error tsunagu raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "field": self.field, "message": self.message}


class InvalidInput(TsunaguError, ValueError):
    code = "invalid_input"


class InvalidEvent(InvalidInput):
    code = "invalid_event"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class AuthError(TsunaguError):
    code = "unauthorized"


class Forbidden(AuthError):
    code = "forbidden"


class OriginRefused(Forbidden):
    """A browser page whose origin the source does not allow (CORS)."""

    code = "origin_not_allowed"


class NotFound(TsunaguError, LookupError):
    code = "not_found"


class Conflict(TsunaguError):
    code = "conflict"


class TooManyAttempts(TsunaguError):
    """Too many failed sign-ins: `retry_after` seconds until the next is taken."""

    code = "too_many_attempts"

    def __init__(self, message: str, *, field: str | None = None, retry_after: int = 60) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class Refused(TsunaguError):
    """Understood, and refused for a reason of the request's own (a coupon expired, at the
    wrong store, below its minimum): the field names the reason."""

    code = "refused"


class StoreBusy(TsunaguError):
    code = "store_busy"


def invalid_from_errors(errors: Sequence[Mapping[str, Any]]) -> InvalidInput:
    """The first of pydantic's validation errors as an InvalidInput naming the field. A check
    of a whole request names its field first in its message ("to: must be after from")."""
    first = errors[0] if errors else {}
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(loc) or None
    if tuple(first.get("loc", ())) == ("body",) and first.get("type") == "missing":
        return InvalidInput(f"body: {message.lower()} (a JSON object)", field="body")
    if field is None and ": " in message:
        return InvalidInput(message, field=message.split(": ", 1)[0])
    return InvalidInput(f"{field}: {message}" if field else message, field=field)


class NotConfigured(TsunaguError):
    """What the request needs is not set up here (a channel's token, secret or host)."""

    code = "not_configured"
