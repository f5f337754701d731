"""Turn a Segment message into the row the events table stores.

Every input path (collector, JSONL/CSV/Parquet import, the messages tsunagu records itself) ends
in `message_row`, so an event means the same whichever way it arrived. The message is read from
its JSON bytes by msgspec (events/model.py declares only what a rule reads, and the rest is
skipped in C), and the row keeps the bytes as sent: the insert writes the resolved fields
(type, messageId, timestamp, receivedAt, context.channel) into the stored JSON
(store/db.py `STORED_RAW`), so the message never goes through Python dicts on the way in.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import msgspec
import orjson
from pydantic import TypeAdapter, ValidationError

from tsunagu.events.model import CHANNELS, MESSAGE_TYPES, Context, Message, Traits
from tsunagu.exceptions import InvalidEvent, PayloadTooLarge, TsunaguError

MAX_EVENT_BYTES = 32 * 1024
"""Segment's limit for one message."""

EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
"""Older timestamps are treated as a broken clock, not history."""

FUTURE_SLACK = timedelta(days=1)
"""How far past the receipt time a timestamp may lie (device clocks drift)."""

# Segment's own libraries set context.channel to these; map them onto our channels.
SEGMENT_CHANNELS = {"browser": "web", "mobile": "app"}

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
    raw: bytes  # the message as sent, UTF-8 JSON (the insert adds the resolved fields)


_DECODER = msgspec.json.Decoder(Message)
_LENIENT_TIME = TypeAdapter(datetime)
ID_LIMIT = 1024
NAME_LIMIT = 256
DEPTH_LIMIT = 255
"""Nesting orjson writes (the pages and API that return a message's JSON use it)."""
_WITH_PROPERTIES = frozenset(("track", "page", "screen"))
_WITH_TRAITS = frozenset(("identify", "group"))


def _utc(value: datetime) -> datetime:
    zone = value.tzinfo
    if zone is UTC:
        return value
    if zone is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _invalid(exc: msgspec.ValidationError) -> InvalidEvent:
    """msgspec's "Expected `str | null`, got `int` - at `$.context.channel`" as
    "context.channel: expected `str | null`, got `int`"."""
    text, _, where = str(exc).partition(" - at `$")
    field = where.rstrip("`").lstrip(".").replace("[", ".").replace("]", "") or "message"
    if not where and text.startswith("Expected `object`"):
        return InvalidEvent("message: must be a JSON object", field="message")
    return InvalidEvent(f"{field}: {text[:1].lower()}{text[1:]}", field=field)


def _id(value: str | int | float | None, field: str, *, required: bool = False) -> str | None:
    """An identifier as text: numbers become strings, blanks are absent, 1,024 characters at
    most."""
    if isinstance(value, str):
        value = value.strip() or None
    elif value is not None:
        value = str(value)
    if value is None:
        if required:
            raise InvalidEvent(f"{field}: required", field=field)
        return None
    if len(value) > ID_LIMIT:
        raise InvalidEvent(f"{field}: longer than {ID_LIMIT} characters", field=field)
    return value


def _name(value: Any, field: str, *, required: bool = False) -> str | None:
    if value is None or value is msgspec.UNSET:
        if required:
            raise InvalidEvent(f"{field}: required", field=field)
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"{field}: must be a string", field=field)
    if required and not value:
        raise InvalidEvent(f"{field}: must not be empty", field=field)
    if len(value) > NAME_LIMIT:
        raise InvalidEvent(f"{field}: longer than {NAME_LIMIT} characters", field=field)
    return value


