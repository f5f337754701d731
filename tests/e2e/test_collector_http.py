"""The Segment-compatible collector over real HTTP: auth, every endpoint, bad input, limits,
gzip, concurrency with group commit, idempotency."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import AppServer

KB = 1024


@pytest.fixture
def live(app_server: AppServer) -> AppServer:
    """The live server, with a source (write key) of this test's own."""
    return app_server


@pytest.fixture
def client(live: AppServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, auth=(live.write_key, ""), timeout=30) as c:
        yield c


def mid() -> str:
    return "m-" + uuid.uuid4().hex


def track(**extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": "M000001",
        "event": "Product Viewed",
        "messageId": mid(),
        **extra,
    }


def rows(live: AppServer, where: str = "", params: list[Any] | None = None) -> list[dict[str, Any]]:
    """This test's events (those of its source), optionally filtered by `where` (`AND ...`)."""
    cur = live.store.cursor()
    try:
        result = cur.execute(
            f"SELECT * FROM events WHERE source = ? {where} ORDER BY message_id",
            [live.source, *(params or [])],
        )
        names = [d[0] for d in result.description]
        return [dict(zip(names, r, strict=True)) for r in result.fetchall()]
    finally:
        cur.close()


def count(live: AppServer, message_id: str | None = None) -> int:
    """How many of this test's events are stored (with `message_id`, if given)."""
    if message_id is None:
        return int(live.store.scalar("SELECT count(*) FROM events WHERE source = ?", [live.source]))
    return int(
        live.store.scalar(
            "SELECT count(*) FROM events WHERE source = ? AND message_id = ?",
            [live.source, message_id],
        )
    )


