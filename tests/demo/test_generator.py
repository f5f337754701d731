"""The synthetic retailer: file shapes, determinism, and the OMO and identity cases it must hold."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tsunagu.demo import DEFAULT_END, experiment, generate
from tsunagu.demo.writer import HEADERS, write_all

CUSTOMERS, DAYS, SEED = 3000, 180, 11
FILES = (
    "stores.csv",
    "products.csv",
    "inventory.csv",
    "members.csv",
    "events.jsonl",
    "pos_transactions.csv",
    "truth.csv",
    "campaign_assignments.csv",
    "campaign_truth.json",
)
CHANNELS = {"web", "app", "line", "store", "call_center", "catalog", "email"}
JST = timedelta(hours=9)
WINDOW_START = datetime.combine(DEFAULT_END - timedelta(days=DAYS - 1), datetime.min.time()) - JST
WINDOW_END = datetime.combine(DEFAULT_END + timedelta(days=1), datetime.min.time()) - JST


@dataclass
class Data:
    out: Path
    events: list[dict[str, Any]]
    members: list[dict[str, str]]
    pos: list[dict[str, str]]
    truth: dict[str, tuple[str, str]]
    truth_rows: list[dict[str, str]]
    inventory: list[dict[str, str]]
    products: list[dict[str, str]]
    stores: list[dict[str, str]]

    def person(self, value: str | None) -> str | None:
        return self.truth[value][1] if value and value in self.truth else None

    def person_of_event(self, e: dict[str, Any]) -> str | None:
        return self.person(e.get("userId")) or self.person(e.get("anonymousId"))


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _utc(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text[:-1])


def _jst_as_utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S") - JST


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    out = tmp_path_factory.mktemp("retailer")
    seen: list[int] = []
    summary = generate(out_dir=out, customers=CUSTOMERS, days=DAYS, seed=SEED, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == CUSTOMERS
    events = [orjson.loads(line) for line in (out / "events.jsonl").read_bytes().splitlines()]
    truth_rows = _read_csv(out / "truth.csv")
    truth = {r["identifier_value"]: (r["identifier_type"], r["person_id"]) for r in truth_rows}
    d = Data(
        out,
        events,
        _read_csv(out / "members.csv"),
        _read_csv(out / "pos_transactions.csv"),
        truth,
        truth_rows,
        _read_csv(out / "inventory.csv"),
        _read_csv(out / "products.csv"),
        _read_csv(out / "stores.csv"),
    )
    assert summary.files == {
        "stores.csv": len(d.stores),
        "products.csv": len(d.products),
        "inventory.csv": len(d.inventory),
        "members.csv": len(d.members),
        "events.jsonl": len(events),
        "pos_transactions.csv": len(d.pos),
        "truth.csv": len(truth_rows),
        "campaign_assignments.csv": len(_read_csv(out / "campaign_assignments.csv")),
    }
    return d


def test_files_have_the_documented_headers(data: Data) -> None:
    for name in FILES:
        assert (data.out / name).is_file()
        if name.endswith(".csv"):
            header = (data.out / name).read_text(encoding="utf-8").splitlines()[0]
            assert tuple(header.split(",")) == HEADERS[name]
    assert 20 <= len(data.stores) <= 60
    assert 300 <= len(data.products) <= 3000


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    def run(name: str, seed: int) -> dict[str, bytes]:
        generate(out_dir=tmp_path / name, customers=400, days=60, seed=seed)
        return {f: (tmp_path / name / f).read_bytes() for f in FILES}

    first, again, other = run("a", 5), run("b", 5), run("c", 6)
    assert first == again
    assert first["events.jsonl"] != other["events.jsonl"]
    assert first["members.csv"] != other["members.csv"]


def test_worker_processes_do_not_change_the_bytes(tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {
        "customers": 2100,
        "days": 30,
        "seed": 3,
        "end": DEFAULT_END,
        "progress": None,
    }
    write_all(out_dir=tmp_path / "one", workers=1, **kwargs)
    write_all(out_dir=tmp_path / "two", workers=2, **kwargs)
    for f in FILES:
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes(), f


def test_events_are_valid_segment_messages_in_the_window(data: Data) -> None:
    ids = [e["messageId"] for e in data.events]
    assert len(ids) == len(set(ids))
    for e in data.events:
        assert e["type"] in {"track", "identify", "page", "screen"}
        assert e.get("userId") or e.get("anonymousId")
        assert e["context"]["channel"] in CHANNELS
        assert WINDOW_START <= _utc(e["timestamp"]) < WINDOW_END
        if e["type"] == "track":
            assert e["event"] and isinstance(e["properties"], dict)
        if e["context"]["channel"] == "app":
            assert e["context"]["device"]["id"]
        if e["context"]["channel"] == "store":
            assert e["properties"]["store_id"]
    assert {e["context"]["channel"] for e in data.events} == CHANNELS
    names = {e.get("event") for e in data.events}
    assert {
        "Products Searched",
        "Product Viewed",
        "Product Added",
        "Product Added to Wishlist",
        "Cart Viewed",
        "Checkout Started",
        "Order Completed",
        "Order Refunded",
        "Coupon Applied",
        "Store Visited",
        "Coupon Issued",
        "Coupon Redeemed",
        "Message Sent",
        "Message Opened",
        "Catalog Sent",
    } <= names
    assert not any(
        e.get("event") == "Order Completed" and e["context"]["channel"] == "store"
        for e in data.events
    ), "store sales belong in pos_transactions.csv"


def test_orders_add_up_and_money_is_integer_yen(data: Data) -> None:
    for p in data.products:
        assert int(p["price"]) > 0 and p["repeat_purchase"] in ("true", "false")
        if p["category"] in ("コスメ", "食品"):
            assert p["repeat_purchase"] == "true"
    orders = [e for e in data.events if e.get("event") == "Order Completed"]
    assert orders
    for o in orders:
        props = o["properties"]
        assert props["currency"] == "JPY"
        subtotal = sum(x["price"] * x["quantity"] for x in props["products"])
        assert all(isinstance(x["price"], int) for x in props["products"])
        assert props["revenue"] == subtotal - props["discount"]
    for row in data.pos:
        for col in ("line_no", "quantity", "unit_price", "discount"):
            assert re.fullmatch(r"-?\d+", row[col]), (col, row[col])
        assert int(row["discount"]) >= 0 and int(row["unit_price"]) > 0
        assert row["payment_method"] in {"cash", "credit_card", "e_money", "qr", "gift_card"}


def test_pos_times_are_japan_time_without_offset(data: Data) -> None:
    start, end = DEFAULT_END - timedelta(days=DAYS - 1), DEFAULT_END
    for row in data.pos:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", row["sold_at"])
        local = datetime.strptime(row["sold_at"], "%Y-%m-%d %H:%M:%S")
        assert 10 <= local.hour < 21, "tills ring during opening hours, Japan time"
        assert start <= local.date() <= end
    receipts: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for row in data.pos:
        receipts[row["receipt_id"]].add((row["store_id"], row["sold_at"], row["member_card"]))
    assert all(len(v) == 1 for v in receipts.values())
    assert any(r["member_card"] == "" for r in data.pos)
    assert any(r["coupon_code"] for r in data.pos)


def test_every_identifier_is_in_truth_exactly_once(data: Data) -> None:
    values = [r["identifier_value"] for r in data.truth_rows]
    assert len(values) == len(set(values))
    assert {r["identifier_type"] for r in data.truth_rows} == {
        "anonymous_id",
        "user_id",
        "email",
        "phone",
        "line_user_id",
        "member_card",
        "device_id",
    }
    seen: set[str] = set()
    for e in data.events:
        seen.update(v for v in (e.get("userId"), e.get("anonymousId")) if v)
        ctx = e["context"]
        if "device" in ctx:
            seen.add(ctx["device"]["id"])
        seen.update(v for v in ctx.get("traits", {}).values() if v)
        seen.update(v for k, v in e.get("traits", {}).items() if k in ("email", "phone") and v)
    for m in data.members:
        seen.update(
            m[c] for c in ("member_id", "member_card", "email", "phone", "line_user_id") if m[c]
        )
    seen.update(r["member_card"] for r in data.pos if r["member_card"])
    assert seen - set(data.truth) == set()


def test_placeholders_are_shared_by_members_but_owned_once(data: Data) -> None:
    noemail = [m for m in data.members if m["email"] == "noemail@example.com"]
    assert len({data.person(m["member_id"]) for m in noemail}) >= 2
    assert [r["identifier_value"] for r in data.truth_rows].count("noemail@example.com") == 1


def _buyers(data: Data) -> tuple[set[str], set[str]]:
    online = {
        data.person_of_event(e) for e in data.events if e.get("event") == "Order Completed"
    } - {None}
    store = {data.person(r["member_card"]) for r in data.pos if r["member_card"]} - {None}
    return online, store  # type: ignore[return-value]


def test_online_only_store_only_and_omnichannel_customers(data: Data) -> None:
    online, store = _buyers(data)
    buyers = online | store
    shares = [
        len(online - store) / len(buyers),
        len(store - online) / len(buyers),
        len(online & store) / len(buyers),
    ]
    assert all(s > 0.12 for s in shares), shares


def test_research_online_purchase_offline(data: Data) -> None:
    views: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for e in data.events:
        if e.get("event") == "Product Viewed" and e["context"]["channel"] in ("web", "app"):
            who = data.person_of_event(e)
            if who:
                views[(who, e["properties"]["sku"])].append(_utc(e["timestamp"]))
    ropo = set()
    for r in data.pos:
        who = data.person(r["member_card"])
        bought = _jst_as_utc(r["sold_at"])
        for seen in views.get((who or "", r["sku"]), []):
            if timedelta(0) < bought - seen <= timedelta(days=14):
                ropo.add((who, r["sku"]))
    assert len(ropo) >= 10


def test_showrooming_store_visit_then_online_order(data: Data) -> None:
    visits: dict[str, list[datetime]] = defaultdict(list)
    for e in data.events:
        if e.get("event") == "Store Visited":
            assert e["properties"]["source"] in ("beacon", "wifi", "gps")
            if who := data.person_of_event(e):
                visits[who].append(_utc(e["timestamp"]))
    hits = 0
    for e in data.events:
        if e.get("event") == "Order Completed" and (who := data.person_of_event(e)):
            t = _utc(e["timestamp"])
            hits += any(timedelta(0) < t - v <= timedelta(days=7) for v in visits.get(who, []))
    assert hits >= 5


def _osa(a: str, b: str) -> int:
    """Edit distance counting a swap of neighbours as one edit."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(
                d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def test_duplicate_registrations_with_a_mistyped_email(data: Data) -> None:
    by_person: dict[str, list[dict[str, str]]] = defaultdict(list)
    for m in data.members:
        by_person[data.person(m["member_id"]) or ""].append(m)
    dups = [ms for ms in by_person.values() if len(ms) > 1]
    assert len(dups) >= 5
    assert len(dups) / len(by_person) < 0.03
    for a, b in dups:
        assert a["member_id"] != b["member_id"] and a["member_card"] != b["member_card"]
        assert (a["name"], a["name_kana"], a["birth_date"]) == (
            b["name"],
            b["name_kana"],
            b["birth_date"],
        )
        assert a["email"] != b["email"] and _osa(a["email"], b["email"]) == 1
        assert (
            re.sub(r"\D", "", a["phone"].translate(_WIDE))[-8:]
            == re.sub(r"\D", "", b["phone"].translate(_WIDE))[-8:]
        )


