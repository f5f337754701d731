"""The collector's request bodies as JSON Schema, for the OpenAPI document.

The collector reads its bodies itself (events/collector.py, events/normalize.py: fast, and one
bad message in a batch rejects only itself), so FastAPI cannot derive their schema; this states
the rules those modules apply, so that what the schema allows is what they accept. What JSON
Schema cannot state is in the descriptions: a message is at most 32 KB and a batch 500 KB, and a
time must lie between 1990 and a day after it arrives.
"""

from __future__ import annotations

from typing import Any

from tsunagu.events.collector import MAX_BATCH_EVENTS
from tsunagu.events.model import CHANNELS, MESSAGE_TYPES
from tsunagu.events.normalize import ID_LIMIT, NAME_LIMIT, SEGMENT_CHANNELS

_ID: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "maxLength": ID_LIMIT, "pattern": r"\S"},
        {"type": "number"},
    ],
    "description": f"text (blank is absent) or a number; {ID_LIMIT:,} characters at most",
}
_OPTIONAL_ID: dict[str, Any] = {"anyOf": [*_ID["anyOf"], {"type": "null"}]}
_TIME: dict[str, Any] = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}, {"type": "null"}],
    "description": "ISO 8601 (or Unix seconds or milliseconds); from 1990 to a day after it "
    "arrives",
}
_CLOCK: dict[str, Any] = {
    "type": ["string", "number", "null"],
    "description": "the device's clock when it made (originalTimestamp) and sent (sentAt) the "
    "message: read, as times like `timestamp`, only when `timestamp` is absent",
}
_NAME: dict[str, Any] = {"type": ["string", "null"], "maxLength": NAME_LIMIT}
_STORE_ID: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}
_CHANNEL: dict[str, Any] = {
    "type": ["string", "null"],
    "enum": [*sorted(CHANNELS), *sorted(SEGMENT_CHANNELS), "server", None],
    "description": "where it happened; without it: store when a store_id is given, app for "
    "screens and apps, else web",
}
_TRAITS: dict[str, Any] = {
    "type": "object",
    "description": "anything; `email`, `phone`, `line_user_id` and `member_card` join the "
    "sender's profile",
}
_CONTEXT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "channel": _CHANNEL,
        "store_id": _STORE_ID,
        "traits": {**_TRAITS, "type": ["object", "null"]},
        "device": {"description": "present (whatever it holds): sent by an app; `id` is its id"},
    },
}
_PROPERTIES: dict[str, Any] = {
    "type": "object",
    "properties": {"store_id": _STORE_ID},
    "description": "anything; `store_id` makes it a store's event",
}
_COMMON: dict[str, Any] = {
    "messageId": {**_OPTIONAL_ID, "description": "makes re-sending idempotent"},
    "userId": _OPTIONAL_ID,
    "anonymousId": _OPTIONAL_ID,
    "timestamp": _TIME,
    "originalTimestamp": _CLOCK,
    "sentAt": _CLOCK,
    "context": _CONTEXT,
    "integrations": {"type": "object"},
}
_WHO_NOT_NULL = {
    "anyOf": [
        {"required": ["userId"], "properties": {"userId": _ID}},
        {"required": ["anonymousId"], "properties": {"anonymousId": _ID}},
    ]
}
_BY_TYPE: dict[str, tuple[dict[str, Any], list[str]]] = {
    "track": (
        {"event": {"type": "string", "minLength": 1, "maxLength": NAME_LIMIT},
         "properties": _PROPERTIES},
        ["event"],
    ),
    "page": ({"name": _NAME, "category": _NAME, "properties": _PROPERTIES}, []),
    "screen": ({"name": _NAME, "properties": _PROPERTIES}, []),
    "identify": ({"traits": _TRAITS}, []),
    "group": ({"groupId": _ID, "traits": _TRAITS}, ["groupId"]),
    "alias": ({"previousId": _ID}, ["previousId", "userId"]),
}  # fmt: skip


def message_schema(kind: str, *, typed: bool) -> dict[str, Any]:
    """One `kind` message; `typed`: its `type` is required (in a batch) rather than implied by
    the path."""
    fields, required = _BY_TYPE[kind]
    schema: dict[str, Any] = {
        "type": "object",
        "title": f"{kind.capitalize()}Message",
        "properties": {
            "type": {"const": kind} if typed else {"type": "string"},
            **_COMMON,
            **fields,
            **({"userId": _ID} if kind == "alias" else {}),
        },
        "required": (["type"] if typed else []) + required,
        "description": "at most 32 KB of JSON",
    }
    if kind != "alias":
        schema["allOf"] = [_WHO_NOT_NULL]
    return schema


def single_body(kind: str) -> dict[str, Any]:
    """The OpenAPI `requestBody` of `POST /v1/{kind}` (and its short path)."""
    schema = message_schema(kind, typed=False)
    schema["properties"]["writeKey"] = {
        "type": ["string", "null"],
        "description": "the source's write key, when it is not the HTTP basic user name",
    }
    return _body(schema)


def batch_body() -> dict[str, Any]:
    return _body(
        {
            "type": "object",
            "title": "Batch",
            "properties": {
                "batch": {
                    "type": "array",
                    "maxItems": MAX_BATCH_EVENTS,
                    "items": {"oneOf": [message_schema(k, typed=True) for k in MESSAGE_TYPES]},
                },
                "sentAt": _TIME,
                "context": {**_CONTEXT, "type": ["object", "null"]},
                "writeKey": {"type": ["string", "null"]},
            },
            "required": ["batch"],
            "description": f"at most {MAX_BATCH_EVENTS:,} messages and 500 KB of JSON",
        }
    )


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        **SECURITY,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}, "text/plain": {"schema": schema}},
        },
    }


WRITE_KEY_SCHEME = {
    "type": "http",
    "scheme": "basic",
    "description": "the source's write key as the user name, no password (as Segment's clients "
    "send it); or `writeKey` in the body",
}
SECURITY: dict[str, Any] = {"security": [{"WriteKey": []}]}
