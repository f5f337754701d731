"""Turn a raw Segment message into the row the events table stores.

Every input path (collector, JSONL/CSV/Parquet import, POS import) ends here, so an event
means the same whichever way it arrived.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from tsunagu.events.model import CHANNELS, MESSAGE_TYPES, MODELS, _Message
from tsunagu.exceptions import InvalidEvent, PayloadTooLarge, TsunaguError

MAX_EVENT_BYTES = 32 * 1024
"""Segment's limit for one message."""

EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
"""Older timestamps are treated as a broken clock, not history."""

FUTURE_SLACK = timedelta(days=1)
"""How far past the receipt time a timestamp may lie (device clocks drift)."""

# Segment's own libraries set context.channel to these; map them onto our channels.
_SEGMENT_CHANNELS = {"browser": "web", "mobile": "app"}

COLUMNS: tuple[str, ...] = (
    "message_id",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "channel",
    "store_id",
    "timestamp",
    "received_at",
    "source",
    "device_id",
    "email",
    "phone",
    "line_user_id",
    "member_card",
    "previous_id",
    "raw",
)
"""Columns of the events table in insertion order (see store/schema.py)."""


class EventRow(NamedTuple):
    """One row of the events table, fields in column order (a tuple: cheap to build and to
    turn into columns)."""

    message_id: str
    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    channel: str
    store_id: str | None
    timestamp: datetime  # naive UTC
    received_at: datetime  # naive UTC
    source: str
    # Identifiers the message carries besides userId / anonymousId, as sent (identity
    # resolution normalises them): context.device.id, traits (identify) or context.traits.
    device_id: str | None
    email: str | None
    phone: str | None
    line_user_id: str | None
    member_card: str | None
    previous_id: str | None  # alias
    raw: bytes  # UTF-8 JSON; bytes go into Arrow without re-encoding


_ABSENT = object()


