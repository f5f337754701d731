"""Precomputed profile traits (identity/traits.py): the set-based pass against a plain-Python
reading of the same events, source priority, and updates keeping traits current."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.identity.test_graph import MEMBERS, T0, events
from tsunagu.catalog.imports import import_master
from tsunagu.events.normalize import normalize
from tsunagu.identity.graph import build_graph, update_graph
from tsunagu.identity.profiles import get_profile, lookup
from tsunagu.identity.rules import IdentityRules
from tsunagu.identity.traits import PURCHASE_WEIGHT, TOP_CATEGORIES, TRAIT_ALIASES
from tsunagu.store import Store
from tsunagu.store.identifiers import clean

FIGURES = (
    "first_seen",
    "last_seen",
    "events",
    "channels",
    "orders_online",
    "spend_online",
    "orders_store",
    "spend_store",
    "home_store_id",
    "last_store_visit",
    "favourite_categories",
)


def stored(store: Store) -> dict[str, dict[str, Any]]:
    rows = store.query(
        f"SELECT profile_id, {', '.join(FIGURES)}, traits, trait_sources FROM profile_traits"
    )
    return {
        r[0]: {
            **dict(zip(FIGURES, r[1:-2], strict=True)),
            "traits": json.loads(r[-2]),
            "trait_sources": json.loads(r[-1]),
        }
        for r in rows
    }


def by_hand(store: Store, rules: IdentityRules) -> dict[str, dict[str, Any]]:
    """The same figures and traits, one event at a time in Python."""
    nodes = {
        (t, v): p for t, v, p in store.query("SELECT type, value, profile_id FROM identity_nodes")
    }
    category = dict(store.query("SELECT sku, category FROM products"))
    owning = sorted(("user_id", "anonymous_id", "device_id"), key=rules.rank)
    ranks = rules.trait_ranks()
    unlisted = rules.unlisted_trait_rank()
    out: dict[str, dict[str, Any]] = {
        p: {
            "first_seen": None,
            "last_seen": None,
            "events": 0,
            "channels": set(),
            "orders_online": 0,
            "spend_online": 0.0,
            "orders_store": 0,
            "spend_store": 0.0,
            "stores": Counter(),
            "last_store_visit": None,
            "interest": Counter(),
            "said": {},
        }
        for p in set(nodes.values())
    }
    rows = store.query(
        "SELECT rowid, timestamp, type, event, channel, store_id, user_id, anonymous_id, "
        "device_id, email, phone, line_user_id, member_card, raw FROM events"
    )
    for rid, ts, kind, event, channel, store_id, *ids, email, phone, line, card, raw in rows:
        message = json.loads(raw)
        owners = [
            nodes.get((t, clean(t, v))) if v else None
            for t, v in zip(("user_id", "anonymous_id", "device_id"), ids, strict=True)
        ]
        mine = {o for o in owners if o}
        props = message.get("properties") or {}
        revenue = props.get("revenue", props.get("total"))
        for p in mine:
            f = out[p]
            f["first_seen"] = min(filter(None, [f["first_seen"], ts]))
            f["last_seen"] = max(filter(None, [f["last_seen"], ts]))
            f["events"] += 1
            f["channels"].add(channel)
            if event == "Order Completed":
                where = "store" if channel == "store" else "online"
                f[f"orders_{where}"] += 1
                f[f"spend_{where}"] += float(revenue or 0)
                for item in props.get("products") or []:
                    sku = item.get("sku") or item.get("product_id")
                    cat = category.get(sku) or item.get("category")
                    if cat:
                        f["interest"][cat] += PURCHASE_WEIGHT
            if event == "Product Viewed":
                sku = props.get("sku") or props.get("product_id")
                cat = category.get(sku) or props.get("category")
                if cat:
                    f["interest"][cat] += 1
            if channel == "store" and store_id:
                f["stores"][store_id] += 1
            if event == "Store Visited" or (channel == "store" and event == "Order Completed"):
                f["last_store_visit"] = max(filter(None, [f["last_store_visit"], ts]))
        # Traits go to the person the message names: its highest-priority identifier.
        primary = next(
            (o for t in owning if (o := owners[("user_id", "anonymous_id", "device_id").index(t)])),
            None,
        )
        if primary is None:
            continue
        said: list[tuple[int, str, Any]] = []
        if kind == "identify":
            for part, obj in (
                (1, message.get("traits")),
                (2, (message.get("context") or {}).get("traits")),
            ):
                if isinstance(obj, dict):
                    said += [(part, k, v) for k, v in obj.items() if v is not None]
        else:
            said += [
                (3, k, v)
                for k, v in zip(
                    ("email", "phone", "line_user_id", "member_card"),
                    (email, phone, line, card),
                    strict=True,
                )
                if v is not None
            ]
        rank = ranks.get(channel, unlisted)
        for part, key, value in said:
            key = TRAIT_ALIASES.get(key, key)
            # Best: most trusted rank, then latest, then the message's own traits.
            order = (rank, -ts.timestamp(), -rid, part)
            best = out[primary]["said"].get(key)
            if best is None or order < best[0]:
                out[primary]["said"][key] = (order, value, channel)
    members: dict[str, tuple[Any, ...]] = {}
    result = store.query("SELECT * EXCLUDE (attributes) FROM members")
    names = [
        d
        for d in store.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'members' "
            "AND column_name <> 'attributes' ORDER BY ordinal_position"
        )
    ]
    for row in result:
        member = dict(zip((n[0] for n in names), row, strict=True))
        p = nodes.get(("user_id", clean("user_id", member["member_id"])))
        if p is None:
            continue
        key = (member["updated_at"], member["registered_at"] or datetime.min)
        if p not in members or key > members[p][0]:
            members[p] = (key, member)
    m_rank = ranks.get("members", unlisted)
    answer = {}
    for p, f in out.items():
        traits: dict[str, Any] = {}
        sources: dict[str, str] = {}
        member = members.get(p, (None, {}))[1]
        for key, value in member.items():
            if value is not None:
                traits[key] = _plain(value)
                sources[key] = "members"
        for key, ((rank, *_), value, channel) in f["said"].items():
            if key not in traits or rank < m_rank:
                traits[key] = value
                sources[key] = channel
        interest = sorted(f["interest"].items(), key=lambda kv: (-kv[1], kv[0]))
        stores = sorted(f["stores"].items(), key=lambda kv: (-kv[1], kv[0]))
        answer[p] = {
            "first_seen": f["first_seen"],
            "last_seen": f["last_seen"],
            "events": f["events"],
            "channels": sorted(f["channels"]),
            "orders_online": f["orders_online"],
            "spend_online": f["spend_online"],
            "orders_store": f["orders_store"],
            "spend_store": f["spend_store"],
            "home_store_id": stores[0][0] if stores else None,
            "last_store_visit": f["last_store_visit"],
            "favourite_categories": [c for c, _ in interest[:TOP_CATEGORIES]],
            "traits": traits,
            "trait_sources": sources,
        }
    return answer


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def test_set_based_traits_equal_a_plain_reading_of_the_sample_retailer(
    retailer: tuple[Path, Path],
) -> None:
    _, data = retailer
    rules = IdentityRules()
    with Store(data / "tsunagu.duckdb") as store:
        report = build_graph(store=store, rules=rules)
        assert report.traits_seconds > 0
        got = stored(store)
        want = by_hand(store, rules)
        nodes: dict[str, dict[str, list[str]]] = defaultdict(dict)
        for t, v, p in store.query(
            "SELECT type, value, profile_id FROM identity_nodes "
            "ORDER BY type, first_seen NULLS LAST, value"
        ):
            nodes[p].setdefault(t, []).append(v)
        for p in sorted(nodes)[::7]:
            assert get_profile(store=store, profile_id=p).identifiers == nodes[p]
    assert set(got) == set(want)
    assert sum(1 for p in want.values() if p["orders_store"] and p["orders_online"]) > 10
    assert sum(1 for p in want.values() if set(p["trait_sources"].values()) - {"members"}) > 10
    for profile_id, expected in want.items():
        assert got[profile_id] == expected, profile_id


@pytest.fixture
def sources_store(store: Store, tmp_path: Path) -> Store:
    members = tmp_path / "members.csv"
    members.write_text(MEMBERS, encoding="utf-8")
    import_master(store=store, kind="members", path=members)
    store.insert_events(
        events(
            # The POS (channel store) and the web say different things about M1.
            {
                "type": "identify",
                "userId": "M1",
                "context": {"channel": "store"},
                "traits": {"name": "ヤマダ タロウ", "birthday": "1980-04-01", "nickname": "till"},
            },
            {
                "type": "identify",
                "userId": "M1",
                "anonymousId": "w1",
                "traits": {"name": "taro (web)", "birthday": "1990-01-01", "nickname": "taro"},
            },
            {
                "type": "identify",
                "userId": "M1",
                "anonymousId": "w1",
                "traits": {"nickname": "taro2", "shoe_size": 27, "birthday": None},
            },
        )
    )
    return store


def test_member_master_beats_the_pos_beats_the_web_and_the_latest_wins_within(
    sources_store: Store,
) -> None:
    build_graph(store=sources_store, rules=IdentityRules())
    pid = lookup(store=sources_store, rules=IdentityRules(), kind="user_id", value="M1")
    profile = get_profile(store=sources_store, profile_id=pid)
    assert profile.traits["name"] == "山田 太郎"  # the member master
    assert profile.traits["birth_date"] == "1980-04-01"  # not in the master: the POS
    assert profile.traits["nickname"] == "till"  # the POS over the later web value
    assert profile.traits["shoe_size"] == 27  # only the web has it: its latest
    assert profile.traits["email"] == "Taro@Example.jp"
    assert profile.trait_sources == {
        **{
            k: "members" for k in profile.traits if k not in ("birth_date", "nickname", "shoe_size")
        },
        "birth_date": "store",
        "nickname": "store",
        "shoe_size": "web",
    }


def test_a_configured_source_order_changes_the_answer(sources_store: Store) -> None:
    rules = IdentityRules(trait_sources=[["web", "app"], "store", "members"])
    build_graph(store=sources_store, rules=rules)
    pid = lookup(store=sources_store, rules=rules, kind="user_id", value="M1")
    traits = get_profile(store=sources_store, profile_id=pid).traits
    # The web first, the latest web value of each trait.
    assert (traits["name"], traits["nickname"], traits["birth_date"]) == (
        "taro (web)",
        "taro2",
        "1990-01-01",
    )
    assert traits["member_card"] == "2000000000011"  # only the master has it


@pytest.mark.parametrize(
    "sources",
    [["members", "members"], [["members", "web"]], ["fax"], [[]]],
)
def test_bad_trait_sources_are_refused(sources: list[Any]) -> None:
    with pytest.raises(ValueError):
        IdentityRules(trait_sources=sources)


def test_update_keeps_traits_current_and_agrees_with_a_rebuild(sources_store: Store) -> None:
    rules = IdentityRules()
    build_graph(store=sources_store, rules=rules)
    pid = lookup(store=sources_store, rules=rules, kind="user_id", value="M1")
    before = get_profile(store=sources_store, profile_id=pid).computed
    later = T0 + timedelta(days=3)
    new = [
        normalize(m, received_at=later, source="t")
        for m in (
            # A browser M2 used before logging in joins M2's profile.
            {"type": "page", "anonymousId": "w2", "timestamp": later.isoformat()},
            {
                "type": "identify",
                "userId": "M2",
                "anonymousId": "w2",
                "traits": {"nickname": "hana"},
                "timestamp": (later + timedelta(minutes=1)).isoformat(),
            },
            # M1 buys in store with the card.
            {
                "type": "track",
                "event": "Order Completed",
                "anonymousId": "card:2000000000011",
                "context": {"channel": "store", "traits": {"member_card": "2000000000011"}},
                "properties": {
                    "store_id": "S002",
                    "revenue": 8800,
                    "products": [{"sku": "X", "category": "靴"}],
                },
                "timestamp": (later + timedelta(minutes=2)).isoformat(),
            },
        )
    ]
    sources_store.insert_events(new)
    report = update_graph(store=sources_store, rules=rules)
    assert 0 < report.profiles_refreshed < 5
    after = get_profile(store=sources_store, profile_id=pid).computed
    assert (after["orders_store"], after["spend_store"]) == (before["orders_store"] + 1, 8800)
    assert after["home_store_id"] == "S002" and after["favourite_categories"] == ["靴"]
    m2 = lookup(store=sources_store, rules=rules, kind="anonymous_id", value="w2")
    assert get_profile(store=sources_store, profile_id=m2).traits["nickname"] == "hana"
    updated = stored(sources_store)
    build_graph(store=sources_store, rules=rules)
    assert stored(sources_store) == updated


def test_a_profile_without_a_stored_row_is_computed_on_the_spot(sources_store: Store) -> None:
    build_graph(store=sources_store, rules=IdentityRules())
    pid = lookup(store=sources_store, rules=IdentityRules(), kind="user_id", value="M1")
    want = get_profile(store=sources_store, profile_id=pid)
    with sources_store.transaction() as cur:
        cur.execute("DELETE FROM profile_traits")
    assert get_profile(store=sources_store, profile_id=pid) == want