_WIDE = str.maketrans("０１２３４５６７８９", "0123456789")


def test_a_family_tablet_is_used_by_two_members(data: Data) -> None:
    users: dict[str, set[str]] = defaultdict(set)
    for e in data.events:
        if "device" in e["context"] and e.get("userId"):
            users[e["context"]["device"]["id"]].add(e["userId"])
    shared = [d for d, u in users.items() if len({data.person(x) for x in u}) > 1]
    assert shared
    for device in shared:
        assert data.truth[device][0] == "device_id"  # owned by exactly one of them


def test_anonymous_browsing_that_later_logs_in(data: Data) -> None:
    first_anonymous: dict[str, datetime] = {}
    linked_later = set()
    for e in sorted(data.events, key=lambda e: e["timestamp"]):
        anon = e.get("anonymousId")
        if not anon:
            continue
        if not e.get("userId"):
            first_anonymous.setdefault(anon, _utc(e["timestamp"]))
        elif e["type"] == "identify" and anon in first_anonymous:
            linked_later.add(anon)
    assert len(linked_later) >= 10
    never = set(first_anonymous) - {e.get("anonymousId") for e in data.events if e.get("userId")}
    assert never and all(data.truth[a][0] in ("anonymous_id", "line_user_id") for a in never)


def test_line_friends_linked_and_unlinked(data: Data) -> None:
    line = [e for e in data.events if e["context"]["channel"] == "line"]
    assert any(e.get("userId") for e in line)
    unlinked = [e for e in line if not e.get("userId")]
    assert unlinked and all(re.fullmatch(r"U[0-9a-f]{32}", e["anonymousId"]) for e in unlinked)
    members_line = {m["line_user_id"] for m in data.members if m["line_user_id"]}
    assert all(re.fullmatch(r"U[0-9a-f]{32}", x) for x in members_line)


