"""Segment's own Python client (segment-analytics-python) against a live tsunagu server.

What a retailer's existing instrumentation sends must arrive exactly once, as sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from segment.analytics import Client

JST = ZoneInfo("Asia/Tokyo")


class Recorder:
    """Collects what the client reports through `on_error`."""

    def __init__(self) -> None:
        self.errors: list[tuple[BaseException, list[dict[str, Any]]]] = []
        self._lock = threading.Lock()

    def __call__(self, error: BaseException, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            self.errors.append((error, batch))

    def describe(self) -> list[str]:
        return [f"{e!r} for {len(b)} message(s)" for e, b in self.errors]


@pytest.fixture
def make_client(live_server: Any) -> Iterator[Callable[..., tuple[Client, Recorder]]]:
    """Clients in the default (background thread) mode, so failures reach `on_error`."""
    made: list[Client] = []

    def make(**options: Any) -> tuple[Client, Recorder]:
        recorder = Recorder()
        client = Client(
            live_server.write_key,
            host=live_server.url,
            on_error=recorder,
            upload_interval=0.05,
            max_retries=1,  # a correct server needs none; keep a failing test fast
            timeout=30,
            **options,
        )
        made.append(client)
        return client, recorder

    yield make
    for client in made:
        client.join()


def stored(live_server: Any, message_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Events by messageId; fails if any messageId is stored more than once."""
    cur = live_server.store.cursor()
    try:
        result = cur.execute("SELECT * FROM events ORDER BY message_id")
        names = [d[0] for d in result.description]
        found = [dict(zip(names, r, strict=True)) for r in result.fetchall()]
    finally:
        cur.close()
    by_id: dict[str, dict[str, Any]] = {}
    for row in found:
        assert row["message_id"] not in by_id, f"{row['message_id']} stored twice"
        row["raw"] = json.loads(row["raw"])
        by_id[row["message_id"]] = row
    if message_ids is not None:
        missing = set(message_ids) - set(by_id)
        assert not missing, f"{len(missing)} messages never arrived, e.g. {sorted(missing)[:3]}"
    return by_id


