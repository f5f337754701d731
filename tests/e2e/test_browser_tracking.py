"""Browser tracking end to end: a shop page on one loopback port loads Segment's own browser
library (`@segment/analytics-next`, from the npm registry, unchanged) and sends to a tsunagu
server on another port, in Debian's Chromium through Playwright."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.browser import CHROMIUM_ARGS, Watched, analytics_next, chromium, shop_server
from tsunagu.events.sources import create_source
from tsunagu.identity.graph import build_graph
from tsunagu.identity.profiles import lookup
from tsunagu.identity.rules import IdentityRules

if TYPE_CHECKING:
    from tests.e2e.conftest import AppServer

PAGE = """<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>ショップ</title></head><body>
<h1>つなぐ靴店</h1>
<script src="/analytics-next/bundles/index.js"></script>
<script>
const settings = JSON.parse('__SETTINGS__');
window.sent = (async () => {
  const segment = {apiKey: settings.key, apiHost: settings.api, protocol: "http"};
  if (location.search.includes("batch")) {
    segment.deliveryStrategy = {strategy: "batching", config: {size: 2, timeout: 200}};
  }
  const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
    {
      writeKey: settings.key,
      cdnURL: location.origin,
      cdnSettings: {
        integrations: {"Segment.io": segment},
        metrics: {host: settings.api, protocol: "http", sampleRate: 1, flushTimer: 100},
      },
    },
    {integrations: {"Segment.io": segment}},
  );
  if (location.search.includes("batch")) {
    await Promise.all([
      analytics.track("お気に入り登録", {sku: "SHOE-2"}),
      analytics.track("Cart Viewed", {点数: 2}),
    ]);
  } else {
    await analytics.page("商品詳細", {title: "ランニングシューズ"});
    await analytics.track("Product Viewed", {sku: "SHOE-1", カテゴリ: "靴", 価格: 9800});
    await analytics.identify("M000123", {name: "山田 花子", email: "hanako@example.jp"});
    await analytics.track("Product Added", {sku: "SHOE-1", 数量: 1});
  }
  return analytics.user().anonymousId();
})();
</script></body></html>"""


def rows(live: AppServer, source: str) -> list[dict[str, Any]]:
    cur = live.store.cursor()
    try:
        result = cur.execute(
            "SELECT type, message_id, user_id, anonymous_id, raw FROM events WHERE source = ?",
            [source],
        )
        names = [d[0] for d in result.description]
        return [dict(zip(names, r, strict=True)) for r in result.fetchall()]
    finally:
        cur.close()


def wait_for(live: AppServer, source: str, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        got = rows(live, source)
        if len(got) >= n:
            time.sleep(0.5)  # and nothing more arrives
            return rows(live, source)
        time.sleep(0.1)
    return rows(live, source)


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    executable = chromium()
    bundles = analytics_next()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            yield launched, bundles
        finally:
            launched.close()


def test_segments_browser_library_feeds_the_store_from_an_allowed_origin(
    app_server: AppServer, browser: Any
) -> None:
    launched, bundles = browser
    name = "shop-" + uuid.uuid4().hex[:8]
    pages: dict[str, str] = {}
    with shop_server(pages, bundles) as port:
        shop = f"http://127.0.0.1:{port}"
        _, key = create_source(store=app_server.store, name=name, origins=[shop])
        app_server.app.state.source_keys.forget()
        api = app_server.url.removeprefix("http://") + "/v1"
        pages["/shop.html"] = PAGE.replace("__SETTINGS__", json.dumps({"key": key, "api": api}))
        context = launched.new_context(locale="ja-JP")
        watched = Watched(context)
        watched.page.goto(f"{shop}/shop.html")
        anonymous_id = watched.page.evaluate("window.sent")
        got = wait_for(app_server, name, 4)
        # Batched, through /v1/b.
        watched.page.goto(f"{shop}/shop.html?batch")
        assert watched.page.evaluate("window.sent") == anonymous_id  # the cookie kept it
        got = wait_for(app_server, name, 6)
        watched.page.wait_for_timeout(500)  # the library's metrics go out every 100 ms
        context.close()
        assert watched.errors == []
        assert watched.outside == []
        sent = {url.rsplit("/", 1)[1]: status for url, status in watched.answers if "/v1/" in url}
        assert sent == {"p": 200, "t": 200, "i": 200, "b": 200, "m": 200}

        # Every call stored once, the Japanese properties intact.
        assert len({r["message_id"] for r in got}) == len(got) == 6
        kinds = sorted(r["type"] for r in got)
        assert kinds == ["identify", "page", "track", "track", "track", "track"]
        viewed = next(json.loads(r["raw"]) for r in got if '"Product Viewed"' in r["raw"])
        assert viewed["properties"]["カテゴリ"] == "靴"
        assert viewed["properties"]["価格"] == 9800
        assert all(r["anonymous_id"] == anonymous_id for r in got)
        assert {r["user_id"] for r in got if r["type"] == "identify"} == {"M000123"}

        # The page on another origin (localhost is not 127.0.0.1) is refused.
        context = launched.new_context()
        other = Watched(context)
        other.page.goto(f"http://localhost:{port}/shop.html")
        other.page.evaluate("window.sent")
        time.sleep(1.0)
        context.close()
        assert len(rows(app_server, name)) == 6
        refused = app_server.app.state.refused_origins
        assert refused[(name, f"http://localhost:{port}")] >= 1
        assert other.outside == []

    # Anonymous to known: what the browser did before the login is the member's.
    build_graph(store=app_server.store, rules=IdentityRules())
    rules = IdentityRules()
    member = lookup(store=app_server.store, rules=rules, kind="user_id", value="M000123")
    device = lookup(store=app_server.store, rules=rules, kind="anonymous_id", value=anonymous_id)
    assert member == device