def assert_error(resp: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert isinstance(body.get("error"), dict), body
    assert body["error"]["message"], body
    if field is not None:
        assert body["error"]["field"] == field, body
    return body


# -- auth ------------------------------------------------------------------------------------


def test_basic_auth_with_key_as_user_name_and_empty_password(live: AppServer) -> None:
    m = track()
    resp = httpx.post(f"{live.url}/v1/track", json=m, auth=(live.write_key, ""))
    assert resp.status_code == 200, resp.text
    assert resp.json()["success"] is True
    assert count(live, m["messageId"]) == 1


def test_basic_auth_header_built_by_hand(live: AppServer) -> None:
    token = base64.b64encode(f"{live.write_key}:".encode()).decode()
    m = track()
    resp = httpx.post(f"{live.url}/v1/track", json=m, headers={"Authorization": f"Basic {token}"})
    assert resp.status_code == 200, resp.text
    assert count(live, m["messageId"]) == 1


def test_write_key_in_the_body(live: AppServer) -> None:
    m = track()
    resp = httpx.post(f"{live.url}/v1/batch", json={"writeKey": live.write_key, "batch": [m]})
    assert resp.status_code == 200, resp.text
    single = track()
    resp = httpx.post(f"{live.url}/v1/track", json={**single, "writeKey": live.write_key})
    assert resp.status_code == 200, resp.text
    assert count(live, m["messageId"]) == 1
    assert count(live, single["messageId"]) == 1


def test_write_key_sent_in_the_body_is_not_stored_with_the_event(live: AppServer) -> None:
    """Write keys are secrets stored hashed; the event's raw JSON must not keep one in clear."""
    key = live.write_key
    single = track()
    resp = httpx.post(f"{live.url}/v1/track", json={**single, "writeKey": key})
    assert resp.status_code == 200, resp.text
    batched = track()
    resp = httpx.post(f"{live.url}/v1/batch", json={"writeKey": key, "batch": [batched]})
    assert resp.status_code == 200, resp.text
    leaked = [r["message_id"] for r in rows(live, "AND contains(CAST(raw AS VARCHAR), ?)", [key])]
    assert leaked == [], f"write key stored in clear in events.raw of {leaked}"


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_wrong_key_is_401(live: AppServer, path: str) -> None:
    body = track() if path == "/v1/track" else {"batch": [track()]}
    resp = httpx.post(f"{live.url}{path}", json=body, auth=("wk_not_a_real_key", ""))
    assert_error(resp, 401, "writeKey")
    resp = httpx.post(f"{live.url}{path}", json={**body, "writeKey": "wk_wrong"})
    assert_error(resp, 401, "writeKey")
    assert count(live) == 0


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_no_key_is_401(live: AppServer, path: str) -> None:
    body = track() if path == "/v1/track" else {"batch": [track()]}
    resp = httpx.post(f"{live.url}{path}", json=body)
    assert_error(resp, 401, "writeKey")
    assert "WWW-Authenticate" in resp.headers
    # A header that is not HTTP basic is named as the fault (even with a key in the body).
    for header in ("Basic !!!not-base64", "Bearer x"):
        resp = httpx.post(
            f"{live.url}{path}", json={**body, "writeKey": live.write_key},
            headers={"Authorization": header},
        )  # fmt: skip
        assert_error(resp, 401, "Authorization")
    assert count(live) == 0


# -- every single endpoint -------------------------------------------------------------------


def test_track_endpoint(client: httpx.Client, live: AppServer) -> None:
    m = {
        "userId": "M000001",
        "anonymousId": "anon-1",
        "event": "Order Completed",
        "messageId": mid(),
        "properties": {"store_id": "S001", "total": 12800, "商品": {"名前": "傘", "色": ["赤"]}},
        "context": {"channel": "store"},
        "extra_top_level": {"kept": True},
    }
    assert client.post("/v1/track", json=m).status_code == 200
    [row] = rows(live, "AND message_id = ?", [m["messageId"]])
    assert row["type"] == "track"
    assert row["event"] == "Order Completed"
    assert row["user_id"] == "M000001"
    assert row["anonymous_id"] == "anon-1"
    assert row["channel"] == "store"
    assert row["store_id"] == "S001"
    assert row["source"] == live.source
    raw = json.loads(row["raw"])
    assert raw["properties"]["商品"] == {"名前": "傘", "色": ["赤"]}
    assert raw["extra_top_level"] == {"kept": True}


def test_identify_endpoint(client: httpx.Client, live: AppServer) -> None:
    m = {
        "userId": "M000002",
        "messageId": mid(),
        "traits": {"email": "a@example.jp", "名前": "花子"},
    }
    assert client.post("/v1/identify", json=m).status_code == 200
    [row] = rows(live, "AND message_id = ?", [m["messageId"]])
    assert (row["type"], row["user_id"], row["event"]) == ("identify", "M000002", None)
    assert json.loads(row["raw"])["traits"] == m["traits"]


def test_page_endpoint(client: httpx.Client, live: AppServer) -> None:
    m = {
        "anonymousId": "anon-2",
        "messageId": mid(),
        "name": "商品詳細",
        "category": "EC",
        "properties": {"url": "https://shop.example.jp/p/1"},
    }
    assert client.post("/v1/page", json=m).status_code == 200
    [row] = rows(live, "AND message_id = ?", [m["messageId"]])
    assert (row["type"], row["anonymous_id"], row["user_id"]) == ("page", "anon-2", None)
    assert row["event"] == "商品詳細"
    assert row["channel"] == "web"
    assert json.loads(row["raw"])["category"] == "EC"


def test_screen_endpoint(client: httpx.Client, live: AppServer) -> None:
    m = {"userId": "M000003", "messageId": mid(), "name": "ホーム", "properties": {"tab": 1}}
    assert client.post("/v1/screen", json=m).status_code == 200
    [row] = rows(live, "AND message_id = ?", [m["messageId"]])
    assert (row["type"], row["event"], row["channel"]) == ("screen", "ホーム", "app")


def test_group_endpoint(client: httpx.Client, live: AppServer) -> None:
    m = {"userId": "M000004", "messageId": mid(), "groupId": "G-01", "traits": {"name": "法人A"}}
    assert client.post("/v1/group", json=m).status_code == 200
    [row] = rows(live, "AND message_id = ?", [m["messageId"]])
    assert (row["type"], row["user_id"]) == ("group", "M000004")
    raw = json.loads(row["raw"])
    assert raw["groupId"] == "G-01"
    assert raw["traits"] == {"name": "法人A"}


def test_alias_endpoint(client: httpx.Client, live: AppServer) -> None:
    m = {"userId": "M000005", "previousId": "anon-5", "messageId": mid()}
    assert client.post("/v1/alias", json=m).status_code == 200
    [row] = rows(live, "AND message_id = ?", [m["messageId"]])
    assert (row["type"], row["user_id"]) == ("alias", "M000005")
    assert json.loads(row["raw"])["previousId"] == "anon-5"


def test_numeric_ids_are_kept_as_strings(client: httpx.Client, live: AppServer) -> None:
    m = {"userId": 12345, "event": "Product Viewed", "messageId": mid()}
    assert client.post("/v1/track", json=m).status_code == 200
    [row] = rows(live, "AND message_id = ?", [m["messageId"]])
    assert row["user_id"] == "12345"


@pytest.mark.parametrize(
    "ids",
    [
        {"userId": "M1", "anonymousId": None},  # what Segment's own clients send
        {"userId": None, "anonymousId": "anon-1"},
        {"userId": "M1", "anonymousId": ""},
        {"userId": "M1", "anonymousId": "anon-1", "messageId": None},
    ],
)
def test_explicit_null_or_empty_ids_are_accepted(
    client: httpx.Client, live: AppServer, ids: dict[str, Any]
) -> None:
    m = {"event": "Product Viewed", "messageId": mid(), **ids}
    resp = client.post("/v1/track", json=m)
    assert resp.status_code == 200, resp.text
    resp = client.post("/v1/batch", json={"batch": [{**m, "type": "track"}]})
    assert resp.status_code == 200, resp.text
    [row] = rows(live)
    assert row["user_id"] == (ids["userId"] or None)
    assert row["anonymous_id"] == (ids["anonymousId"] or None)


def test_timestamps_come_back_in_utc(client: httpx.Client, live: AppServer) -> None:
    jst = datetime.now(ZoneInfo("Asia/Tokyo")).replace(microsecond=0) - timedelta(days=1)
    m = track(timestamp=jst.isoformat())
    assert client.post("/v1/track", json=m).status_code == 200
    [row] = rows(live, "AND message_id = ?", [m["messageId"]])
    assert row["timestamp"] == jst.astimezone(UTC).replace(tzinfo=None)
    raw = json.loads(row["raw"])
    assert raw["timestamp"] == jst.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert raw["receivedAt"].endswith("Z")


# -- bad input: 400, naming the field, never a 5xx --------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/track", {"event": "Product Viewed"}, "userId"),
        ("/v1/track", {"event": "Product Viewed", "userId": None, "anonymousId": ""}, "userId"),
        ("/v1/identify", {"traits": {"a": 1}}, "userId"),
        ("/v1/track", {"userId": "M1"}, "event"),
        ("/v1/track", {"userId": "M1", "event": ""}, "event"),
        ("/v1/alias", {"userId": "M1"}, "previousId"),
        ("/v1/group", {"userId": "M1"}, "groupId"),
        ("/v1/track", {"userId": "M1", "event": "E", "properties": [1, 2]}, "properties"),
        ("/v1/identify", {"userId": "M1", "traits": "VIP"}, "traits"),
        ("/v1/track", {"userId": "M1", "event": "E", "context": ["web"]}, "context"),
        ("/v1/track", {"userId": "M1", "event": "E", "timestamp": "not a date"}, "timestamp"),
        (
            "/v1/track",
            {"userId": "M1", "event": "E", "timestamp": "2026-13-45T99:00:00Z"},
            "timestamp",
        ),
        (
            "/v1/track",
            {"userId": "M1", "event": "E", "timestamp": "1800-01-01T00:00:00Z"},
            "timestamp",
        ),
        (
            "/v1/track",
            {"userId": "M1", "event": "E", "timestamp": "3000-01-01T00:00:00Z"},
            "timestamp",
        ),
        (
            "/v1/track",
            {"userId": "M1", "event": "E", "timestamp": "1800-06-01T12:00:00+09:00"},
            "timestamp",
        ),
        (
            "/v1/track",
            {"userId": "M1", "event": "E", "timestamp": "3000-06-01T12:00:00-05:00"},
            "timestamp",
        ),
        (
            "/v1/track",
            {"userId": "M1", "event": "E", "context": {"channel": "fax"}},
            "context.channel",
        ),
        (
            "/v1/track",
            {"userId": "M1", "event": "E", "properties": {"store_id": [1]}},
            "properties.store_id",
        ),
        ("/v1/track", {"userId": {"id": 1}, "event": "E"}, "userId"),
    ],
)
def test_invalid_message_is_400_naming_the_field(
    client: httpx.Client, live: AppServer, path: str, body: dict[str, Any], field: str | None
) -> None:
    resp = client.post(path, json=body)
    assert resp.status_code == 400, resp.text
    err = assert_error(resp, 400, field)
    if field is not None:
        assert field in err["error"]["message"]
    assert count(live) == 0


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00+09:00",  # before datetime.min once converted to UTC
        "9999-12-31T23:00:00-05:00",  # after datetime.max once converted to UTC
    ],
)
def test_timestamp_at_the_edge_of_the_calendar_is_400_not_500(
    client: httpx.Client, live: AppServer, timestamp: str
) -> None:
    resp = client.post("/v1/track", json={"userId": "M1", "event": "E", "timestamp": timestamp})
    assert_error(resp, 400, "timestamp")
    assert count(live) == 0


