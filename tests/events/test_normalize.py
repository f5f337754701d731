from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tsunagu.events.normalize import MAX_EVENT_BYTES, EventRow, content_message_id, normalize
from tsunagu.exceptions import InvalidEvent, PayloadTooLarge
from tsunagu.store import Store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def norm(raw: dict, **kw):  # type: ignore[no-untyped-def]
    return normalize(raw, received_at=NOW, source="test", **kw)


def test_track_keeps_unknown_fields_everywhere() -> None:
    row = norm(
        {
            "type": "track",
            "event": "Product Viewed",
            "userId": "M1",
            "properties": {"sku": "P1", "カラー": "紺", "nested": {"a": [1, 2]}},
            "context": {"channel": "app", "device": {"id": "D1"}, "custom": 1},
            "vendorField": {"x": True},
        }
    )
    raw = orjson.loads(row.raw)
    assert raw["properties"]["カラー"] == "紺"
    assert raw["properties"]["nested"] == {"a": [1, 2]}
    assert raw["context"]["custom"] == 1
    assert raw["vendorField"] == {"x": True}
    assert (row.type, row.event, row.user_id, row.channel) == (
        "track",
        "Product Viewed",
        "M1",
        "app",
    )


def test_store_event_takes_store_id_and_store_channel() -> None:
    row = norm(
        {"type": "track", "event": "Store Visited", "userId": "M1", "properties": {"store_id": 12}}
    )
    assert row.channel == "store"
    assert row.store_id == "12"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("browser", "web"), ("mobile", "app"), ("LINE", "line"), ("call_center", "call_center")],
)
def test_channel_names_map_onto_ours(given: str, expected: str) -> None:
    row = norm({"type": "track", "event": "e", "userId": "u", "context": {"channel": given}})
    assert row.channel == expected


def test_unknown_channel_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidEvent) as info:
        norm({"type": "track", "event": "e", "userId": "u", "context": {"channel": "fax"}})
    assert info.value.field == "context.channel"


def stored_raw(store: Store, row: EventRow) -> dict:  # type: ignore[type-arg]
    store.insert_events([row])
    raw = store.scalar("SELECT raw FROM events WHERE message_id = ?", [row.message_id])
    return orjson.loads(raw)  # type: ignore[no-any-return]


def test_timestamp_given_is_used_and_stored_as_utc(store: Store) -> None:
    row = norm(
        {"type": "track", "event": "e", "userId": "u", "timestamp": "2026-03-01T09:00:00+09:00"}
    )
    assert row.timestamp == datetime(2026, 3, 1, 0, 0)
    assert stored_raw(store, row)["timestamp"] == "2026-03-01T00:00:00Z"


def test_stored_message_has_what_was_resolved_and_everything_sent(store: Store) -> None:
    sent = {
        "event": "Store Visited",
        "anonymousId": "a1",
        "originalTimestamp": "2026-03-01T11:00:00.25Z",
        "properties": {"store_id": 7, "カラー": "紺"},
        "context": {"channel": "LINE", "custom": {"x": [1, None]}},
        "vendor": None,
    }
    raw = stored_raw(store, norm(sent, default_type="track"))
    assert raw == {
        **sent,
        "type": "track",
        "messageId": content_message_id(sent),
        "timestamp": "2026-03-01T11:00:00.250000Z",
        "receivedAt": "2026-03-01T12:00:00Z",
        "context": {"channel": "line", "custom": {"x": [1, None]}},
    }


def test_missing_timestamp_is_corrected_for_device_clock_skew() -> None:
    # The device clock is 10 minutes fast: it says it sent at 12:10 what happened at 12:05.
    row = norm(
        {
            "type": "track",
            "event": "e",
            "userId": "u",
            "originalTimestamp": "2026-03-01T12:05:00Z",
            "sentAt": "2026-03-01T12:10:00Z",
        }
    )
    assert row.timestamp == datetime(2026, 3, 1, 11, 55)


def test_batch_sent_at_applies_and_no_time_means_received_at() -> None:
    row = norm(
        {"type": "track", "event": "e", "userId": "u", "originalTimestamp": "2026-03-01T11:00:00Z"},
        batch_sent_at=datetime(2026, 3, 1, 11, 30, tzinfo=UTC),
    )
    assert row.timestamp == datetime(2026, 3, 1, 11, 30)
    assert norm({"type": "track", "event": "e", "userId": "u"}).timestamp == NOW.replace(
        tzinfo=None
    )


@pytest.mark.parametrize("when", ["1850-01-01T00:00:00Z", "3026-01-01T00:00:00Z", "yesterday", 5.5])
def test_absurd_or_broken_timestamps_are_refused(when: object) -> None:
    with pytest.raises(InvalidEvent) as info:
        norm({"type": "track", "event": "e", "userId": "u", "timestamp": when})
    assert info.value.field == "timestamp"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "track", "event": "e"}, "userId"),
        ({"type": "track", "userId": "u"}, "event"),
        ({"type": "track", "userId": "u", "event": ""}, "event"),
        ({"type": "alias", "userId": "u"}, "previousId"),
        ({"type": "alias", "previousId": "a", "anonymousId": "x"}, "userId"),
        ({"type": "group", "userId": "u"}, "groupId"),
        ({"type": "track", "userId": "u", "event": "e", "properties": [1]}, "properties"),
        ({"type": "track", "userId": {"a": 1}, "event": "e"}, "userId"),
        ({"type": "launch", "userId": "u"}, "type"),
        ({"userId": "u"}, "type"),
    ],
)
def test_invalid_messages_name_the_field(raw: dict, field: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        norm(raw)
    assert info.value.field == field
    assert field in info.value.message


def test_numeric_ids_become_strings() -> None:
    row = norm({"type": "identify", "userId": 12345, "traits": {"email": "a@example.jp"}})
    assert row.user_id == "12345"


def test_oversized_message_is_refused() -> None:
    with pytest.raises(PayloadTooLarge):
        norm(
            {
                "type": "track",
                "event": "e",
                "userId": "u",
                "properties": {"s": "x" * MAX_EVENT_BYTES},
            }
        )


def test_message_without_id_gets_a_stable_one() -> None:
    raw = {"type": "track", "event": "e", "userId": "u", "timestamp": "2026-03-01T00:00:00Z"}
    a, b = norm(dict(raw)), normalize(dict(raw), received_at=NOW + timedelta(hours=1), source="x")
    assert a.message_id == b.message_id == content_message_id(raw)
    assert norm({**raw, "event": "f"}).message_id != a.message_id


def test_identifiers_beside_user_and_anonymous_id_are_columns() -> None:
    row = norm(
        {
            "type": "identify",
            "userId": "M1",
            "traits": {"email": " Taro@Example.JP ", "phone": 9012345678, "member_card": {"x": 1}},
            "context": {
                "device": {"id": "D-1"},
                "traits": {"line_user_id": "U1", "email": "old@x.jp"},
            },
        }
    )
    # Kept as sent (identity resolution normalises); identify traits win over context.traits.
    assert (row.device_id, row.email, row.phone, row.line_user_id, row.member_card) == (
        "D-1",
        "Taro@Example.JP",
        "9012345678",
        "U1",
        None,
    )
    alias = norm({"type": "alias", "userId": "M1", "previousId": "anon-1"})
    assert alias.previous_id == "anon-1"