def parse_time(value: str | int | float | None, field: str) -> datetime | None:
    """ISO 8601 text (Python's reading, in C), else what pydantic reads as a time (Unix
    seconds or milliseconds, odd spellings); aware, in UTC. Blank is absent."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, str):
            return _utc(datetime.fromisoformat(value))
    except ValueError:
        pass
    try:
        return _utc(_LENIENT_TIME.validate_python(value))
    except ValidationError:
        raise InvalidEvent(f"{field}: {value!r} is not an ISO 8601 time", field=field) from None


def _channel(kind: str, context: Context, store_id: Any) -> str:
    """context.channel, else a store's when properties name one, else app or web."""
    given = context.channel
    if isinstance(given, str) and given:
        lowered = given.strip().lower()
        if lowered in CHANNELS:
            return lowered
        if lowered in SEGMENT_CHANNELS:
            return SEGMENT_CHANNELS[lowered]
        if lowered != "server":
            raise InvalidEvent(
                f"context.channel: {given!r} is not one of {', '.join(sorted(CHANNELS))}",
                field="context.channel",
            )
    elif given is not None:
        raise InvalidEvent("context.channel: must be a string", field="context.channel")
    if store_id not in (None, "", msgspec.UNSET):
        return "store"
    if kind == "screen" or context.device is not msgspec.UNSET or context.app is not msgspec.UNSET:
        return "app"
    return "web"


def _store_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 12.0: an integer as JSON may write it
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidEvent("properties.store_id: must be a string", field="properties.store_id")
    return str(value)


def _resolve_timestamp(
    msg: Message, received_at: datetime, batch_sent_at: datetime | None
) -> datetime:
    """Segment's rule: the given timestamp, else correct the device clock by sentAt."""
    timestamp = parse_time(msg.timestamp, "timestamp")
    if timestamp is not None:
        return timestamp
    sent_at = parse_time(msg.sent_at, "sentAt") or batch_sent_at
    original = parse_time(msg.original_timestamp, "originalTimestamp")
    if original is not None:
        if sent_at is not None:
            return received_at - (_utc(sent_at) - original)
        return original
    return received_at


@lru_cache(maxsize=8)
def _received_forms(received_at: datetime) -> tuple[datetime, datetime]:
    """Aware and naive forms of a receipt time; a batch shares one, so compute it once."""
    aware = _utc(received_at)
    return aware, aware.replace(tzinfo=None)


def content_message_id(raw: dict[str, Any]) -> str:
    """A stable id for a message sent without one, so re-sending it is still idempotent."""
    digest = hashlib.blake2b(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS), digest_size=16)
    return "tsg-" + digest.hexdigest()


def normalize(
    raw: Any,
    *,
    received_at: datetime,
    source: str,
    batch_sent_at: datetime | None = None,
    default_type: str | None = None,
) -> EventRow:
    """`message_row` of a message given as a dict (its JSON as orjson writes it); raises as
    that does."""
    if not isinstance(raw, dict):
        raise InvalidEvent("message: must be a JSON object", field="message")
    try:
        data = orjson.dumps(raw)
    except orjson.JSONEncodeError as exc:  # nested deeper than orjson writes, a NaN, ...
        raise InvalidEvent(f"message: cannot be stored ({exc})", field="message") from None
    return message_row(
        data, received_at=received_at, source=source, batch_sent_at=batch_sent_at,
        default_type=default_type,
    )  # fmt: skip


def message_row(
    data: bytes,
    *,
    received_at: datetime,
    source: str,
    batch_sent_at: datetime | None = None,
    default_type: str | None = None,
) -> EventRow:
    """Validate one message, its JSON as sent, and return its row.

    Raises:
        InvalidEvent: naming the field and the reason.
        PayloadTooLarge: the message is over Segment's 32 KB.
    """
    if len(data) > MAX_EVENT_BYTES:
        raise PayloadTooLarge("message: larger than 32 KB", field="message")
    try:
        data.decode()  # msgspec checks the text of the fields it reads, not of the rest
        if data.count(b"{") + data.count(b"[") > DEPTH_LIMIT:
            orjson.dumps(orjson.loads(data))  # as deep as the readers of raw can write?
        msg = _DECODER.decode(data)
        return _row(msg, data, received_at, source, batch_sent_at, default_type)
    except TsunaguError:
        raise
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise InvalidEvent(f"message: not valid JSON ({exc})", field="message") from None
    except (OverflowError, RecursionError, TypeError, ValueError, orjson.JSONEncodeError) as exc:
        # Times past the calendar's ends, JSON nested deeper than can be read or written:
        # the message is bad, never the server.
        field = "timestamp" if isinstance(exc, OverflowError) else "message"
        raise InvalidEvent(f"{field}: cannot be stored ({exc})", field=field) from None


