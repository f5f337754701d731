"""Schemathesis hooks for tests/e2e/test_fuzz.py.

A message's time must be one the collector reads (ISO 8601 as Python reads it, or a Unix time)
and lie between 1990 and a day after it arrives, which JSON Schema cannot state (the schema says
so in words). A generated time that is not is replaced by one that is, so that the check that
schema-valid messages are accepted tests everything else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import schemathesis

from tsunagu.events.normalize import EARLIEST

TIMES = ("timestamp", "originalTimestamp", "sentAt")
VALID = "2024-05-01T10:00:00Z"


def _readable(value: Any) -> bool:
    if value is None or value == "":
        return True
    if not isinstance(value, str):
        return False
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return EARLIEST.year < parsed.year < 2026


def _message(message: Any) -> Any:
    if isinstance(message, dict):
        for key in TIMES:
            if key in message and not _readable(message[key]):
                message[key] = VALID
        if not message.get("timestamp") and message.get("originalTimestamp"):
            # no timestamp: the clock's skew (sentAt against originalTimestamp) corrects the
            # time, and can move it anywhere
            message["sentAt"] = message["originalTimestamp"]
    return message


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    body = _message(body)
    if isinstance(body, dict) and "batch" in body:
        if "sentAt" in body and not _readable(body["sentAt"]):
            body["sentAt"] = VALID
        if isinstance(body["batch"], list):
            body["batch"] = [_message(m) for m in body["batch"]]
    return body
