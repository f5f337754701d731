from __future__ import annotations

from datetime import UTC, datetime

import httpx
from tests.web.signin import sign_in, users

from tsunagu.events.normalize import normalize
from tsunagu.store import Store


def test_landing_page_counts_in_japanese_and_english(live_server, store: Store) -> None:  # type: ignore[no-untyped-def]
    store.query(
        "INSERT INTO stores (store_id, name, updated_at) VALUES ('S1', '渋谷店', now()::timestamp)"
    )
    now = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
    messages = [
        {"type": "track", "event": "Store Visited", "userId": "M1",
         "properties": {"store_id": "S1"}, "timestamp": "2026-03-01T03:00:00Z"},
        {"type": "page", "anonymousId": "a", "name": "Top", "timestamp": "2026-03-01T02:00:00Z"},
        {"type": "screen", "anonymousId": "a", "name": "Home", "timestamp": "2026-03-01T01:00:00Z"},
    ]  # fmt: skip
    store.insert_events([normalize(m, received_at=now, source="t") for m in messages])
    users(store, "S1")
    away = httpx.get(live_server.url + "/")
    assert away.status_code == 303 and away.headers["location"] == "/login?next=%2F"
    with sign_in(live_server.url, "analyst") as client:
        ja = client.get("/")
        assert ja.status_code == 200
        assert '<html lang="ja">' in ja.text
        assert "会員数" in ja.text and "チャネル別イベント" in ja.text
        assert '<div class="value" id="stores">1</div>' in ja.text
        assert '<div class="value" id="events">3</div>' in ja.text
        assert 'data-channel="store"' in ja.text and 'data-channel="app"' in ja.text
        # Times are shown in Japan time: 03:00 UTC is 12:00 JST.
        assert "2026-03-01 12:00 JST" in ja.text
        en = client.get("/?lang=en")
        assert '<html lang="en">' in en.text and "Events by channel" in en.text
        assert en.cookies.get("tsunagu_lang") == "en"
        assert '<html lang="en">' in client.get("/").text  # remembered
