"""The activation screens in a real browser: a marketer builds a segment from two rules, its
live count is the preview's, and saving it lists it; an analyst counts but cannot save; a
campaign's report draws its differences with their intervals; journeys and coupons render."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import LiveServer
from tests.web.conftest import Screen

from tsunagu.activation.assignments import import_assignments
from tsunagu.activation.campaigns import CampaignCreate, create_campaign
from tsunagu.activation.membership import list_segments
from tsunagu.activation.segments import SegmentDefinition, preview
from tsunagu.analytics.filters import parse
from tsunagu.store import Store


def _counted(screen: Screen) -> tuple[int, dict[str, object]]:
    """The live count once it answers for the rules as they are now, and those rules."""
    live = screen.page.wait_for_selector('#live[data-state="done"]')
    assert live is not None
    return int(live.get_attribute("data-count") or -1), json.loads(
        live.get_attribute("data-rule") or "null"
    )


def test_a_marketer_builds_a_segment_with_a_live_count_and_saves_it(
    screen: Screen, shop: LiveServer
) -> None:
    page = screen.page
    screen.sign_in("marketer")
    page.goto(f"{screen.url}/segments")
    assert page.locator("#no-segments").count() == 1
    first = page.locator("#rules li.rule").nth(0)
    first.locator('[name="channel"]').select_option("store")
    first.locator('[name="days"]').fill("365")
    page.click("#add-rule")
    second = page.locator("#rules li.rule").nth(1)
    second.locator(".rule-kind").select_option("trait")
    second.locator('[name="trait"]').select_option("spend_store")
    second.locator('[name="op"][data-type="number"]').select_option("gte")
    second.locator('[name="value"]').fill("20000")
    count, rule = _counted(screen)
    expected = {"all": [
        {"event": "Order Completed", "channel": "store", "within": "365d", "at_least": 1},
        {"trait": "spend_store", "gte": 20000},
    ]}  # fmt: skip
    assert rule == expected
    definition = parse(SegmentDefinition, {"name": "店舗の常連", "rule": rule})
    counted = preview(store=shop.store, rule=definition.rule)
    assert (
        count == counted.customers
        and 0
        < count
        < preview(
            store=shop.store,
            rule=parse(SegmentDefinition, {"name": "x", "rule": expected["all"][0]}).rule,
        ).customers
    )  # the second rule narrows the first
    assert page.inner_text("#live-count") == f"{count:,}"
    assert page.locator("#live-sample li").count() == min(5, count)
    # Any of the two holds more customers than both.
    page.select_option("#seg-combine", "any")
    wider, _ = _counted(screen)
    assert wider > count
    page.select_option("#seg-combine", "all")
    assert _counted(screen)[0] == count
    assert page.is_disabled("#save-segment")  # no name yet
    page.fill("#seg-name", "店舗の常連")
    page.fill("#seg-description", "1 年以内に店舗で購入、店舗で 2 万円以上")
    screen.shot("segments")
    with page.expect_navigation():
        page.click("#save-segment")
    assert "saved=" in page.url
    (kept,) = list_segments(store=shop.store)
    assert kept.name == "店舗の常連" and kept.members == count
    row = page.locator(f'tr[data-segment="{kept.segment_id}"]')
    assert row.locator(".seg-members").inner_text() == f"{count:,}"
    assert page.locator("#seg-saved").count() == 1
    # The same name again is refused before it is sent.
    page.fill("#seg-name", "店舗の常連")
    page.wait_for_selector("#save-error:not([hidden])")
    assert page.is_disabled("#save-segment")


def test_an_analyst_counts_but_does_not_save(screen: Screen) -> None:
    page = screen.page
    screen.sign_in("analyst")
    page.goto(f"{screen.url}/segments?lang=en")
    count, rule = _counted(screen)
    assert count > 0 and rule == {"all": [{"event": "Order Completed", "within": "90d",
                                          "at_least": 1}]}  # fmt: skip
    assert page.locator("#save-segment").count() == 0
    assert "saving is for marketers" in page.inner_text("#read-only")
    page.locator("#rules li.rule").nth(0).locator(".rule-kind").select_option("consent")
    page.locator('[name="consent"]').select_option("line")
    consented, rule = _counted(screen)
    assert rule == {"all": [{"consent": "line"}]} and consented > 0


def test_a_campaign_report_draws_its_differences(
    screen: Screen, shop: LiveServer, sample: tuple[Path, Store]
) -> None:
    files, _ = sample
    truth = json.loads((files / "campaign_truth.json").read_text(encoding="utf-8"))
    made = create_campaign(store=shop.store, body=parse(CampaignCreate, {
        "name": truth["name"], "channel": "catalog", "control_share": truth["control_share"]}))  # fmt: skip
    import_assignments(store=shop.store, campaign_id=made.campaign_id,
                       path=files / "campaign_assignments.csv")  # fmt: skip
    page = screen.page
    screen.sign_in("marketer")
    page.goto(f"{screen.url}/campaigns")
    page.click(f'tr[data-campaign="{made.campaign_id}"] a')
    page.wait_for_selector("#chart-differences[data-drawn]")
    assert page.locator("#chart-differences .errorbar").count() >= 5  # a bar per difference
    assert (
        page.locator(
            "#chart-differences .zerolinelayer, #chart-differences .shapelayer path"
        ).count()
        > 0
    )
    assert "対照群との差" in page.inner_text("main")
    assert page.locator("#srm").get_attribute("data-ok") == "true"
    screen.shot("campaign")
    page.goto(f"{screen.url}/journeys")
    assert page.locator("#no-journeys").count() == 1
    page.goto(f"{screen.url}/coupons")
    assert page.locator("#no-coupons").count() == 1