def test_cart_abandonment_and_coupons(data: Data) -> None:
    started = {
        e["properties"]["order_id"] for e in data.events if e.get("event") == "Checkout Started"
    }
    completed = {
        e["properties"]["order_id"] for e in data.events if e.get("event") == "Order Completed"
    }
    assert completed <= started and len(started - completed) >= 10
    issued = {e["properties"]["code"] for e in data.events if e.get("event") == "Coupon Issued"}
    online = {
        e["properties"]["coupon"]
        for e in data.events
        if e.get("event") == "Order Completed" and "coupon" in e["properties"]
    }
    in_store = {r["coupon_code"] for r in data.pos if r["coupon_code"]}
    assert online and in_store and (online | in_store) <= issued


def test_inventory_snapshot(data: Data) -> None:
    keys = [(r["store_id"], r["sku"]) for r in data.inventory]
    assert len(keys) == len(set(keys))
    zero = sum(r["quantity"] == "0" for r in data.inventory) / len(data.inventory)
    assert 0.03 < zero < 0.12
    assert len(data.inventory) < len(data.stores) * len(data.products)  # not every store has all


def test_members_look_japanese(data: Data) -> None:
    m = data.members[0]
    assert re.fullmatch(r"M\d{9}", m["member_id"]) and re.fullmatch(r"\d{13}", m["member_card"])
    assert all(re.fullmatch(r"\d{3}-\d{4}", x["postcode"]) for x in data.members)
    kana = re.compile(r"[\u30a0-\u30ff\uff66-\uff9f 　]+")
    assert all(kana.fullmatch(x["name_kana"]) for x in data.members)
    phones = {x["phone"][:1] for x in data.members if x["phone"]}
    assert {"0", "+", "０"} <= phones
    assert all(date.fromisoformat(x["birth_date"]) < DEFAULT_END for x in data.members)
    assert {x["gender"] for x in data.members} <= {"female", "male", "other", ""}
    for s in data.stores:
        assert s["name"].startswith("つなぐ ") and 24 < float(s["lat"]) < 46
        assert 122 < float(s["lon"]) < 146