def utc_naive(ts: datetime) -> datetime:
    """What the store should hold for a client timestamp (the client sends milliseconds)."""
    ts = ts.replace(microsecond=ts.microsecond // 1000 * 1000)
    return ts.astimezone(UTC).replace(tzinfo=None)


def test_every_call_type_arrives_once_as_sent(make_client: Any, live_server: Any) -> None:
    client, recorder = make_client()
    two_days_ago = datetime.now(JST).replace(microsecond=123_456) - timedelta(days=2)
    properties = {
        "sku": "P-0001",
        "name": "撥水ウールコート",
        "price": 29_800,
        "カテゴリ": "アウター",
        "nested": {"色": "紺", "sizes": ["S", "M"], "deep": {"店舗": {"在庫": 3, "ok": True}}},
        "unknown_field_from_the_app": {"keep": ["me", 1, None]},
    }
    sent: dict[str, dict[str, Any]] = {}

    def remember(result: tuple[bool, dict[str, Any]]) -> None:
        ok, msg = result
        assert ok
        sent[msg["messageId"]] = msg

    remember(
        client.track(
            "M000001",
            "Product Viewed",
            properties,
            context={"channel": "app", "locale": "ja-JP"},
            timestamp=two_days_ago,
        )
    )
    remember(
        client.identify(
            "M000001",
            {"email": "taro@example.jp", "name": "山田 太郎", "address": {"都道府県": "東京都"}},
            anonymous_id="anon-0001",
            timestamp=two_days_ago + timedelta(minutes=1),
        )
    )
    remember(
        client.page(
            anonymous_id="anon-0001",
            category="EC",
            name="商品詳細",
            properties={"url": "https://shop.example.jp/p/P-0001", "title": "撥水ウールコート"},
        )
    )
    remember(client.screen("M000001", name="ホーム", properties={"tab": "おすすめ"}))
    remember(client.group("M000001", "G-法人-01", {"name": "株式会社つなぐ", "employees": 12}))
    remember(client.alias("anon-0001", "M000001"))
    client.flush()

    assert recorder.errors == [], recorder.describe()
    rows = stored(live_server, list(sent))
    assert len(rows) == 6
    by_type = {row["type"]: row for row in rows.values()}
    assert set(by_type) == {"track", "identify", "page", "screen", "group", "alias"}

    track = by_type["track"]
    assert (track["event"], track["user_id"], track["anonymous_id"]) == (
        "Product Viewed",
        "M000001",
        None,
    )
    assert track["channel"] == "app"
    assert track["raw"]["properties"] == properties
    assert track["raw"]["context"]["locale"] == "ja-JP"
    assert track["raw"]["context"]["library"]["name"] == "analytics-python"
    assert track["timestamp"] == utc_naive(two_days_ago)
    assert track["raw"]["timestamp"].endswith("Z")
    assert track["source"] == "test"

    identify = by_type["identify"]
    assert (identify["user_id"], identify["anonymous_id"]) == ("M000001", "anon-0001")
    assert identify["raw"]["traits"]["address"] == {"都道府県": "東京都"}
    assert identify["timestamp"] == utc_naive(two_days_ago + timedelta(minutes=1))

    page = by_type["page"]
    assert (page["event"], page["user_id"], page["anonymous_id"]) == ("商品詳細", None, "anon-0001")
    assert page["raw"]["category"] == "EC"
    assert page["raw"]["properties"]["title"] == "撥水ウールコート"

    screen = by_type["screen"]
    assert (screen["event"], screen["user_id"], screen["channel"]) == ("ホーム", "M000001", "app")

    group = by_type["group"]
    assert group["raw"]["groupId"] == "G-法人-01"
    assert group["raw"]["traits"]["name"] == "株式会社つなぐ"

    alias = by_type["alias"]
    assert (alias["user_id"], alias["raw"]["previousId"]) == ("M000001", "anon-0001")

    # Times the client stamped itself (now) are stored as UTC, close to receipt.
    for row in (page, screen, group, alias):
        assert abs(row["received_at"] - row["timestamp"]) < timedelta(minutes=1)


def test_sync_mode(live_server: Any) -> None:
    client = Client(live_server.write_key, host=live_server.url, sync_mode=True, timeout=30)
    ok, msg = client.track(
        user_id="M000002", event="Store Visited", properties={"store_id": "S012"}
    )
    assert ok
    row = stored(live_server, [msg["messageId"]])[msg["messageId"]]
    assert (row["type"], row["event"], row["user_id"]) == ("track", "Store Visited", "M000002")
    assert (row["channel"], row["store_id"]) == ("store", "S012")


def _batch_of_300(client: Client, tag: str) -> dict[str, dict[str, Any]]:
    zones = [UTC, JST, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    sent: dict[str, dict[str, Any]] = {}
    for i in range(300):
        ts = (base + timedelta(minutes=i, milliseconds=i)).astimezone(zones[i % len(zones)])
        user = f"{tag}-M{i:05d}"
        match i % 6:
            case 0:
                result = client.track(
                    user,
                    "Product Added",
                    {"sku": f"P{i:04d}", "品名": f"商品{i}", "opts": {"色": "白", "i": i}},
                    timestamp=ts,
                )
            case 1:
                result = client.identify(user, {"会員ランク": "ゴールド", "i": i}, timestamp=ts)
            case 2:
                result = client.page(
                    anonymous_id=f"{tag}-anon-{i}", name="トップ", properties={"i": i}, timestamp=ts
                )
            case 3:
                result = client.screen(user, name="カート", properties={"i": i}, timestamp=ts)
            case 4:
                result = client.group(user, f"G{i}", {"i": i}, timestamp=ts)
            case _:
                result = client.alias(f"{tag}-anon-{i}", user, timestamp=ts)
        ok, msg = result
        assert ok
        sent[msg["messageId"]] = {**msg, "_ts": ts, "_user": user}
    return sent


def _check_batch(rows: dict[str, dict[str, Any]], sent: dict[str, dict[str, Any]]) -> None:
    for message_id, msg in sent.items():
        row = rows[message_id]
        assert row["type"] == msg["type"]
        assert row["timestamp"] == utc_naive(msg["_ts"]), message_id
        if msg["type"] == "page":
            assert row["anonymous_id"] == msg["anonymousId"]
            assert row["user_id"] is None
        else:
            assert row["user_id"] == msg["_user"]
        if msg["type"] == "track":
            assert row["event"] == "Product Added"
            assert row["raw"]["properties"] == msg["properties"]
        elif msg["type"] in ("page", "screen"):
            assert row["event"] == msg["name"]
        elif msg["type"] == "identify":
            assert row["raw"]["traits"]["会員ランク"] == "ゴールド"
        elif msg["type"] == "group":
            assert row["raw"]["groupId"] == msg["groupId"]
        elif msg["type"] == "alias":
            assert row["raw"]["previousId"] == msg["previousId"]


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_batch_of_300_arrives_exactly_once(make_client: Any, live_server: Any, gzip: bool) -> None:
    client, recorder = make_client(gzip=gzip, upload_size=100)
    sent = _batch_of_300(client, "gz" if gzip else "plain")
    client.flush()
    assert recorder.errors == [], recorder.describe()
    rows = stored(live_server, list(sent))
    assert len(rows) == 300
    _check_batch(rows, sent)


def test_resending_the_same_message_ids_stores_them_once(
    make_client: Any, live_server: Any
) -> None:
    client, recorder = make_client(upload_size=100)
    sent = _batch_of_300(client, "again")
    client.flush()
    # A client retry (or a replay from a buffer) sends the same messageIds again.
    for msg in list(sent.values())[:150]:
        client.track(msg["_user"], "Product Added", {"resent": True}, message_id=msg["messageId"])
    client.track("again-extra", "Order Completed", message_id="again-dup")
    client.track("again-extra", "Order Completed", message_id="again-dup")
    client.flush()
    # and the same in synchronous mode
    sync = Client(live_server.write_key, host=live_server.url, sync_mode=True, timeout=30)
    sync.track("again-extra", "Order Completed", message_id="again-dup")

    assert recorder.errors == [], recorder.describe()
    rows = stored(live_server, [*sent, "again-dup"])
    assert len(rows) == 301
    _check_batch(rows, sent)  # the first copy is the one kept
    assert not any(r["raw"].get("properties", {}).get("resent") for r in rows.values())


def test_client_hears_of_a_wrong_write_key(live_server: Any) -> None:
    """A wrong key is reported through on_error (401), not silently dropped or stored."""
    recorder = Recorder()
    client = Client(
        "wk_wrong", host=live_server.url, on_error=recorder, upload_interval=0.05, max_retries=1
    )
    try:
        client.track("M1", "Product Viewed")
        client.flush()
    finally:
        client.join()
    assert len(recorder.errors) == 1, recorder.describe()
    assert getattr(recorder.errors[0][0], "status", None) == 401
    assert stored(live_server) == {}