def test_original_timestamp_corrected_by_absurd_sent_at_is_400_not_500(
    client: httpx.Client, live: AppServer
) -> None:
    resp = client.post(
        "/v1/batch",
        json={
            "sentAt": "9999-01-01T00:00:00Z",
            "batch": [track(originalTimestamp="0001-01-02T00:00:00Z")],
        },
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["rejected"][0]["field"] == "timestamp"


def test_batch_context_with_a_message_context_that_is_not_an_object_is_400_not_500(
    client: httpx.Client, live: AppServer
) -> None:
    good = track()
    resp = client.post(
        "/v1/batch",
        json={"context": {"ip": "192.0.2.1"}, "batch": [good, track(context=["web"])]},
    )
    body = assert_error(resp, 400, "batch[1].context")
    assert [r["index"] for r in body["rejected"]] == [1]
    assert count(live, good["messageId"]) == 1


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"子": value}
    return value


def test_deeply_nested_properties_are_400_not_500(client: httpx.Client, live: AppServer) -> None:
    """300 levels parse as JSON (the parser allows 1,024) but may not be re-encodable."""
    resp = client.post("/v1/track", json={"userId": "M1", "event": "E", "properties": _nested(300)})
    assert_error(resp, 400, None)
    good = track(properties=_nested(20))
    resp = client.post("/v1/batch", json={"batch": [good, track(properties=_nested(300))]})
    body = assert_error(resp, 400, None)
    assert [r["index"] for r in body["rejected"]] == [1]
    assert count(live, good["messageId"]) == 1
    assert count(live) == 1
    # deeper than the JSON parser goes
    too_deep = b'{"userId": "M1", "event": "E", "properties": ' + b'{"a":' * 2000 + b"{}"
    resp = client.post("/v1/track", content=too_deep + b"}" * 2001)
    assert_error(resp, 400, "body")


