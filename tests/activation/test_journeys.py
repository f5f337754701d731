"""Journeys on the sample retailer, each template end to end: events arrive, ticks move
customers along, LINE's API on loopback gets what should be sent, the goal (an order online or
in a store) ends a journey before the send."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.activation.servers import Recorder, line_api
from tsunagu.activation.channels import Channel
from tsunagu.activation.channels.direct_mail import DirectMail
from tsunagu.activation.channels.line import LineChannel
from tsunagu.activation.journey_runner import JourneyRunner, next_path, step_at
from tsunagu.activation.journeys import JourneyCreate, create_journey, get_journey, set_status
from tsunagu.activation.membership import create_segment
from tsunagu.activation.segments import SegmentDefinition
from tsunagu.analytics.filters import parse
from tsunagu.config import Settings
from tsunagu.events.normalize import normalize
from tsunagu.exceptions import InvalidInput
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store, utcnow


class Shop:
    """The sample retailer with LINE on loopback and a runner to tick."""

    def __init__(self, store: Store, settings: Settings, api: Recorder) -> None:
        self.store, self.settings, self.api = store, settings, api
        self.channels: dict[str, Channel] = {
            "line": LineChannel(access_token="line-token", api_base=api.url),
            "dm": DirectMail(directory=settings.data_dir / "direct-mail"),
        }
        self.runner = JourneyRunner(store, settings, self.channels, IdentityRules())
        self.start = utcnow()

    def journey(self, body: dict[str, Any]) -> str:
        made = create_journey(store=self.store, body=parse(JourneyCreate, body))
        return made.journey_id

    def track(self, user: str, event: str, *, channel: str = "web", minutes: float = 0,
              **props: Any) -> None:  # fmt: skip
        at = self.start + timedelta(minutes=minutes)
        message = {"type": "track", "event": event, "userId": user, "properties": props,
                   "context": {"channel": channel}, "timestamp": at.isoformat() + "Z"}  # fmt: skip
        self.store.insert_events([normalize(message, received_at=utcnow(), source="web")])

    def tick(self, minutes: float) -> Any:
        return self.runner.tick(now=self.start + timedelta(minutes=minutes))

    def member(self, pid: str) -> str:
        return str(self.store.scalar(
            "SELECT value FROM identity_nodes WHERE profile_id = ? AND type = 'user_id'", [pid]
        ))  # fmt: skip

    def buy_at_till(self, pid: str, *, minutes: float) -> None:
        """`pid` buys at the till: the POS sends the member's card, not their user id."""
        card = self.store.scalar(
            "SELECT value FROM identity_nodes WHERE profile_id = ? AND type = 'member_card'", [pid]
        )
        at = (self.start + timedelta(minutes=minutes)).isoformat() + "Z"
        self.store.insert_events([normalize(
            {"type": "track", "event": "Order Completed", "anonymousId": "pos-1",
             "context": {"channel": "store", "traits": {"member_card": card}},
             "properties": {"order_id": "R1", "revenue": 5000, "store_id": "S001"}, "timestamp": at},
            received_at=utcnow(), source="pos")])  # fmt: skip

    def line_id(self, pid: str) -> str:
        return str(self.store.scalar(
            "SELECT value FROM identity_nodes WHERE profile_id = ? AND type = 'line_user_id'", [pid]
        ))  # fmt: skip


CART_FOLLOW_UP = {
    "name": "閲覧フォロー", "control_share": 0, "channel": "line", "reentry": "once",
    "trigger": {"event": {"event": "Product Viewed", "channel": "app"}},
    "steps": [{"wait_for": {"event": "Product Added"}, "within": "1h",
               "then": [{"send": {"message": {"text": "カートに入れた方へ"}}}],
               "else": [{"send": {"message": {"text": "見ただけの方へ"}}}]}],
}  # fmt: skip
"""Views in the app wait an hour for a cart: one message if it came, another if not."""


@pytest.fixture
def shop(sample_copy: Store, tmp_path: Path) -> Iterator[Shop]:
    settings = Settings(data_dir=tmp_path / "data", quiet_hours="", cap_channel_day=0,
                        cap_channel_week=0, cap_all_day=0, cap_all_week=0)  # fmt: skip
    with line_api() as api:
        yield Shop(sample_copy, settings, api)


def _reachable(store: Store, n: int, *, extra: str = "") -> list[str]:
    """Members who may be messaged on LINE (opted in, a LINE id)."""
    rows = store.query(
        "SELECT p.profile_id FROM profile_traits p WHERE "
        "json_extract(p.traits, '$.line_opt_in')::BOOLEAN AND json_extract_string(p.traits, "
        "'$.member_id') IS NOT NULL AND EXISTS (SELECT 1 FROM identity_nodes n WHERE "
        "n.profile_id = p.profile_id AND n.type = 'line_user_id') "
        + extra
        + " ORDER BY p.profile_id LIMIT ?",
        [n],
    )
    return [r[0] for r in rows]


