"""The activation screens over a live server, read as a browser gets them: each figure on the
page is the one the activation domain answers (segments, journeys' steps, the campaign report,
coupons per store), in Japanese first and English on request; changes only by those who may
make them; and an empty store's pages say there is nothing yet."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.activation.servers import line_api
from tests.conftest import LiveServer, serve_app
from tests.web.signin import sign_in, users

from tsunagu.activation.assignments import import_assignments
from tsunagu.activation.campaigns import CampaignCreate, create_campaign
from tsunagu.activation.channels.line import LineChannel
from tsunagu.activation.coupon_tallies import coupons_by_campaign, coupons_by_store
from tsunagu.activation.coupons import issue, redeem
from tsunagu.activation.journey_runner import JourneyRunner
from tsunagu.activation.journey_steps import step_counts
from tsunagu.activation.journeys import JourneyCreate, create_journey, get_journey, set_status
from tsunagu.activation.membership import create_segment, list_segments
from tsunagu.activation.report import report
from tsunagu.activation.segments import SegmentDefinition
from tsunagu.analytics.filters import parse
from tsunagu.api import create_app
from tsunagu.config import Settings
from tsunagu.events.normalize import normalize
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store, utcnow
from tsunagu.web.i18n import jst, percent, yen

PAGES = ("/segments", "/journeys", "/campaigns", "/coupons")


class Shop(LiveServer):
    ids: dict[str, str]


def _follow_journey(store: Store, settings: Settings) -> str:
    """A journey some customers went through: two entered, one added to the cart (the
    then-branch sent), the other still waits; then paused."""
    reachable = [r[0] for r in store.query(
        "SELECT p.profile_id FROM profile_traits p WHERE json_extract(p.traits, '$.line_opt_in')"
        "::BOOLEAN AND EXISTS (SELECT 1 FROM identity_nodes n WHERE n.profile_id = p.profile_id "
        "AND n.type = 'line_user_id') AND EXISTS (SELECT 1 FROM identity_nodes n WHERE "
        "n.profile_id = p.profile_id AND n.type = 'user_id') ORDER BY p.profile_id LIMIT 3"
    )]  # fmt: skip
    member = {pid: store.scalar("SELECT min(value) FROM identity_nodes WHERE profile_id = ? AND "
                                "type = 'user_id'", [pid]) for pid in reachable}  # fmt: skip
    made = create_journey(store=store, body=parse(JourneyCreate, {
        "name": "閲覧フォロー", "control_share": 0, "channel": "line",
        "trigger": {"event": {"event": "Product Viewed", "channel": "app"}},
        "steps": [{"wait_for": {"event": "Product Added"}, "within": "1h",
                   "then": [{"send": {"message": {"text": "カートに入れた方へ"}}}],
                   "else": [{"wait": "1d"}, {"send": {"message": {"text": "見ただけの方へ"}}}]}],
    }))  # fmt: skip
    start = utcnow()

    def track(pid: str, event: str, minutes: float) -> None:
        at = (start + timedelta(minutes=minutes)).isoformat() + "Z"
        message = {"type": "track", "event": event, "userId": member[pid], "timestamp": at,
                   "properties": {"sku": "SKU-1"}, "context": {"channel": "app"}}  # fmt: skip
        store.insert_events([normalize(message, received_at=utcnow(), source="app")])

    quiet = Settings(data_dir=settings.data_dir, quiet_hours="", cap_channel_day=0,
                     cap_channel_week=0, cap_all_day=0, cap_all_week=0)  # fmt: skip
    with line_api() as api:
        runner = JourneyRunner(store, quiet, {"line": LineChannel(access_token="line-token",
                                                                  api_base=api.url)},
                               IdentityRules())  # fmt: skip
        for pid in reachable[:2]:
            track(pid, "Product Viewed", 0)
        runner.tick(now=start + timedelta(minutes=1))
        track(reachable[0], "Product Added", 10)
        runner.tick(now=start + timedelta(minutes=11))
    set_status(store=store, journey_id=made.journey_id, status="paused")
    return made.journey_id


@pytest.fixture
def shop(sample: tuple[Path, Store], sample_copy: Store, settings: Settings) -> Iterator[Shop]:
    """The sample retailer with a measured campaign, a coupon campaign issued and partly
    redeemed, a segment, a journey with runs (paused) and one without, served."""
    files, _ = sample
    store = sample_copy
    users(store, store.scalar("SELECT min(store_id) FROM stores"))
    truth = json.loads((files / "campaign_truth.json").read_text(encoding="utf-8"))
    measured = create_campaign(
        store=store,
        body=parse(
            CampaignCreate,
            {"name": truth["name"], "channel": "catalog", "control_share": truth["control_share"]},
        ),
    )
    import_assignments(store=store, campaign_id=measured.campaign_id,
                       path=files / "campaign_assignments.csv")  # fmt: skip
    today = utcnow().date()
    coupon = create_campaign(store=store, body=parse(CampaignCreate, {
        "name": "冬の500円クーポン", "channel": "line", "control_share": 0.2, "coupon": {
            "value_yen": 500, "valid_from": str(today - timedelta(days=1)),
            "valid_to": str(today + timedelta(days=30))}}))  # fmt: skip
    profiles = [r[0] for r in store.query(
        "SELECT profile_id FROM profile_traits ORDER BY profile_id LIMIT 120")]  # fmt: skip
    made = issue(store=store, campaign_id=coupon.campaign_id, profile_ids=profiles)
    tills = [r[0] for r in store.query("SELECT store_id FROM stores ORDER BY store_id LIMIT 3")]
    for n, c in enumerate(made[::5]):
        redeem(store=store, code=c.code, store_id=tills[n % 3], receipt_id=f"R{n}",
               amount_yen=3000 + n)  # fmt: skip
    create_segment(store=store, definition=parse(SegmentDefinition, {
        "name": "店舗で購入", "rule": {"event": "Order Completed", "channel": "store"}}))  # fmt: skip
    followed = _follow_journey(store, settings)
    idle = create_journey(store=store, body=parse(JourneyCreate, {
        "name": "購入後フォロー", "template": "post_purchase", "control_share": 0}))  # fmt: skip
    with serve_app(create_app(settings, store=store)) as url:
        served = Shop(url=url, write_key="", store=store, settings=settings)
        served.ids = {"measured": measured.campaign_id, "coupon": coupon.campaign_id,
                      "followed": followed, "idle": idle.journey_id}  # fmt: skip
        yield served


def _row(html: str, attribute: str, value: str) -> str:
    found = re.search(rf'<tr {attribute}="{re.escape(value)}"[^>]*>(.*?)</tr>', html, re.S)
    assert found, f"no row {attribute}={value}"
    return found.group(1)


def _cell(row: str, name: str, attribute: str = "data-field") -> str:
    found = re.search(rf'{attribute}="{name}"[^>]*>(.*?)</td>', row, re.S)
    assert found, f"no cell {name}"
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def _figure(html: str, element: str) -> dict[str, Any]:
    found = re.search(rf'id="{element}" class="plot" data-figure="([^"]+)"', html)
    assert found, f"no figure {element}"
    return dict(json.loads(unescape(found.group(1))))


def test_the_pages_are_for_people_signed_in_to_the_dashboard(shop: Shop) -> None:
    for path in PAGES:
        away = httpx.get(shop.url + path)
        assert away.status_code == 303 and away.headers["location"].startswith("/login?next=")
    with sign_in(shop.url, "staff") as client:
        for path in (*PAGES, f"/campaigns/{shop.ids['measured']}"):
            answer = client.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/staff"


def test_segments_list_what_is_kept_and_the_builder_saves_for_writers(shop: Shop) -> None:
    (segment,) = list_segments(store=shop.store)
    with sign_in(shop.url, "marketer") as client:
        ja = client.get("/segments")
        assert ja.status_code == 200 and '<html lang="ja">' in ja.text
        assert "セグメントを作る" in ja.text and "該当する顧客" in ja.text
        row = _row(ja.text, "data-segment", segment.segment_id)
        assert segment.name in row
        assert f'seg-members">{segment.members:,}<' in row and segment.members > 0
        assert jst(segment.refreshed_at) in row
        assert "行動" in row  # the kind of rule: an event
        assert 'id="save-segment"' in ja.text and 'id="read-only"' not in ja.text
        en = client.get("/segments?lang=en")
        assert "Build a segment" in en.text and "Customers who match" in en.text
    with sign_in(shop.url, "analyst") as client:
        seen = client.get("/segments")
        assert 'id="save-segment"' not in seen.text and 'id="read-only"' in seen.text
        token = re.search(r'name="csrf-token" content="([^"]+)"', seen.text)
        assert token
        rule = {"all": [{"consent": "line"}, {"event": "Order Completed", "within": "365d"}]}
        headers = {"X-CSRF-Token": token.group(1)}
        counted = client.post("/v1/segments/preview", json={"rule": rule}, headers=headers)
        assert counted.status_code == 200 and counted.json()["customers"] > 0
        kept = client.post("/v1/segments", json={"name": "x", "rule": rule}, headers=headers)
        assert kept.status_code == 403  # an analyst reads


def test_journeys_show_their_state_and_customers_per_step(shop: Shop) -> None:
    followed, idle = shop.ids["followed"], shop.ids["idle"]
    journey = get_journey(store=shop.store, journey_id=followed)
    steps = step_counts(store=shop.store, journey_id=followed)
    assert journey.runs and any(s.sent for s in steps) and any(s.waiting for s in steps)
    with sign_in(shop.url, "marketer") as client:
        html = client.get("/journeys").text
        card = html[html.index(f'id="{followed}"') : html.index(f'id="{idle}"')]
        assert 'data-status="paused"' in card and "停止中" in card and "再開" in card
        assert "イベント: Product Viewed (app)" in card
        for status, n in journey.runs.items():
            assert re.search(rf'data-run="{status}">[^<]*<strong>{n:,}</strong>', card)
        for step in steps:
            row = _row(card, "data-step", "/".join(map(str, step.path)))
            for field in ("reached", "due", "waiting", "sent", "not_sent", "ended"):
                assert _cell(row, field, "data-count") == f"{getattr(step, field):,}", field
        # Resume it from its form; pause the other.
        token = re.search(r'name="csrf" value="([^"]+)"', html)
        assert token
        done = client.post(f"/journeys/{followed}/resume", data={"csrf": token.group(1)})
        assert done.status_code == 303 and done.headers["location"] == f"/journeys#{followed}"
        assert get_journey(store=shop.store, journey_id=followed).status == "active"
        assert client.post(f"/journeys/{idle}/pause", data={}).status_code == 403  # no token
        client.post(f"/journeys/{idle}/pause", data={"csrf": token.group(1)})
        assert get_journey(store=shop.store, journey_id=idle).status == "paused"
        assert 'data-status="paused"' in client.get("/journeys").text.split(f'id="{idle}"')[1]
        missing = client.post("/journeys/jny_nope/pause", data={"csrf": token.group(1)})
        assert missing.status_code == 404 and "ジャーニーが見つかりません" in missing.text
    with sign_in(shop.url, "analyst") as client:
        html = client.get("/journeys").text
        assert "一時停止" not in html and "/resume" not in html
        token = re.search(r'name="csrf" value="([^"]+)"', html)
        assert token  # the sign-out form's
        refused = client.post(f"/journeys/{idle}/resume", data={"csrf": token.group(1)})
        assert refused.status_code == 403
        assert get_journey(store=shop.store, journey_id=idle).status == "paused"


def test_the_campaign_report_is_drawn_from_the_measurement(shop: Shop) -> None:
    campaign_id = shop.ids["measured"]
    measured = report(store=shop.store, campaign_id=campaign_id)
    with sign_in(shop.url, "analyst") as client:
        listed = client.get("/campaigns").text
        row = _row(listed, "data-campaign", campaign_id)
        assert f'data-assigned="{measured["customers"]}"' in row
        answer = client.get(f"/campaigns/{campaign_id}")
        assert answer.status_code == 200
        html = answer.text
        assert f'id="cmp-customers">{measured["customers"]:,}<' in html
        assert f'data-ok="{str(measured["srm"]["ok"]).lower()}"' in html
        for v in measured["variants"]:
            row = _row(html, "data-variant", v["variant"])
            assert _cell(row, "customers") == f"{v['customers']:,}"
            assert _cell(row, "visit_rate") == percent(v["visit_rate"])
            assert _cell(row, "conversion_rate") == percent(v["conversion_rate"])
            assert _cell(row, "revenue") == yen(v["revenue"])
            assert _cell(row, "revenue_per_customer") == yen(v["revenue_per_customer"])
        treated = measured["variants"][1]
        cuped = measured["cuped"]["variants"][1]["vs_control"]
        effects = html[html.index(f'class="data effects" data-variant="{treated["variant"]}"') :]
        revenue = _row(effects, "data-metric", "revenue_per_customer")
        d = treated["vs_control"]["revenue_per_customer"]
        assert (
            f"+{yen(d['difference'])}" in revenue
            and f"+{yen(cuped['revenue_per_customer']['difference'])}" in revenue
        )
        assert f"[+{yen(d['ci_low'])}, +{yen(d['ci_high'])}]" in revenue
        # The chart: each difference with its interval as error bars, a zero line.
        figure = _figure(html, "chart-differences")
        points = {(t["xaxis"], y): (x, lo, hi) for t in figure["data"]
                  for y, x, lo, hi in zip(t["y"], t["x"], t["error_x"]["arrayminus"],
                                          t["error_x"]["array"], strict=True)}  # fmt: skip
        x, below, above = points[("x2", "1 人あたり売上")]
        assert x == pytest.approx(d["difference"])
        assert (x - below, x + above) == pytest.approx((d["ci_low"], d["ci_high"]))
        conversion = treated["vs_control"]["conversion_rate"]
        assert points[("x", "購入率")][0] == pytest.approx(100 * conversion["difference"])
        assert points[("x", "購入率 (CUPED)")][0] == pytest.approx(
            100 * cuped["conversion_rate"]["difference"]
        )
        zero = [s for s in figure["layout"]["shapes"] if s["x0"] == 0 == s["x1"]]
        assert len(zero) == 2
        week = client.get(f"/campaigns/{campaign_id}?window=7d").text
        short = report(store=shop.store, campaign_id=campaign_id, window="7d")
        row = _row(week, "data-variant", "control")
        assert _cell(row, "conversion_rate") == percent(short["variants"][0]["conversion_rate"])
        missing = client.get("/campaigns/cmp_nope")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith(
            "text/html"
        )
        assert "キャンペーンが見つかりません" in missing.text
        bad = client.get(f"/campaigns/{campaign_id}?window=soon")
        assert bad.status_code == 400 and "window" in bad.text
        en = client.get(f"/campaigns/{campaign_id}?lang=en").text
        assert "Difference from control (95% interval)" in en and "CUPED-adjusted" in en


def test_coupons_are_counted_per_store_and_campaign(shop: Shop) -> None:
    coupon_id = shop.ids["coupon"]
    by_store = coupons_by_store(store=shop.store)
    assert sum(s.redeemed for s in by_store) > 0
    with sign_in(shop.url, "marketer") as client:
        html = client.get("/coupons").text
        for tally in by_store:
            row = _row(html, "data-store", tally.store_id or "")
            assert _cell(row, "issued") == f"{tally.issued:,}"
            assert _cell(row, "redeemed") == f"{tally.redeemed:,}"
            assert _cell(row, "discount") == yen(tally.discount_yen)
        (tally,) = coupons_by_campaign(store=shop.store)
        row = _row(html, "data-campaign", coupon_id)
        assert (_cell(row, "issued"), _cell(row, "redeemed")) == (
            f"{tally.issued:,}", f"{tally.redeemed:,}"
        )  # fmt: skip
        figure = _figure(html, "chart-coupons")
        issued, redeemed = figure["data"]
        assert issued["y"] == [s.issued for s in by_store]
        assert redeemed["y"] == [s.redeemed for s in by_store]
        # The campaign's report has the same per store.
        report_page = client.get(f"/campaigns/{coupon_id}").text
        own = coupons_by_store(store=shop.store, campaign_id=coupon_id)
        for t in own:
            row = _row(report_page, "data-store", t.store_id or "")
            assert _cell(row, "redeemed") == f"{t.redeemed:,}"
        measured = report(store=shop.store, campaign_id=coupon_id)
        assert f'id="cmp-issued">{measured["coupons"]["issued"]:,}<' in report_page
        assert f'id="cmp-redeemed">{measured["coupons"]["redeemed"]:,}<' in report_page


def test_an_empty_store_says_there_is_nothing_yet(live_server: LiveServer) -> None:
    users(live_server.store, None)
    with sign_in(live_server.url, "admin") as client:
        for path, empty in (("/segments", "まだセグメントがありません"),
                            ("/journeys", "まだジャーニーがありません"),
                            ("/campaigns", "まだキャンペーンがありません"),
                            ("/coupons", "まだクーポンが発行されていません")):  # fmt: skip
            answer = client.get(path)
            assert answer.status_code == 200 and empty in answer.text, path
        assert "No segments yet" in client.get("/segments?lang=en").text


def test_a_campaign_no_one_is_in_yet(live_server: LiveServer) -> None:
    users(live_server.store, None)
    made = create_campaign(store=live_server.store, body=parse(CampaignCreate, {"name": "準備中"}))
    with sign_in(live_server.url, "marketer") as client:
        html = client.get(f"/campaigns/{made.campaign_id}").text
        assert "準備中" in html and "まだ対象顧客がいません" in html
        assert "chart-differences" not in html