def test_malformed_json_body(client: httpx.Client, live: AppServer) -> None:
    for path in ("/v1/track", "/v1/batch"):
        resp = client.post(
            path,
            content=b'{"userId": "M1", "event": ',
            headers={"Content-Type": "application/json"},
        )
        assert_error(resp, 400, "body")
    resp = client.post("/v1/track", content=b"", headers={"Content-Type": "application/json"})
    assert_error(resp, 400, "body")


@pytest.mark.parametrize("body", [[track()], "track", 42, None])
def test_json_that_is_not_an_object_on_a_single_endpoint(
    client: httpx.Client, live: AppServer, body: Any
) -> None:
    resp = client.post("/v1/track", content=json.dumps(body).encode())
    assert_error(resp, 400, "body")
    assert count(live) == 0


@pytest.mark.parametrize("body", [[track()], {"batch": {"0": track()}}, {"messages": []}])
def test_batch_body_without_a_batch_list(client: httpx.Client, body: Any) -> None:
    resp = client.post("/v1/batch", content=json.dumps(body).encode())
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["field"] in ("body", "batch")


def test_message_over_32kb(client: httpx.Client, live: AppServer) -> None:
    big = "あ" * (1024 * 1024 // 3)  # 1 MB of UTF-8
    resp = client.post(
        "/v1/track", json={"userId": "M1", "event": "E", "properties": {"note": big}}
    )
    body = assert_error(resp, 400, None)
    assert body["error"]["field"] in ("body", "message")
    assert "32 KB" in body["error"]["message"]
    # inside a batch the one message is rejected, not the batch's other messages
    ok = track()
    resp = client.post(
        "/v1/batch",
        json={"batch": [ok, track(properties={"note": "x" * (40 * KB)})]},
    )
    body = assert_error(resp, 400, "batch[1].message")
    assert [r["index"] for r in body["rejected"]] == [1]
    assert count(live, ok["messageId"]) == 1
    assert count(live) == 1


def test_batch_over_500kb(client: httpx.Client, live: AppServer) -> None:
    batch = [track(properties={"pad": "x" * (20 * KB)}) for _ in range(30)]  # ~600 KB
    resp = client.post("/v1/batch", json={"batch": batch})
    body = assert_error(resp, 400, "body")
    assert "500 KB" in body["error"]["message"]
    assert count(live) == 0


def test_batch_over_500kb_when_decompressed(client: httpx.Client, live: AppServer) -> None:
    """A small gzip body that inflates past the limit (a zip bomb) is refused."""
    batch = [track(properties={"pad": "x" * (30 * KB)}) for _ in range(100)]  # ~3 MB inflated
    data = gzip.compress(json.dumps({"batch": batch}).encode())
    assert len(data) < 500 * KB
    resp = client.post("/v1/batch", content=data, headers={"Content-Encoding": "gzip"})
    assert_error(resp, 400, "body")
    assert count(live) == 0


def test_streamed_body_over_the_limit_without_content_length(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"userId": "M1", "event": "E", "properties": {"pad": "'
        for _ in range(64):
            yield b"x" * KB
        yield b'"}}'

    resp = client.post("/v1/track", content=chunks())
    assert_error(resp, 400, "body")


def test_batch_with_2501_messages(client: httpx.Client, live: AppServer) -> None:
    batch = [
        {"type": "track", "userId": "u", "event": "E", "messageId": str(i)} for i in range(2501)
    ]
    resp = client.post("/v1/batch", json={"batch": batch})
    body = assert_error(resp, 400, "batch")
    assert "2500" in body["error"]["message"]
    assert count(live) == 0
    # 2,500 is fine
    resp = client.post("/v1/batch", json={"batch": batch[:2500]})
    assert resp.status_code == 200, resp.text
    assert count(live) == 2500


def test_invalid_gzip(client: httpx.Client, live: AppServer) -> None:
    for data in (b"this is not gzip", b"\x1f\x8b\x08\x00garbage-after-the-magic"):
        resp = client.post("/v1/batch", content=data, headers={"Content-Encoding": "gzip"})
        assert_error(resp, 400, "body")
    truncated = gzip.compress(json.dumps({"batch": [track()]}).encode())[:-12]
    resp = client.post("/v1/batch", content=truncated, headers={"Content-Encoding": "gzip"})
    assert_error(resp, 400, "body")
    assert count(live) == 0


def test_unsupported_content_encoding(client: httpx.Client) -> None:
    resp = client.post("/v1/batch", content=b"{}", headers={"Content-Encoding": "br"})
    assert_error(resp, 400, None)


def test_non_utf8_body(client: httpx.Client, live: AppServer) -> None:
    sjis = '{"userId": "M1", "event": "商品閲覧"}'.encode("shift_jis")
    for path in ("/v1/track", "/v1/batch"):
        resp = client.post(path, content=sjis, headers={"Content-Type": "application/json"})
        assert_error(resp, 400, "body")
    resp = client.post(
        "/v1/track", content=b"\xff\xfe\x00{", headers={"Content-Type": "application/json"}
    )
    assert_error(resp, 400, "body")
    assert count(live) == 0


def test_non_object_messages_in_a_batch(client: httpx.Client, live: AppServer) -> None:
    ok = track()
    resp = client.post("/v1/batch", json={"batch": [1, None, "x", ok, {"type": ["track"]}, []]})
    body = assert_error(resp, 400, None)
    assert [r["index"] for r in body["rejected"]] == [0, 1, 2, 4, 5]
    assert count(live, ok["messageId"]) == 1


def test_mixed_batch_stores_the_valid_messages_and_lists_the_rejected(
    client: httpx.Client, live: AppServer
) -> None:
    batch = [
        track(),
        {"type": "track", "userId": "M1", "messageId": mid()},  # no event
        {"type": "identify", "userId": "M1", "messageId": mid(), "traits": {"a": 1}},
        {"type": "alias", "userId": "M1", "messageId": mid()},  # no previousId
        {"type": "page", "anonymousId": "a1", "messageId": mid(), "name": "top"},
        {"type": "track", "event": "E", "messageId": mid()},  # no user
        {"type": "sale", "userId": "M1", "messageId": mid()},  # unknown type
        track(timestamp="1800-01-01T00:00:00Z"),
    ]
    resp = client.post("/v1/batch", json={"batch": batch})
    body = assert_error(resp, 400, "batch[1].event")
    rejected = {r["index"]: r for r in body["rejected"]}
    assert sorted(rejected) == [1, 3, 5, 6, 7]
    assert rejected[1]["field"] == "event"
    assert rejected[3]["field"] == "previousId"
    assert rejected[5]["field"] == "userId"
    assert rejected[6]["field"] == "type"
    assert rejected[7]["field"] == "timestamp"
    assert all(r["message"] for r in rejected.values())
    assert body["accepted"] == 3
    stored = {r["message_id"] for r in rows(live)}
    assert stored == {batch[i]["messageId"] for i in (0, 2, 4)}


def test_batch_level_context_and_sent_at(client: httpx.Client, live: AppServer) -> None:
    sent_at = datetime.now(UTC).replace(microsecond=0)
    original = sent_at - timedelta(
        hours=3
    )  # the device clock says the event was 3 h before sending
    m = {
        "type": "track",
        "userId": "M1",
        "event": "Product Viewed",
        "messageId": mid(),
        "originalTimestamp": original.isoformat(),
    }
    resp = client.post(
        "/v1/batch",
        json={
            "batch": [m],
            "sentAt": sent_at.isoformat(),
            "context": {"channel": "line", "ip": "192.0.2.1"},
        },
    )
    assert resp.status_code == 200, resp.text
    [row] = rows(live, "AND message_id = ?", [m["messageId"]])
    assert row["channel"] == "line"
    assert json.loads(row["raw"])["context"]["ip"] == "192.0.2.1"
    # corrected by receipt time: about three hours before it was received
    skew = row["received_at"] - row["timestamp"]
    assert timedelta(hours=3) <= skew < timedelta(hours=3, minutes=1)


def test_gzip_batch(client: httpx.Client, live: AppServer) -> None:
    batch = [
        track(properties={"商品名": "ウールコート", "i": i}, userId=f"M{i:06d}") for i in range(200)
    ]
    data = gzip.compress(json.dumps({"batch": batch}, ensure_ascii=False).encode())
    resp = client.post(
        "/v1/batch",
        content=data,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert resp.status_code == 200, resp.text
    stored = {
        r["message_id"]: (r["user_id"], json.loads(r["raw"])["properties"]["商品名"])
        for r in rows(live)
    }
    assert stored == {m["messageId"]: (m["userId"], "ウールコート") for m in batch}


def test_gzip_single_message(client: httpx.Client, live: AppServer) -> None:
    m = track()
    resp = client.post(
        "/v1/track",
        content=gzip.compress(json.dumps(m).encode()),
        headers={"Content-Encoding": "gzip"},
    )
    assert resp.status_code == 200, resp.text
    assert count(live, m["messageId"]) == 1


# -- idempotency -------------------------------------------------------------------------------


def test_same_message_id_twice_in_one_batch(client: httpx.Client, live: AppServer) -> None:
    m = track()
    resp = client.post("/v1/batch", json={"batch": [m, dict(m), {**m, "event": "Product Added"}]})
    assert resp.status_code == 200, resp.text
    assert count(live, m["messageId"]) == 1
    assert count(live) == 1


def test_same_message_id_across_requests(client: httpx.Client, live: AppServer) -> None:
    m = track()
    for _ in range(3):
        assert client.post("/v1/track", json=m).status_code == 200
        assert client.post("/v1/batch", json={"batch": [m]}).status_code == 200
    assert count(live, m["messageId"]) == 1
    assert count(live) == 1


def test_same_message_id_in_concurrent_requests(client: httpx.Client, live: AppServer) -> None:
    m = track()
    url, key = live.url, live.write_key
    statuses: list[int] = []

    def send() -> None:
        with httpx.Client(base_url=url, auth=(key, ""), timeout=30) as c:
            for _ in range(5):
                statuses.append(c.post("/v1/batch", json={"batch": [m]}).status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 30
    assert count(live, m["messageId"]) == 1


def test_without_message_id_identical_content_is_stored_once(
    client: httpx.Client, live: AppServer
) -> None:
    ts = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    m = {
        "userId": "M1",
        "event": "Store Visited",
        "timestamp": ts,
        "properties": {"store_id": "S1"},
    }
    assert client.post("/v1/track", json=m).status_code == 200
    assert client.post("/v1/track", json=dict(reversed(list(m.items())))).status_code == 200
    assert count(live) == 1
    # different content is a different event
    assert client.post("/v1/track", json={**m, "properties": {"store_id": "S2"}}).status_code == 200
    assert count(live) == 2
    [row] = rows(live, "AND store_id = 'S1'")
    assert row["message_id"]
    assert json.loads(row["raw"])["messageId"] == row["message_id"]


# -- concurrency and group commit ----------------------------------------------------------------


def test_concurrent_batches_are_all_stored_with_group_commit(app_server: AppServer) -> None:
    threads_n, batches_n, per_batch = 8, 50, 100
    statuses: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads_n)

    def send(t: int) -> None:
        try:
            with httpx.Client(
                base_url=app_server.url, auth=(app_server.write_key, ""), timeout=60
            ) as c:
                start.wait()
                for b in range(batches_n):
                    batch = [
                        {
                            "type": "track",
                            "userId": f"M{t}-{i}",
                            "event": "Product Viewed",
                            "messageId": f"c-{t}-{b}-{i}",
                            "properties": {"sku": f"P{i:04d}", "カテゴリ": "靴"},
                        }
                        for i in range(per_batch)
                    ]
                    status = c.post("/v1/batch", json={"batch": batch}).status_code
                    with lock:
                        statuses.append(status)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            with lock:
                errors.append(exc)

    commits_before = app_server.collector.commits
    workers = [threading.Thread(target=send, args=(t,)) for t in range(threads_n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    assert errors == []
    requests = threads_n * batches_n
    assert statuses == [200] * requests
    total = threads_n * batches_n * per_batch
    assert count(app_server) == total
    assert (
        app_server.store.scalar(
            "SELECT count(DISTINCT message_id) FROM events WHERE source = ?", [app_server.source]
        )
        == total
    )
    commits = app_server.collector.commits - commits_before
    assert 0 < commits < requests, f"{commits} commits for {requests} requests: no group commit"