def test_cart_abandonment_exits_when_the_customer_buys_in_a_store(shop: Shop) -> None:
    a, b, c = _reachable(shop.store, 3)
    jid = shop.journey({"name": "カゴ落ち", "template": "cart_abandonment", "control_share": 0,
                        "params": {"wait": "1h", "message": {"text": "カートをお忘れではありませんか"}}})  # fmt: skip
    for pid in (a, b, c):
        shop.track(shop.member(pid), "Product Added", sku="SKU-1", minutes=0)
    assert shop.tick(1).entered == 3
    shop.buy_at_till(c, minutes=30)  # C buys at the till half an hour later
    assert shop.tick(30).entered == 0 and shop.api.received == []  # still waiting
    done = shop.tick(61)
    assert done.sent == 2 and done.converted == 1
    assert sorted(shop.api.recipients()) == sorted([shop.line_id(a), shop.line_id(b)])
    assert {text for _, text in shop.api.messages()} == {"カートをお忘れではありませんか"}
    journey = get_journey(store=shop.store, journey_id=jid)
    assert journey.runs == {"done": 2, "converted": 1}
    # Ticks after the end do nothing more; the campaign behind the journey has all three.
    shop.tick(200)
    assert len(shop.api.recipients()) == 2
    assert (
        shop.store.scalar(
            "SELECT count(*) FROM campaign_assignments WHERE campaign_id = ?", [journey.campaign_id]
        )
        == 3
    )


def test_favourite_in_stock_names_the_item_and_the_store(shop: Shop) -> None:
    store = shop.store
    rows = store.query(
        "SELECT p.profile_id, i.sku, pr.name, s.name FROM profile_traits p "
        "JOIN inventory i ON i.store_id = json_extract_string(p.traits, '$.home_store_id') "
        "JOIN products pr ON pr.sku = i.sku JOIN stores s ON s.store_id = i.store_id "
        "WHERE i.quantity > 3 AND p.profile_id IN (SELECT unnest(?::VARCHAR[])) "
        "ORDER BY p.profile_id, i.sku LIMIT 1",
        [_reachable(store, 200)],
    )
    pid, sku, product, shop_name = rows[0]
    shop.journey({"name": "お気に入り入荷", "template": "favourite_in_stock", "control_share": 0,
                  "params": {"wait": "10m", "radius_km": 30}})  # fmt: skip
    shop.track(shop.member(pid), "Product Added to Wishlist", sku=sku, minutes=0)
    shop.tick(1)
    assert shop.tick(12).sent == 1
    text = shop.api.received[0]["messages"][0]["text"]
    assert product in text and shop_name in text, text


def test_a_store_visit_brings_a_coupon(shop: Shop) -> None:
    (pid,) = _reachable(shop.store, 1)
    shop.journey({"name": "来店クーポン", "template": "store_visit_coupon", "control_share": 0,
                  "params": {"channel": "line"},
                  "coupon": {"value_yen": 500, "valid_from": "2026-01-01", "valid_to": "2030-12-31"}})  # fmt: skip
    shop.track(shop.member(pid), "Store Visited", channel="store", store_id="S001")
    shop.track(shop.member(pid), "Store Visited", channel="store", store_id="S001", minutes=5)
    shop.tick(1)
    shop.tick(10)
    code = shop.store.scalar("SELECT code FROM coupons WHERE profile_id = ?", [pid])
    assert code is not None
    assert len(shop.api.received) == 1  # once: the template enters a customer once
    assert code[:4] in shop.api.received[0]["messages"][0]["text"]


def test_a_lapsed_member_who_signs_in_gets_a_catalogue(shop: Shop, tmp_path: Path) -> None:
    store = shop.store
    lapsed = store.query(
        "SELECT p.profile_id FROM profile_traits p WHERE json_extract(p.traits, '$.dm_opt_in')::BOOLEAN "
        "AND json_extract_string(p.traits, '$.member_id') IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM analytics_events e JOIN analytics_profiles ap USING (pid) "
        "WHERE ap.profile_id = p.profile_id AND e.event = 'Order Completed') ORDER BY 1 LIMIT 1"
    )[0][0]
    buyer = store.query(
        "SELECT ap.profile_id FROM analytics_events e JOIN analytics_profiles ap USING (pid) "
        "JOIN profile_traits p ON p.profile_id = ap.profile_id "
        "WHERE e.event = 'Order Completed' AND json_extract(p.traits, '$.dm_opt_in')::BOOLEAN "
        "AND e.ts >= (SELECT max(ts) FROM analytics_events) - INTERVAL 30 DAY ORDER BY 1 LIMIT 1"
    )[0][0]
    jid = shop.journey({"name": "休眠カタログ", "template": "lapsed_catalogue", "control_share": 0,
                        "params": {"lapsed": "3650d"}})  # fmt: skip
    for pid in (lapsed, buyer):
        store.insert_events([normalize(
            {"type": "identify", "userId": shop.member(pid), "timestamp": shop.start.isoformat() + "Z"},
            received_at=utcnow(), source="web")])  # fmt: skip
    shop.tick(1)
    shop.tick(2)
    campaign = get_journey(store=store, journey_id=jid).campaign_id
    rows = list(csv.DictReader(
        (shop.settings.data_dir / "direct-mail" / f"{campaign}.csv").read_text("utf-8-sig").splitlines()
    ))  # fmt: skip
    assert (
        len(rows) == 1 and rows[0]["宛名"].endswith(" 様") and rows[0]["郵便番号"].startswith("〒")
    )
    assert get_journey(store=store, journey_id=jid).runs == {"done": 2}


