"""The collector as browser libraries reach it, over real HTTP: the short paths, the write key
in a text/plain body, the library's metrics, and CORS by each source's allowed origins."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tsunagu.events.sources import create_source
from tsunagu.keys import create_key

if TYPE_CHECKING:
    from tests.e2e.conftest import AppServer

SHOP = "https://shop.example.jp"


def browser_source(live: AppServer, *origins: str) -> tuple[str, str]:
    """A source of this test's own accepting browsers of `origins`: (name, write key)."""
    name = "web-" + uuid.uuid4().hex[:10]
    _, key = create_source(store=live.store, name=name, origins=origins)
    live.app.state.source_keys.forget()
    return name, key


def send(
    live: AppServer, path: str, body: dict[str, Any], origin: str | None = SHOP
) -> httpx.Response:
    """As the browser library posts: JSON in a text/plain body, the key inside."""
    headers = {"Content-Type": "text/plain"}
    if origin is not None:
        headers["Origin"] = origin
    return httpx.post(f"{live.url}/v1/{path}", content=json.dumps(body), headers=headers)


def stored(live: AppServer, source: str) -> list[tuple[str, str | None]]:
    return live.store.query(
        "SELECT type, json_extract_string(raw, '$.event') FROM events WHERE source = ? "
        "ORDER BY type",
        [source],
    )


def test_short_paths_take_the_key_in_a_text_body(app_server: AppServer) -> None:
    name, key = browser_source(app_server, SHOP)
    calls = {
        "t": {"event": "商品閲覧", "properties": {"カテゴリ": "靴"}},
        "p": {"name": "トップ"},
        "i": {"traits": {"name": "山田 花子"}},
        "s": {"name": "Home"},
        "g": {"groupId": "company-1"},
        "a": {"previousId": "anon-old"},
    }
    for path, fields in calls.items():
        body = {"userId": "M000001", "messageId": uuid.uuid4().hex, "writeKey": key, **fields}
        answer = send(app_server, path, body)
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == SHOP
        assert "access-control-allow-credentials" not in answer.headers
    batch = {
        "writeKey": key,
        "batch": [
            {"type": "track", "event": "Cart Viewed", "anonymousId": "a-1", "messageId": "b1"},
            {"type": "page", "name": "カート", "anonymousId": "a-1", "messageId": "b2"},
        ],
    }
    assert send(app_server, "b", batch).status_code == 200
    kinds = [kind for kind, _ in stored(app_server, name)]
    assert sorted(kinds) == sorted(
        ["track", "page", "identify", "screen", "group", "alias", "track", "page"]
    )
    assert ("track", "商品閲覧") in stored(app_server, name)
    # The same rules as the long paths: a track without an event is refused, naming it.
    bad = send(app_server, "t", {"userId": "M1", "writeKey": key})
    assert bad.status_code == 400 and "event" in bad.json()["error"]["field"]
    assert bad.headers["access-control-allow-origin"] == SHOP  # the page can read why


def test_the_librarys_metrics_are_taken_and_dropped(app_server: AppServer) -> None:
    name, _ = browser_source(app_server, SHOP)
    series = {"series": [{"type": "Counter", "metric": "analytics_js.invoke", "value": 1}]}
    answer = send(app_server, "m", series)
    assert answer.status_code == 200 and answer.json() == {"success": True}
    assert answer.headers["access-control-allow-origin"] == SHOP
    assert stored(app_server, name) == []


def test_preflights_answer_allowed_origins_only(app_server: AppServer) -> None:
    browser_source(app_server, SHOP, "https://*.example.co.jp")
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization",
    }
    for origin in (SHOP, "https://m.example.co.jp"):
        answer = httpx.options(f"{app_server.url}/v1/t", headers={"Origin": origin, **asked})
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == origin
        assert "POST" in answer.headers["access-control-allow-methods"]
        assert answer.headers["access-control-allow-headers"] == "content-type, authorization"
        assert "access-control-allow-credentials" not in answer.headers
    for origin in ("https://evil.example.com", "https://example.co.jp", "null"):
        answer = httpx.options(f"{app_server.url}/v1/track", headers={"Origin": origin, **asked})
        assert answer.status_code == 403
        assert "access-control-allow-origin" not in answer.headers


def test_a_key_copied_onto_another_site_feeds_nothing(app_server: AppServer) -> None:
    name, key = browser_source(app_server, SHOP)
    other_name, _ = browser_source(app_server, "https://thief.example.com")
    body = {"event": "Order Completed", "userId": "M1", "writeKey": key}
    for _ in range(2):
        answer = send(app_server, "t", body, origin="https://thief.example.com")
        assert answer.status_code == 403
        assert answer.json()["error"]["field"] == "origin"
        assert "access-control-allow-origin" not in answer.headers
    assert stored(app_server, name) == []
    # Counted, per source and origin, for whoever runs the shop.
    _, admin = create_key(store=app_server.store, name="ops-" + name, scope="admin")
    sources = httpx.get(
        f"{app_server.url}/v1/sources", headers={"Authorization": f"Bearer {admin}"}
    ).json()
    mine = next(s for s in sources if s["name"] == name)
    assert mine["origins"] == [SHOP]
    assert mine["refused"] == {"https://thief.example.com": 2}
    assert next(s for s in sources if s["name"] == other_name)["refused"] == {}
    # Server-side clients send no Origin: the key is enough.
    assert send(app_server, "t", body, origin=None).status_code == 200
    assert stored(app_server, name) == [("track", "Order Completed")]


def test_any_origin_only_when_asked_for_and_none_by_default(app_server: AppServer) -> None:
    anywhere, key = browser_source(app_server, "*")
    answer = send(
        app_server, "p", {"name": "x", "anonymousId": "a", "writeKey": key}, "http://a.test"
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "http://a.test"
    server_only, key = browser_source(app_server)
    refused = send(app_server, "p", {"name": "x", "anonymousId": "a", "writeKey": key})
    assert refused.status_code == 403
    assert [kind for kind, _ in stored(app_server, anywhere)] == ["page"]
    assert stored(app_server, server_only) == []


@pytest.mark.parametrize(
    ("origin", "why"),
    [("shop.example.jp", "not a web origin"), ("https://shop.example.jp/cart", "no path")],
)
def test_bad_origins_are_refused_naming_the_field(
    app_server: AppServer, origin: str, why: str
) -> None:
    from tsunagu.exceptions import InvalidInput

    with pytest.raises(InvalidInput, match=why) as err:
        create_source(store=app_server.store, name="bad-" + uuid.uuid4().hex[:6], origins=[origin])
    assert err.value.field == "origin"
