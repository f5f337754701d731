"""Times as the API writes them: the store keeps naive UTC, JSON says so with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer


def _z(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


UtcTime = Annotated[datetime, PlainSerializer(_z, return_type=str, when_used="json")]
"""A naive UTC time (as stored) that JSON writes as RFC 3339 with `Z`."""