def test_post_purchase_follows_up_a_week_later(shop: Shop) -> None:
    (pid,) = _reachable(shop.store, 1)
    shop.journey({"name": "購入後フォロー", "template": "post_purchase", "control_share": 0})
    shop.track(shop.member(pid), "Order Completed", channel="app", order_id="O1", revenue=3000)
    shop.tick(1)
    assert shop.tick(60 * 24 * 6).sent == 0
    assert shop.tick(60 * 24 * 7 + 5).sent == 1


def test_waiting_for_an_event_branches_on_it(shop: Shop) -> None:
    a, b = _reachable(shop.store, 2)
    shop.journey(CART_FOLLOW_UP)
    for pid in (a, b):
        shop.track(shop.member(pid), "Product Viewed", channel="app", sku="SKU-2")
    shop.tick(1)
    shop.track(shop.member(a), "Product Added", channel="app", sku="SKU-2", minutes=10)
    shop.tick(11)
    shop.tick(30)
    shop.tick(62)
    texts = dict(shop.api.messages())
    assert texts == {shop.line_id(a): "カートに入れた方へ", shop.line_id(b): "見ただけの方へ"}


def test_a_paused_journey_takes_nothing_in(shop: Shop) -> None:
    a, b = _reachable(shop.store, 2)
    jid = shop.journey({"name": "停止テスト", "template": "post_purchase", "control_share": 0,
                        "params": {"wait": "1m"}})  # fmt: skip
    set_status(store=shop.store, journey_id=jid, status="paused")
    shop.track(shop.member(a), "Order Completed", channel="web", order_id="O2")
    shop.tick(1)
    resumed = set_status(store=shop.store, journey_id=jid, status="active")
    assert resumed.runs == {}  # what happened while paused does not flood in
    shop.track(shop.member(b), "Order Completed", channel="web", order_id="O3")
    shop.tick(3)
    shop.tick(6)
    assert shop.api.recipients() == [shop.line_id(b)]


def test_journeys_are_validated_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as why:
        parse(JourneyCreate, {"name": "x"})
    assert "trigger" in why.value.message
    with pytest.raises(InvalidInput) as why:
        parse(JourneyCreate, {"name": "x", "trigger": {"event": {"event": "A"}},
                              "steps": [{"wait": "soon"}]})  # fmt: skip
    assert "steps" in (why.value.field or "")
    with pytest.raises(InvalidInput) as why:
        parse(JourneyCreate, {"name": "x", "trigger": {}, "steps": [{"exit": {}}]})
    assert "trigger" in why.value.message


def test_paths_walk_into_branches_and_out() -> None:
    definition = parse(JourneyCreate, {
        "name": "x", "trigger": {"event": {"event": "A"}},
        "steps": [{"wait": "1m"},
                  {"wait_for": {"event": "B"}, "within": "1h",
                   "then": [{"wait": "2m"}, {"exit": {}}], "else": []},
                  {"wait": "3m"}],
    })  # fmt: skip
    steps = definition.steps or []
    assert next_path(steps, [0]) == [1]
    assert next_path(steps, [1, "then", 0]) == [1, "then", 1]
    assert next_path(steps, [1, "then", 1]) == [2]
    assert step_at(steps, next_path(steps, [2])) is None


def _segment_of(shop: Shop, name: str, pids: list[str]) -> None:
    members = [shop.member(p) for p in pids]
    definition = parse(
        SegmentDefinition, {"name": name, "rule": {"trait": "member_id", "in": members}}
    )
    create_segment(store=shop.store, definition=definition)


