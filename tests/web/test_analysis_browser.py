"""In the browser: a marketer builds a cross-channel funnel by pointing and clicking and sees
its chart, the link holding the query; and opens a customer's timeline from the search."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.conftest import LiveServer
from tests.web.conftest import Screen

from tsunagu.analytics.facts import fresh_engine
from tsunagu.analytics.filters import parse
from tsunagu.analytics.funnels import FunnelQuery, run_funnel
from tsunagu.identity.profiles import timeline


def test_a_marketer_builds_a_funnel_and_sees_its_chart(screen: Screen, shop: LiveServer) -> None:
    page = screen.page
    screen.sign_in("marketer")
    page.click('#side a[data-nav="funnel"]')
    page.wait_for_selector("#chart-funnel[data-drawn]")  # the default funnel, drawn
    steps = page.locator("#steps > li")
    assert steps.count() == 3
    steps.nth(0).locator('select[name="c"]').select_option("app")
    steps.nth(1).locator('select[name="e"]').select_option("Store Visited")
    steps.nth(2).locator('select[name="c"]').select_option("store")
    page.click("#add-step")
    assert steps.count() == 4
    steps.nth(3).locator(".remove").click()  # changed my mind
    assert steps.count() == 3
    page.fill('input[name="window"]', "14d")
    page.fill('input[name="breakdown"]', "channel")
    page.click("#run")
    page.wait_for_load_state()
    page.wait_for_selector("#chart-funnel[data-drawn]")
    asked = parse_qs(urlsplit(page.url).query, keep_blank_values=True)
    assert asked["e"] == ["Product Viewed", "Store Visited", "Order Completed"]
    assert asked["c"] == ["app", "", "store"] and asked["window"] == ["14d"]
    query = parse(FunnelQuery, {"steps": [
        {"event": "Product Viewed", "channel": "app"}, {"event": "Store Visited"},
        {"event": "Order Completed", "channel": "store"}], "window": "14d",
        "breakdown": "channel"})  # fmt: skip
    engine = fresh_engine(store=shop.store, data_dir=shop.settings.data_dir, timezone="Asia/Tokyo")
    result = run_funnel(engine=engine, query=query, timezone="Asia/Tokyo")
    shown = page.locator("#funnel-steps td.customers").all_inner_texts()
    assert shown == [f"{s.customers:,}" for s in result.steps]
    assert page.locator("#chart-funnel .bars .point").count() >= 3  # bars, not an empty frame
    page.wait_for_selector("#chart-breakdown[data-drawn]")
    screen.shot("funnel")
    # The link is the funnel: opened afresh, it answers the same.
    page.goto(page.url)
    page.wait_for_selector("#chart-funnel[data-drawn]")
    assert page.locator("#funnel-steps td.customers").all_inner_texts() == shown


def test_an_analyst_opens_a_customers_timeline(screen: Screen, shop: LiveServer) -> None:
    profile_id, email = shop.store.query(
        "SELECT n.profile_id, min(n.value) FROM identity_nodes n JOIN analytics_profiles ap "
        "USING (profile_id) JOIN analytics_events e USING (pid) WHERE n.type = 'email' "
        "GROUP BY n.profile_id ORDER BY count(DISTINCT e.channel) DESC, count(*) DESC, 1 LIMIT 1"
    )[0]  # a customer of many channels
    page = screen.page
    screen.sign_in("analyst")
    page.click('#side a[data-nav="profiles"]')
    page.fill("#q", email)
    page.press("#q", "Enter")
    page.wait_for_selector("#timeline")
    assert page.url.endswith(f"/profiles/{profile_id}")
    items = timeline(store=shop.store, profile_id=profile_id, limit=50).items
    rows = page.locator("#timeline tr[data-message-id]")
    assert rows.count() == len(items) > 0
    assert rows.first.get_attribute("data-message-id") == items[0]["message_id"]
    assert page.locator("#erase-form").count() == 0  # analysts do not erase
    screen.shot("profile", full_page=False)
    page.select_option('#timeline-filter select[name="channel"]', "web")
    page.wait_for_url("**channel=web")
    channels = {r.get_attribute("data-channel") for r in rows.all()}
    assert channels <= {"web"}