def _row(
    msg: Message,
    data: bytes,
    received_at: datetime,
    source: str,
    batch_sent_at: datetime | None,
    default_type: str | None,
) -> EventRow:
    kind = msg.type if msg.type is not msgspec.UNSET else default_type
    if kind is None:
        raise InvalidEvent("type: type is required", field="type")
    if kind not in MESSAGE_TYPES:
        raise InvalidEvent(f"type: {kind!r} is not one of {', '.join(MESSAGE_TYPES)}", field="type")
    user_id = _id(msg.user_id, "userId", required=kind == "alias")
    anonymous_id = _id(msg.anonymous_id, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise InvalidEvent("userId: userId or anonymousId is required", field="userId")
    message_id = _id(msg.message_id, "messageId") or content_message_id(orjson.loads(data))

    event: str | None = None
    properties = msg.properties
    traits = msg.traits
    if kind in _WITH_PROPERTIES:
        if properties is None:
            raise InvalidEvent("properties: must be an object", field="properties")
        if kind == "track":
            event = _name(msg.event, "event", required=True)
        else:
            event = _name(msg.name, "name")
            if kind == "page":
                _name(msg.category, "category")
    elif kind in _WITH_TRAITS:
        if traits is None:
            raise InvalidEvent("traits: must be an object", field="traits")
        if kind == "group":
            _id(msg.group_id, "groupId", required=True)
    previous_id = _id(msg.previous_id, "previousId", required=True) if kind == "alias" else None

    received_at, received_naive = _received_forms(received_at)
    timestamp = _resolve_timestamp(msg, received_at, batch_sent_at)
    if timestamp < EARLIEST or timestamp > received_at + FUTURE_SLACK:
        raise InvalidEvent(
            f"timestamp: {timestamp.isoformat()} is outside {EARLIEST.date()} .. now + 1 day",
            field="timestamp",
        )
    context = msg.context
    given_store = properties.store_id if properties else msgspec.UNSET
    channel = _channel(kind, context, given_store)
    store_id = _store_id(context.store_id if given_store is msgspec.UNSET else given_store)

    device = context.device
    return EventRow(  # by position: a few percent of the collector's time, by name
        message_id,
        kind,
        event,
        user_id,
        anonymous_id,
        channel,
        store_id,
        timestamp.replace(tzinfo=None),
        received_naive,
        source,
        _text(device.get("id")) if isinstance(device, dict) else None,
        *_identifiers(traits, context.traits),
        previous_id,
        data,
    )


_NO_IDENTIFIERS = (None, None, None, None)


def _identifiers(
    traits: Traits | None | msgspec.UnsetType, context: Traits | None
) -> tuple[str | None, str | None, str | None, str | None]:
    """E-mail, phone, LINE user id and member card of the message's traits, else of
    context.traits (identify traits win)."""
    own = traits if isinstance(traits, Traits) else None
    if own is None and context is None:
        return _NO_IDENTIFIERS  # most events: no traits at all
    found = []
    for name in ("email", "phone", "line_user_id", "member_card"):
        value = getattr(own, name) if own is not None else msgspec.UNSET
        if value is msgspec.UNSET and context is not None:
            value = getattr(context, name)
        found.append(_text(value))
    return found[0], found[1], found[2], found[3]


def _text(value: Any) -> str | None:
    """An identifier as text: numbers become strings; blanks, objects and lists are absent."""
    if isinstance(value, str):
        value = value.strip()
        return value[:ID_LIMIT] or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None