def test_entering_a_segment_starts_the_journey(shop: Shop) -> None:
    a, b = _reachable(shop.store, 2)
    shop.journey({"name": "入会", "control_share": 0, "channel": "line",
                  "trigger": {"segment_entered": "常連"},
                  "steps": [{"send": {"message": {"text": "常連様へ"}}}]})  # fmt: skip
    _segment_of(shop, "常連", [a, b])  # filled after the journey began: both enter it
    done = shop.tick(1)
    assert done.entered == 2 and done.sent == 2
    assert sorted(shop.api.recipients()) == sorted(map(shop.line_id, (a, b)))
    assert shop.tick(2).entered == 0  # entered once, taken in once


def test_a_daily_schedule_and_a_birthday_start_journeys_once_a_day(shop: Shop) -> None:
    a, b, c = _reachable(shop.store, 3)
    _segment_of(shop, "朝の便", [a, b])
    shop.journey({"name": "毎朝", "control_share": 0, "channel": "line",
                  "trigger": {"schedule": {"segment": "朝の便", "at": "10:00"}},
                  "steps": [{"send": {"message": {"text": "おはようございます"}}}]})  # fmt: skip
    # c's birthday is in three days (in Tokyo); the journey writes three days ahead.
    tomorrow = (shop.start + timedelta(days=1)).date()
    birthday = tomorrow + timedelta(days=3)
    with shop.store.transaction() as cur:
        cur.execute(
            "UPDATE profile_traits SET traits = json_merge_patch(traits, ?) WHERE profile_id = ?",
            [f'{{"birth_date": "1990-{birthday:%m-%d}"}}', c],
        )
        cur.execute(
            "UPDATE profile_traits SET traits = json_merge_patch(traits, '{\"birth_date\": null}') "
            "WHERE profile_id <> ? AND strftime(TRY_CAST(json_extract_string(traits, "
            "'$.birth_date') AS DATE), '%m-%d') = ?",
            [c, f"{birthday:%m-%d}"],
        )
    shop.journey({"name": "誕生日", "control_share": 0, "channel": "line",
                  "trigger": {"date_trait": {"trait": "birth_date", "days_before": 3, "at": "09:00"}},
                  "steps": [{"send": {"message": {"text": "お誕生日おめでとうございます"}}}]})  # fmt: skip
    # Tomorrow 00:00 in Tokyo, in UTC.
    tokyo = datetime.combine(tomorrow, time(0, 0)) - timedelta(hours=9)

    def at(hours: float) -> Any:
        return shop.runner.tick(now=tokyo + timedelta(hours=hours))

    assert at(8.5).entered == 0  # before either's hour
    assert at(9.5).entered == 1  # the birthday at 09:00
    assert at(10.5).entered == 2  # the schedule at 10:00
    assert at(11).entered == 0  # once a day each
    texts = sorted(shop.api.messages())
    assert texts == sorted([(shop.line_id(c), "お誕生日おめでとうございます"),
                            (shop.line_id(a), "おはようございます"),
                            (shop.line_id(b), "おはようございます")])  # fmt: skip
    at(24 + 10.5)  # the next day: the schedule again; c's birthday is not a year on
    texts = shop.api.messages()
    assert texts.count((shop.line_id(c), "お誕生日おめでとうございます")) == 1
    assert sum(text == "おはようございます" for _, text in texts) == 4


def test_the_app_near_a_store_brings_a_location_coupon(shop: Shop) -> None:
    near, far = _reachable(shop.store, 2)
    lat, lon = shop.store.query("SELECT lat, lon FROM stores WHERE store_id = 'S001'")[0]
    shop.journey({"name": "近くの店舗クーポン", "template": "store_visit_coupon", "control_share": 0,
                  "params": {"event": "Location Updated", "near_km": 0.5, "stores": ["S001"],
                             "channel": "line"},
                  "coupon": {"value_yen": 300, "valid_from": "2026-01-01", "valid_to": "2030-12-31"}})  # fmt: skip
    for pid, (dlat, dlon) in ((near, (0.002, 0.001)), (far, (0.05, 0.0))):  # ~250 m, ~5.5 km
        at = shop.start.isoformat() + "Z"
        shop.store.insert_events([normalize(
            {"type": "track", "event": "Location Updated", "userId": shop.member(pid),
             "context": {"channel": "app", "location": {"latitude": lat + dlat,
                                                        "longitude": lon + dlon}},
             "timestamp": at}, received_at=utcnow(), source="app")])  # fmt: skip
    assert shop.tick(1).entered == 1
    assert shop.api.recipients() == [shop.line_id(near)]
    assert shop.store.scalar("SELECT count(*) FROM coupons WHERE profile_id = ?", [far]) == 0
    with pytest.raises(InvalidInput) as why:
        parse(JourneyCreate, {"name": "x", "trigger": {"segment_entered": "s",
                                                      "near_store": {"km": 1}},
                              "steps": [{"send": {"message": {"text": "t"}}}]})  # fmt: skip
    assert why.value.field == "trigger" and "near_store: only with an event" in str(why.value)