def _attr(msg: _Message, name: str) -> Any:
    """`getattr(msg, name, None)` without pydantic's slow path for a name the model lacks: a
    declared field, else an extra key the message sent, else None."""
    value = msg.__dict__.get(name, _ABSENT)
    if value is _ABSENT:
        extra = msg.__pydantic_extra__
        return extra.get(name) if extra else None
    return value


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _field_of(error: Mapping[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    if loc:
        return ".".join(loc)
    # Model-level checks (identity present) carry no location; their message names it.
    return "userId" if "userId" in str(error.get("msg", "")) else "message"


def _validation_error(exc: ValidationError) -> InvalidEvent:
    first = exc.errors(include_url=False)[0]
    field = _field_of(first)
    reason = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if first.get("type") == "missing":
        reason = "required"
    return InvalidEvent(f"{field}: {reason}", field=field)


def _channel(msg: _Message, context: dict[str, Any], properties: dict[str, Any]) -> str:
    given = context.get("channel")
    if isinstance(given, str) and given:
        lowered = given.strip().lower()
        if lowered in CHANNELS:
            return lowered
        if lowered in _SEGMENT_CHANNELS:
            return _SEGMENT_CHANNELS[lowered]
        if lowered != "server":
            raise InvalidEvent(
                f"context.channel: {given!r} is not one of {', '.join(sorted(CHANNELS))}",
                field="context.channel",
            )
    elif given is not None:
        raise InvalidEvent("context.channel: must be a string", field="context.channel")
    if properties.get("store_id") not in (None, ""):
        return "store"
    if msg.type == "screen" or "device" in context or "app" in context:
        return "app"
    return "web"


def _store_id(properties: dict[str, Any], context: dict[str, Any]) -> str | None:
    value = properties.get("store_id", context.get("store_id"))
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidEvent("properties.store_id: must be a string", field="properties.store_id")
    return str(value)


def _resolve_timestamp(
    msg: _Message, received_at: datetime, batch_sent_at: datetime | None
) -> datetime:
    """Segment's rule: the given timestamp, else correct the device clock by sentAt."""
    if msg.timestamp is not None:
        return _utc(msg.timestamp)
    sent_at = msg.sent_at or batch_sent_at
    if msg.original_timestamp is not None:
        original = _utc(msg.original_timestamp)
        if sent_at is not None:
            return received_at - (_utc(sent_at) - original)
        return original
    return received_at


@lru_cache(maxsize=8)
def _received_forms(received_at: datetime) -> tuple[datetime, datetime, str]:
    """Aware, naive and ISO forms of a receipt time; a batch shares one, so compute it once."""
    aware = _utc(received_at)
    return aware, aware.replace(tzinfo=None), aware.isoformat().replace("+00:00", "Z")


def content_message_id(raw: dict[str, Any]) -> str:
    """A stable id for a message sent without one, so re-sending it is still idempotent."""
    digest = hashlib.blake2b(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS), digest_size=16)
    return "tsg-" + digest.hexdigest()


@contextmanager
def _bad_message_not_server() -> Iterator[None]:
    """Times past the calendar's ends, JSON nested deeper than can be stored, ...: the message
    is bad, never the server."""
    try:
        yield
    except TsunaguError:
        raise
    except (OverflowError, RecursionError, TypeError, ValueError) as exc:
        field = "timestamp" if isinstance(exc, OverflowError) else "message"
        raise InvalidEvent(f"{field}: cannot be stored ({exc})", field=field) from None


def normalize(
    raw: Any,
    *,
    received_at: datetime,
    source: str,
    batch_sent_at: datetime | None = None,
    default_type: str | None = None,
    size: int | None = None,
) -> EventRow:
    """Validate one raw message and return its row.

    Raises:
        InvalidEvent: naming the field and the reason.
        PayloadTooLarge: the message is over Segment's 32 KB.
    """
    with _bad_message_not_server():
        return _normalize(raw, received_at, source, batch_sent_at, default_type, size)


def _normalize(
    raw: Any,
    received_at: datetime,
    source: str,
    batch_sent_at: datetime | None,
    default_type: str | None,
    size: int | None,
) -> EventRow:
    if not isinstance(raw, dict):
        raise InvalidEvent("message: must be a JSON object", field="message")
    kind = raw.get("type", default_type)
    if kind is None:
        raise InvalidEvent("type: type is required", field="type")
    if kind not in MESSAGE_TYPES:
        raise InvalidEvent(f"type: {kind!r} is not one of {', '.join(MESSAGE_TYPES)}", field="type")
    encoded = orjson.dumps(raw) if size is None else None
    if (size if size is not None else len(encoded or b"")) > MAX_EVENT_BYTES:
        raise PayloadTooLarge("message: larger than 32 KB", field="message")
    try:
        msg = MODELS[kind].model_validate(raw if "type" in raw else {**raw, "type": kind})
    except ValidationError as exc:
        raise _validation_error(exc) from None

    received_at, received_naive, received_iso = _received_forms(received_at)
    timestamp = _resolve_timestamp(msg, received_at, batch_sent_at)
    if timestamp < EARLIEST or timestamp > received_at + FUTURE_SLACK:
        raise InvalidEvent(
            f"timestamp: {timestamp.isoformat()} is outside {EARLIEST.date()} .. now + 1 day",
            field="timestamp",
        )
    context = msg.context
    properties: dict[str, Any] = _attr(msg, "properties") or {}
    channel = _channel(msg, context, properties)
    store_id = _store_id(properties, context)

    stored = dict(raw)
    stored["type"] = kind
    message_id = msg.message_id or content_message_id(raw)
    stored["messageId"] = message_id
    stored["timestamp"] = timestamp.isoformat().replace("+00:00", "Z")
    stored["receivedAt"] = received_iso
    stored["context"] = {**context, "channel": channel}

    event = _attr(msg, "event") or _attr(msg, "name")
    traits = _attr(msg, "traits") or {}
    context_traits = context.get("traits")
    if isinstance(context_traits, dict) and context_traits:
        traits = {**context_traits, **traits}
    device = context.get("device")
    return EventRow(
        message_id=message_id,
        type=kind,
        event=event,
        user_id=msg.user_id,
        anonymous_id=msg.anonymous_id,
        channel=channel,
        store_id=store_id,
        timestamp=timestamp.replace(tzinfo=None),
        received_at=received_naive,
        source=source,
        device_id=_text(device.get("id")) if isinstance(device, dict) else None,
        email=_text(traits.get("email")),
        phone=_text(traits.get("phone")),
        line_user_id=_text(traits.get("line_user_id")),
        member_card=_text(traits.get("member_card")),
        previous_id=_attr(msg, "previous_id"),
        raw=orjson.dumps(stored),
    )


def _text(value: Any) -> str | None:
    """An identifier as text: numbers become strings; blanks, objects and lists are absent."""
    if isinstance(value, str):
        value = value.strip()
        return value[:1024] or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None
