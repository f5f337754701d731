"""Segments on the sample retailer, held to a plain-Python reading of their rules."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.analytics import reference
from tsunagu.activation.membership import (
    create_segment,
    get_segment,
    list_segments,
    refresh_segment,
    segment_members,
)
from tsunagu.activation.segments import SegmentDefinition, preview
from tsunagu.analytics.engine import Engine
from tsunagu.analytics.facts import ensure_fresh
from tsunagu.analytics.fans import FanRules, compute_fan_levels
from tsunagu.analytics.filters import parse
from tsunagu.analytics.ltv import fit_ltv
from tsunagu.exceptions import InvalidInput
from tsunagu.identity.profiles import timeline
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store

KM = 6371.0088


@pytest.fixture
def shop(sample_copy: Store) -> Store:
    compute_fan_levels(store=sample_copy, rules=FanRules())
    fit_ltv(engine=Engine(sample_copy), store=sample_copy)
    return sample_copy


class Plain:
    """The profiles, their events and the stores, read the slow, obvious way."""

    def __init__(self, store: Store) -> None:
        self.profiles: dict[str, dict[str, Any]] = {}
        for pid, traits, online, in_store, home, level in store.query(
            "SELECT p.profile_id, p.traits, p.spend_online, p.spend_store, p.home_store_id, "
            "f.level FROM profile_traits p LEFT JOIN fan_levels f USING (profile_id)"
        ):
            t = json.loads(traits)
            self.profiles[pid] = {
                **t,
                "spend_online": online,
                "spend_store": in_store,
                "home_store_id": home or t.get("home_store_id"),
                "fan_level": level,
            }
        for pid, value, purchases in store.query(
            "SELECT profile_id, expected_value, expected_purchases FROM ltv_predictions"
        ):
            self.profiles[pid] |= {"ltv": value, "expected_purchases": purchases}
        self.moments = {
            pid: {"first_seen": a, "last_seen": b, "last_store_visit": c}
            for pid, a, b, c in store.query(
                "SELECT profile_id, first_seen, last_seen, last_store_visit FROM profile_traits"
            )
        }
        of_pid = dict(store.query("SELECT pid, profile_id FROM analytics_profiles"))
        self.events: dict[str, list[reference.Ev]] = defaultdict(list)
        self.where: dict[str, tuple[float, float]] = {}
        for pid, evs in reference.histories(store).items():
            self.events[of_pid[pid]].extend(evs)
        for pid, lat, lon in store.query(
            "SELECT pid, arg_max(lat, ts), arg_max(lon, ts) FROM analytics_events "
            "WHERE lat IS NOT NULL AND lon IS NOT NULL GROUP BY pid"
        ):
            self.where[of_pid[pid]] = (lat, lon)
        self.stores = {
            s: (la, lo) for s, la, lo in store.query("SELECT store_id, lat, lon FROM stores")
        }

    def holds(self, rule: dict[str, Any], pid: str, as_of: datetime) -> bool:
        p = self.profiles[pid]
        if "all" in rule:
            return all(self.holds(r, pid, as_of) for r in rule["all"])
        if "any" in rule:
            return any(self.holds(r, pid, as_of) for r in rule["any"])
        if "not" in rule:
            return not self.holds(rule["not"], pid, as_of)
        if "consent" in rule:
            return p.get(f"{rule['consent']}_opt_in") is True
        if "trait" in rule:
            if rule["trait"] in ("last_seen", "first_seen", "last_store_visit"):
                return self.moment(rule, pid, as_of)
            have = p.get(rule["trait"])
            if have is None:
                return False
            for op, want in rule.items():
                if op == "trait":
                    continue
                if op == "in":
                    if str(have) not in want:
                        return False
                    continue
                a, b = (
                    (float(have), float(want))
                    if isinstance(want, int | float)
                    else (str(have), want)
                )
                ok = {
                    "eq": a == b,
                    "ne": a != b,
                    "gt": a > b,
                    "gte": a >= b,
                    "lt": a < b,
                    "lte": a <= b,
                }[op]
                if not ok:
                    return False
            return True
        if "event" in rule:
            since = (
                as_of - timedelta(days=int(rule["within"].rstrip("d")))
                if "within" in rule
                else None
            )
            n = sum(
                1
                for e in self.events.get(pid, [])
                if reference.matches(
                    {k: rule[k] for k in ("event", "channel", "where") if k in rule}, e
                )
                and e.ts <= as_of
                and (since is None or e.ts >= since)
                and ("store_id" not in rule or e.store_id == rule["store_id"])
            )
            return n >= rule.get("at_least", 1) and ("at_most" not in rule or n <= rule["at_most"])
        if "near_store" in rule:
            lat0, lon0 = self.stores[rule["near_store"]]
            home = self.stores.get(p["home_store_id"]) if p["home_store_id"] else None
            by = rule.get("by", "either")
            places = [home if by != "last_location" else None]
            places.append(self.where.get(pid) if by != "home_store" else None)
            return any(q is not None and _km(q, (lat0, lon0)) <= rule["km"] for q in places)
        raise AssertionError(rule)

    def moment(self, rule: dict[str, Any], pid: str, as_of: datetime) -> bool:
        moment = self.moments[pid].get(rule["trait"])
        for op, v in rule.items():
            if op == "not_within":  # never, or longer ago than that
                if moment is not None and moment >= as_of - timedelta(days=int(v.rstrip("d"))):
                    return False
            elif moment is None:
                return False
            elif op == "within" and moment < as_of - timedelta(days=int(v.rstrip("d"))):
                return False
            elif op in ("gte", "lt") and (moment >= datetime.fromisoformat(v)) != (op == "gte"):
                return False
        return True


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * KM * math.asin(math.sqrt(h))


def rules(shop: Store, as_of: datetime) -> list[dict[str, Any]]:
    top = shop.query(
        "SELECT category FROM analytics_events WHERE event = 'Product Viewed' "
        "GROUP BY category ORDER BY count(*) DESC LIMIT 1"
    )[0][0]
    store_id = shop.query("SELECT min(store_id) FROM stores")[0][0]
    stores = [r[0] for r in shop.query("SELECT store_id FROM stores ORDER BY store_id")]
    ltv, purchases = shop.query(
        "SELECT median(expected_value), median(expected_purchases) FROM ltv_predictions"
    )[0]
    return [
        {"trait": "fan_level", "gte": 3},
        {"all": [{"consent": "email"}, {"trait": "spend_store", "gte": 10000}]},
        {"event": "Product Viewed", "where": {"category": top}, "within": "30d", "at_least": 2},
        {
            "all": [
                {"event": "Product Added", "within": "14d"},
                {"not": {"event": "Order Completed", "within": "14d"}},
            ]
        },
        {
            "event": "Order Completed",
            "channel": "store",
            "store_id": store_id,
            "at_most": 0,
            "at_least": 0,
        },
        {"any": [{"trait": "gender", "eq": "female"}, {"near_store": store_id, "km": 10}]},
        {"trait": "prefecture", "eq": "東京都"},
        {"trait": "last_seen", "gte": str(as_of.date() - timedelta(days=20))},
        {"trait": "ltv", "gte": ltv},
        {
            "all": [
                {"trait": "expected_purchases", "lt": purchases},
                {"trait": "spend_online", "gt": 0},
            ]
        },
        {"trait": "spend_online", "gte": 20000},
        {"trait": "home_store_id", "eq": store_id},
        {"not": {"trait": "home_store_id", "in": stores[:3]}},
        {"trait": "last_store_visit", "within": "30d"},
        {
            "all": [
                {"trait": "last_store_visit", "not_within": "90d"},
                {"trait": "spend_store", "gt": 0},
            ]
        },
        {"near_store": store_id, "km": 5, "by": "home_store"},
        {"near_store": store_id, "km": 5, "by": "last_location"},
    ]


def test_segments_hold_whom_the_plain_reading_says(shop: Store) -> None:
    plain = Plain(shop)
    as_of = shop.query("SELECT max(ts) FROM analytics_events")[0][0]
    for rule in rules(shop, as_of):
        got = preview(
            store=shop,
            rule=parse(SegmentDefinition, {"name": "x", "rule": rule}).rule,
            as_of=as_of,
            sample=5,
        )
        want = {pid for pid in plain.profiles if plain.holds(rule, pid, as_of)}
        assert got.customers == len(want), rule
        assert {s["profile_id"] for s in got.sample} <= want
        assert 0 < got.customers < len(plain.profiles) or rule.get("trait") == "fan_level", rule


def test_membership_is_kept_with_who_entered_and_who_left(shop: Store) -> None:
    as_of = shop.query("SELECT max(ts) FROM analytics_events")[0][0]
    definition = parse(
        SegmentDefinition,
        {"name": "最近カートに入れた", "rule": {"event": "Product Added", "within": "14d"}},
    )
    segment, first = create_segment(store=shop, definition=definition)
    # Now is months after the sample's last day: nobody added to a cart in the last 14 days.
    assert (first.members, segment.members) == (0, 0)
    then = refresh_segment(store=shop, segment_id=segment.name, as_of=as_of)
    assert then.members > 0 and then.entered == then.members and then.exited == 0
    same = refresh_segment(store=shop, segment_id=segment.segment_id, as_of=as_of)
    assert (same.members, same.entered, same.exited) == (then.members, 0, 0)
    changes = dict(
        shop.query(
            "SELECT change, count(*) FROM segment_changes WHERE segment_id = ? GROUP BY change",
            [segment.segment_id],
        )
    )
    assert changes == {"entered": then.members}
    # Each entry is an event on the profile's timeline; analytics leaves them out.
    entered = shop.query(
        "SELECT count(*), count(DISTINCT message_id) FROM events WHERE event = 'Segment Entered'"
    )[0]
    assert entered == (then.members, then.members)
    someone = segment_members(store=shop, segment_id=segment.segment_id)[0]["profile_id"]
    page = timeline(store=shop, profile_id=someone)
    assert any(item.get("event") == "Segment Entered" for item in page.items)
    ensure_fresh(store=shop, rules=IdentityRules(), timezone="Asia/Tokyo")
    assert (
        shop.query("SELECT count(*) FROM analytics_events WHERE event LIKE 'Segment %'")[0][0] == 0
    )
    again = same
    rows = segment_members(store=shop, segment_id=segment.segment_id)
    assert len(rows) == again.members and {"member_id", "email", "line_user_id"} <= set(rows[0])
    assert [s.name for s in list_segments(store=shop)] == ["最近カートに入れた"]
    assert get_segment(store=shop, segment_id=segment.segment_id).members == again.members
    gone = refresh_segment(store=shop, segment_id=segment.segment_id)
    assert (gone.members, gone.exited) == (0, then.members)
    assert segment_members(store=shop, segment_id=segment.segment_id) == []
    exited = shop.query(
        "SELECT count(DISTINCT message_id), "
        "count(*) FILTER (WHERE json_extract_string(raw, '$.properties.segment_id') = ?) "
        "FROM events WHERE event = 'Segment Exited'",
        [segment.segment_id],
    )[0]
    assert exited == (then.members, then.members)  # each leaving is on their timeline
    assert any(item.get("event") == "Segment Exited"
               for item in timeline(store=shop, profile_id=someone).items)  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"trait": "fan_level"}, "rule"),
        ({"event": ""}, "rule"),
        ({"consent": "fax"}, "rule"),
        ({"near_store": "S001", "km": -1}, "rule"),
        ({"all": []}, "rule"),
        ({"trait": "fan_level", "within": "30d"}, "rule"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(rule: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse(SegmentDefinition, {"name": "x", "rule": rule})
    assert err.value.field is not None and err.value.field.startswith(field), err.value.message


def test_an_unknown_store_is_named(shop: Store) -> None:
    definition = parse(SegmentDefinition, {"name": "x", "rule": {"near_store": "NOPE", "km": 3}})
    with pytest.raises(InvalidInput, match="near_store"):
        preview(store=shop, rule=definition.rule)


def test_a_rule_asked_about_some_customers_answers_for_them_as_for_all(shop: Store) -> None:
    import pyarrow as pa

    from tsunagu.activation.segments import members_sql

    as_of = shop.query("SELECT max(ts) FROM analytics_events")[0][0]
    everyone = [r[0] for r in shop.query(
        "SELECT profile_id FROM profile_traits UNION ALL SELECT profile_id FROM analytics_profiles "
        "WHERE contains(profile_id, ':') ORDER BY 1"
    )]  # fmt: skip
    some = everyone[::3]
    cur = shop.cursor()
    cur.register("_some", pa.table({"profile_id": pa.array(some, pa.string())}))
    for rule in rules(shop, as_of):
        parsed = parse(SegmentDefinition, {"name": "x", "rule": rule}).rule
        whole = {r[0] for r in cur.execute(members_sql(parsed, store=shop, as_of=as_of)).fetchall()}
        scoped = {r[0] for r in cur.execute(
            members_sql(parsed, store=shop, as_of=as_of, scope="_some")
        ).fetchall()}  # fmt: skip
        assert scoped == whole & set(some), rule
    cur.close()