def test_timestamps_parse_as_utc(data: Data) -> None:
    t = _utc(data.events[0]["timestamp"]).replace(tzinfo=UTC)
    assert t.utcoffset() == timedelta(0)


def test_one_member_on_two_devices(data: Data) -> None:
    web: dict[str, set[str]] = defaultdict(set)
    app: dict[str, set[str]] = defaultdict(set)
    for e in data.events:
        user = e.get("userId")
        if user and e["context"]["channel"] == "web":
            web[user].add(e["anonymousId"])
        elif user and e["context"]["channel"] == "app":
            app[user].add(e["context"]["device"]["id"])
    both = [
        u
        for u in set(web) & set(app)
        if {data.person(x) for x in web[u] | app[u]} == {data.person(u)}
    ]
    assert len(both) >= 10


def test_volume_is_about_ten_lines_a_customer_a_year(data: Data) -> None:
    per_year = (len(data.events) + len(data.pos)) / CUSTOMERS * 365 / DAYS
    assert 8 < per_year < 13, per_year


def test_the_randomised_campaign_is_what_its_truth_says(data: Data) -> None:
    truth = orjson.loads((data.out / "campaign_truth.json").read_bytes())
    assigned = _read_csv(data.out / "campaign_assignments.csv")
    members = {m["member_id"]: m for m in data.members}
    start = datetime.fromisoformat(truth["starts_at"]).replace(tzinfo=None) - JST
    variants: dict[str, int] = {}
    for row in assigned:
        variants[row["variant"]] = variants.get(row["variant"], 0) + 1
        assert _jst_as_utc(members[row["user_id"]]["registered_at"]) < start
    assert variants == truth["customers"]
    assert abs(variants["control"] / len(assigned) - truth["control_share"]) < 0.03
    mailed = {
        e["userId"]
        for e in data.events
        if e.get("event") == "Catalog Sent" and e["properties"]["catalog_id"] == "CAT-EXPERIMENT"
    }
    assert mailed == {r["user_id"] for r in assigned if r["variant"] == "catalog"}
    treated = variants["catalog"]
    for channel, chance in truth["extra_order_probability"].items():
        added = truth["added"][channel]
        # Each treated member bought once more with that chance (a few could not: no device).
        assert 0.7 * chance * treated < added["orders"] <= 1.3 * chance * treated, channel
        assert truth["revenue_per_treated_customer"][channel] == added["revenue"] / treated


def test_the_campaign_only_adds_to_the_retailer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(out_dir=tmp_path / "with", customers=600, days=60, seed=3)
    monkeypatch.setattr(experiment.Experiment, "plan_experiment", lambda self, m: None)
    generate(out_dir=tmp_path / "without", customers=600, days=60, seed=3)
    for name in ("members.csv", "events.jsonl", "pos_transactions.csv", "truth.csv"):
        base = (tmp_path / "without" / name).read_bytes().splitlines()
        more = set((tmp_path / "with" / name).read_bytes().splitlines())
        assert set(base) <= more, name
    assert (tmp_path / "with" / "members.csv").read_bytes() == (
        tmp_path / "without" / "members.csv"
    ).read_bytes()
