"""The screens as people use them, in a real browser: each role signs in and lands where it
should, Home draws its charts, the language switches and stays switched, the clerk finds a
customer and redeems their coupon, and the API's docs render with nothing from the internet."""

from __future__ import annotations

from datetime import date, timedelta

from tests.conftest import LiveServer
from tests.web.conftest import Screen

from tsunagu.activation.campaigns import CampaignCreate, create_campaign
from tsunagu.activation.coupons import issue, shown
from tsunagu.analytics.filters import parse


def test_a_marketer_signs_in_and_home_draws_its_charts(screen: Screen) -> None:
    page = screen.page
    page.goto(f"{screen.url}/")
    assert "/login" in page.url  # not signed in yet
    screen.sign_in("marketer")
    assert page.url.rstrip("/") == screen.url
    page.wait_for_selector("#chart-customers[data-drawn]")
    page.wait_for_selector("#chart-revenue[data-drawn]")
    assert page.locator("#chart-customers .bars .point").count() > 0  # bars, not an empty frame
    assert page.locator("#kpis .kpi").count() == 7
    revenue = page.locator('[data-kpi="kpi_revenue_store"] .value').inner_text()
    assert revenue.startswith("¥") and "," in revenue
    assert page.get_attribute("html", "lang") == "ja"
    assert "アクティブ顧客" in page.inner_text("#kpis")
    screen.shot("home")


def test_the_language_switches_and_is_remembered(screen: Screen) -> None:
    page = screen.page
    screen.sign_in("analyst")
    page.click("#lang-switch")
    page.wait_for_selector("html[lang=en]")
    assert "Active customers" in page.inner_text("#kpis")
    assert page.inner_text("#logout") == "Sign out"
    page.goto(f"{screen.url}/")  # no ?lang: the cookie keeps it
    assert page.get_attribute("html", "lang") == "en"
    page.click("#lang-switch")
    page.wait_for_selector("html[lang=ja]")
    assert page.inner_text("#logout") == "ログアウト"


def test_store_staff_are_sent_from_the_dashboard_to_their_screen(screen: Screen) -> None:
    page = screen.page
    screen.sign_in("staff")
    assert page.url.endswith("/staff")
    page.goto(f"{screen.url}/")
    assert page.url.endswith("/staff")  # the dashboard is not theirs
    answer = page.goto(f"{screen.url}/staff?store_id=ZZZ")
    assert answer is not None and answer.status == 403
    screen.refused(403)


def test_the_clerk_finds_the_customer_and_redeems_their_coupon(
    tablet: Screen, shop: LiveServer
) -> None:
    store = shop.store
    here = store.scalar("SELECT min(store_id) FROM stores")
    profile_id, card = store.query(
        "SELECT profile_id, min(value) FROM identity_nodes WHERE type = 'member_card' "
        "GROUP BY profile_id ORDER BY profile_id LIMIT 1"
    )[0]
    today = date.today()
    campaign = create_campaign(store=store, body=parse(CampaignCreate, {
        "name": "来店クーポン", "control_share": 0, "coupon": {
            "value_yen": 500, "min_purchase_yen": 3000, "valid_from": str(today - timedelta(1)),
            "valid_to": str(today + timedelta(30)), "stores": [here]}}))  # fmt: skip
    (coupon,) = issue(store=store, campaign_id=campaign.campaign_id, profile_ids=[profile_id])
    page = tablet.page
    tablet.sign_in("staff")
    page.fill("#q", card)
    page.click("#lookup button[type=submit]")
    page.wait_for_selector("#customer")
    item = page.locator(f'#coupons li[data-code="{coupon.code}"]')
    assert shown(coupon.code) in item.inner_text() and "¥500" in item.inner_text()
    box = item.locator("button").bounding_box()
    assert box is not None and box["height"] >= 44  # a finger's target
    tablet.shot("staff")
    item.locator('input[name="receipt_id"]').fill("R-0001")
    item.locator('input[name="amount_yen"]').fill("2000")  # below the minimum
    item.locator("button").click()
    page.wait_for_selector("#staff-error")
    assert "3,000" in page.inner_text("#staff-error")
    tablet.refused(422)
    item = page.locator(f'#coupons li[data-code="{coupon.code}"]')
    item.locator('input[name="receipt_id"]').fill("R-0001")
    item.locator('input[name="amount_yen"]').fill("5000")
    item.locator("button").click()
    page.wait_for_selector("#done")
    assert page.inner_text("#done") == "クーポンを利用しました"
    assert page.locator(f'#coupons li[data-code="{coupon.code}"]').count() == 0  # used now
    assert store.query(
        "SELECT store_id, receipt_id, discount_yen FROM coupons WHERE code = ?", [coupon.code]
    ) == [(here, "R-0001", 500)]


def test_the_api_docs_render_offline(screen: Screen) -> None:
    page = screen.page
    page.goto(f"{screen.url}/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "tsunagu" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag")  # the operations, from /openapi.json
