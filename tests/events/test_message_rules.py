"""Property tests of the message rules on generated messages, odd ones included: a message is
either a row or an error naming a field, never anything else; read from its JSON bytes or
given as an object, it is the same row; and every row accepted can be stored, as what was sent
plus what was resolved (an accepted row that failed in the insert would fail its whole group
commit)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsunagu.events.collector import decode_batch, validate_messages
from tsunagu.events.model import MESSAGE_TYPES
from tsunagu.events.normalize import EventRow, message_row, normalize
from tsunagu.exceptions import InvalidEvent, PayloadTooLarge
from tsunagu.store import Store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RULES = settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),  # what orjson writes (a dict is written to be read)
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["", "  ", "S001", "12", "web", "LINE", " Taro@Example.JP ", "090-1234-5678"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
ids = st.one_of(scalars, st.text(min_size=1000, max_size=1100))
times = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "2026-03-01T09:00:00+09:00",
            "2026-03-01T11:59:59.123456Z",
            "2026-03-01 10:00:00",
            "2026-02-28",
            "1850-01-01T00:00:00Z",
            "2030-01-01T00:00:00Z",
            "yesterday",
            "",
        ]
    ),
    st.integers(0, 2_000_000_000_000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2026, 3, 2)).map(
        lambda d: d.isoformat() + "Z"
    ),
)
identifiers = st.dictionaries(
    st.sampled_from(["email", "phone", "line_user_id", "member_card", "name"]), json_values
)
contexts = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "channel": st.one_of(
                st.sampled_from(["web", "App", "browser", "mobile", "server", "fax", ""]),
                json_values,
            ),
            "store_id": json_values,
            "device": st.one_of(st.fixed_dictionaries({"id": json_values}), json_values),
            "app": json_values,
            "traits": st.one_of(identifiers, json_values),
            "page": st.one_of(st.fixed_dictionaries({"url": json_values}), json_values),
            "library": st.just({"name": "analytics-python", "version": "2.4.0"}),
        },
    ),
    json_values,
)
properties = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={"store_id": json_values, "sku": st.text(max_size=8), "revenue": json_values},
    ),
    json_values,
)
good_ids = st.one_of(st.text(min_size=1, max_size=10), st.integers(0, 10**9))
required = {
    "track": {"event": st.sampled_from(["Product Viewed", "注文完了", "Order Completed"])},
    "identify": {"traits": identifiers},
    "page": {},
    "screen": {},
    "group": {"groupId": good_ids, "traits": identifiers},
    "alias": {"previousId": good_ids},
}
well_formed = st.sampled_from(MESSAGE_TYPES).flatmap(
    lambda kind: st.fixed_dictionaries(
        {"type": st.just(kind), "userId": good_ids, **required[kind]},
        optional={
            "messageId": good_ids,
            "anonymousId": good_ids,
            "timestamp": times,
            "originalTimestamp": times,
            "sentAt": times,
            "context": contexts,
            "properties": properties,
            "name": st.text(max_size=10),
            "カスタム": json_values,
        },
    )
)
odd_fields = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.sampled_from(MESSAGE_TYPES), json_values),
        "messageId": ids,
        "userId": ids,
        "anonymousId": ids,
        "integrations": json_values,
        "event": st.one_of(st.sampled_from(["Product Viewed", ""]), json_values),
        "name": json_values,
        "category": json_values,
        "traits": st.one_of(identifiers, json_values),
        "groupId": ids,
        "previousId": ids,
    },
)
messages = st.one_of(
    well_formed,  # mostly accepted: the rows are compared
    st.tuples(well_formed, odd_fields).map(lambda pair: {**pair[0], **pair[1]}),
)


def row_or_error(read: Any) -> EventRow | str:
    try:
        return read()  # type: ignore[no-any-return]
    except (InvalidEvent, PayloadTooLarge) as exc:
        assert exc.field, exc
        assert exc.message.startswith(exc.field + ":"), exc.message
        return exc.field


@RULES
@given(messages)
def test_a_message_is_a_row_or_an_error_naming_its_field_whichever_way_it_comes(
    message: dict[str, Any],
) -> None:
    given_as_object = row_or_error(
        lambda: normalize(message, received_at=NOW, source="s", default_type="track")
    )
    as_sent = orjson.dumps(message, option=orjson.OPT_INDENT_2)  # as a client may format it
    read_from_bytes = row_or_error(
        lambda: message_row(as_sent, received_at=NOW, source="s", default_type="track")
    )
    if isinstance(given_as_object, str):
        assert read_from_bytes == given_as_object
    else:
        assert isinstance(read_from_bytes, EventRow)
        assert read_from_bytes._replace(raw=b"") == given_as_object._replace(raw=b"")
        assert orjson.loads(read_from_bytes.raw) == orjson.loads(given_as_object.raw) == message


@RULES
@given(st.lists(messages, min_size=1, max_size=6))
def test_every_accepted_message_is_stored_as_sent_with_what_was_resolved(
    store: Store, batch: list[dict[str, Any]]
) -> None:
    body = orjson.dumps({"batch": batch})
    decoded = decode_batch(body)
    rows, rejected = validate_messages(decoded.messages, source="s", received_at=NOW)
    assert len(rows) + len(rejected) == len(batch)
    ids = {r.message_id for r in rows}
    held = store.query(  # the store lives across examples, and generated ids repeat
        "SELECT message_id FROM events WHERE message_id IN (SELECT unnest(?::VARCHAR[]))",
        [sorted(ids)],
    )
    new = ids - {r[0] for r in held}
    assert store.insert_events(rows) == len(new)  # never fails
    for row in {r.message_id: r for r in reversed(rows) if r.message_id in new}.values():
        raw = orjson.loads(
            store.scalar("SELECT raw FROM events WHERE message_id = ?", [row.message_id])
        )
        assert raw["messageId"] == row.message_id
        assert raw["type"] == row.type
        assert raw["context"]["channel"] == row.channel
        assert datetime.fromisoformat(raw["timestamp"]).replace(tzinfo=None) == row.timestamp


@RULES
@given(st.one_of(st.binary(max_size=80), json_values.map(orjson.dumps)))
def test_any_body_is_a_batch_or_an_error_naming_its_field(body: bytes) -> None:
    try:
        decoded = decode_batch(body)
    except (InvalidEvent, PayloadTooLarge) as exc:
        assert exc.field in ("body", "batch", "sentAt")
        return
    rows, rejected = validate_messages(decoded.messages, source="s", received_at=NOW)
    assert len(rows) + len(rejected) == len(decoded.messages)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "track", "userId": "u", "event": "e", "properties": None}, "properties"),
        ({"type": "identify", "userId": "u", "traits": None}, "traits"),
        ({"type": "identify", "userId": "u", "properties": [1]}, "properties"),
        ({"type": "track", "userId": "u", "event": "e", "traits": "x"}, "traits"),
        ({"type": "page", "userId": "u", "name": "n" * 257}, "name"),
        ({"type": "page", "userId": "u", "category": 5}, "category"),
        ({"type": "track", "userId": "u" * 1025, "event": "e"}, "userId"),
        ({"type": "track", "userId": True, "event": "e"}, "userId"),
        ({"type": "track", "userId": "u", "event": "e", "context": None}, "context"),
        (
            {"type": "track", "userId": "u", "event": "e", "context": {"traits": 1}},
            "context.traits",
        ),
        ({"type": "group", "userId": "u", "groupId": "  "}, "groupId"),
        ({"type": "track", "userId": "u", "event": 5}, "event"),
    ],
)
def test_each_rule_names_the_field_it_refuses(message: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize(message, received_at=NOW, source="s")
    assert info.value.field == field


def test_only_a_track_has_an_event_and_only_a_page_or_screen_a_name() -> None:
    identify = normalize(
        {"type": "identify", "userId": "u", "event": 5, "name": {"a": 1}},
        received_at=NOW,
        source="s",
    )
    assert identify.event is None  # keys the type does not have are kept in the JSON only
    page = normalize(
        {"type": "page", "userId": "u", "name": "トップ", "event": "x"}, received_at=NOW, source="s"
    )
    assert page.event == "トップ"
