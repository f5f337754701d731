from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tsunagu.events.normalize import normalize
from tsunagu.identity.graph import build_graph, profile_id_for
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MEMBERS = (
    "member_id,member_card,name,email,phone,registered_at\n"
    "M1,2000000000011,山田 太郎,Taro@Example.jp,090-1234-5678,2025-01-01 10:00:00\n"
    "M2,2000000000028,佐藤 花子,hanako@example.jp,,2025-01-02 10:00:00\n"
    "M3,2000000000035,佐藤 一郎,ichiro@example.jp,,2025-01-03 10:00:00\n"
    "M4,2000000000042,鈴木 次郎,noemail@example.com,000-0000-0000,2025-01-04 10:00:00\n"
    "M5,2000000000059,高橋 三郎,noemail@example.com,000-0000-0000,2025-01-05 10:00:00\n"
)


def events(*messages: dict) -> list:  # type: ignore[type-arg]
    return [
        normalize(
            {**m, "timestamp": (T0 + timedelta(minutes=i)).isoformat()},
            received_at=T0 + timedelta(days=1),
            source="t",
        )
        for i, m in enumerate(messages)
    ]


@pytest.fixture
def graph_store(store: Store, tmp_path: Path) -> Store:
    from tsunagu.catalog.imports import import_master

    members = tmp_path / "members.csv"
    members.write_text(MEMBERS, encoding="utf-8")
    import_master(store=store, kind="members", path=members)
    store.insert_events(
        events(
            {"type": "page", "anonymousId": "a1", "name": "Top"},
            {"type": "identify", "userId": "M1", "anonymousId": "a1"},
            # The app: device D1, logged in as M1.
            {
                "type": "screen",
                "anonymousId": "a2",
                "name": "Home",
                "context": {"device": {"id": "D1"}},
            },
            {
                "type": "identify",
                "userId": "M1",
                "anonymousId": "a2",
                "context": {"device": {"id": "D1"}},
            },
            # A phone number in full width, from a call-centre record, on an anonymous id.
            {
                "type": "track",
                "event": "Call",
                "anonymousId": "a7",
                "context": {"traits": {"phone": "０９０－１２３４－５６７８"}},
            },
            {"type": "alias", "previousId": "a9", "userId": "M1"},
            # The family tablet T: M2 logs in, later M3 on the same device.
            {
                "type": "identify",
                "userId": "M2",
                "anonymousId": "t1",
                "context": {"device": {"id": "T"}},
            },
            {
                "type": "track",
                "event": "Product Viewed",
                "anonymousId": "t1",
                "context": {"device": {"id": "T"}},
            },
            {
                "type": "identify",
                "userId": "M3",
                "anonymousId": "t1",
                "context": {"device": {"id": "T"}},
            },
            # A till record with the member card, from the POS import.
            {
                "type": "track",
                "event": "Order Completed",
                "anonymousId": "card:2000000000011",
                "context": {"channel": "store", "traits": {"member_card": "2000-0000-0001-1"}},
            },
        )
    )
    return store


def profiles(store: Store) -> dict[tuple[str, str], str]:
    return {
        (t, v): p for t, v, p in store.query("SELECT type, value, profile_id FROM identity_nodes")
    }


def test_one_customer_across_web_app_alias_call_centre_and_till(graph_store: Store) -> None:
    build_graph(store=graph_store, rules=IdentityRules())
    nodes = profiles(graph_store)
    m1 = nodes[("user_id", "M1")]
    assert m1 == profile_id_for("user_id", "M1")
    for key in [
        ("anonymous_id", "a1"),
        ("anonymous_id", "a2"),
        ("device_id", "D1"),
        ("anonymous_id", "a7"),
        ("anonymous_id", "a9"),
        ("email", "taro@example.jp"),
        ("phone", "+819012345678"),
        ("member_card", "2000000000011"),
        ("anonymous_id", "card:2000000000011"),
    ]:
        assert nodes[key] == m1, key


def test_shared_tablet_does_not_glue_two_members_and_the_refusal_is_audited(
    graph_store: Store,
) -> None:
    report = build_graph(store=graph_store, rules=IdentityRules())
    nodes = profiles(graph_store)
    assert nodes[("user_id", "M2")] != nodes[("user_id", "M3")]
    # The tablet stays with the member who used it first.
    assert nodes[("device_id", "T")] == nodes[("user_id", "M2")]
    assert report.refused_links >= 1
    audit = graph_store.query(
        "SELECT type, value, other_type, other_value, reason FROM identity_audit"
    )
    assert (
        "user_id",
        "M3",
        "anonymous_id",
        "t1",
        "would give one profile 2 user_id values (limit 1)",
    ) in audit


def test_placeholder_email_and_phone_never_link_people(graph_store: Store) -> None:
    build_graph(store=graph_store, rules=IdentityRules())
    nodes = profiles(graph_store)
    assert nodes[("user_id", "M4")] != nodes[("user_id", "M5")]
    assert ("email", "noemail@example.com") not in nodes
    assert not any(t == "phone" and v.startswith("+8100") for t, v in nodes)


def test_rebuild_gives_the_same_answer(graph_store: Store) -> None:
    build_graph(store=graph_store, rules=IdentityRules())
    first = profiles(graph_store)
    refusals = graph_store.query(
        "SELECT type, value, other_type, other_value FROM identity_audit ORDER BY ALL"
    )
    build_graph(store=graph_store, rules=IdentityRules())
    assert profiles(graph_store) == first
    # Refusals of a rebuild replace those of the one before.
    assert (
        graph_store.query(
            "SELECT type, value, other_type, other_value FROM identity_audit ORDER BY ALL"
        )
        == refusals
    )


def test_limits_are_configurable(graph_store: Store) -> None:
    # Two members on one tablet are one profile only if it may hold two member ids and cards.
    rules = IdentityRules(limits={**IdentityRules().limits, "user_id": 2, "member_card": 2})
    build_graph(store=graph_store, rules=rules)
    nodes = profiles(graph_store)
    assert nodes[("user_id", "M2")] == nodes[("user_id", "M3")]


def test_rules_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="unknown identifier type"):
        IdentityRules(limits={"shoe_size": 1})
    with pytest.raises(ValueError, match="priority"):
        IdentityRules(priority=["user_id"])


def later(*messages: dict, days: int = 10) -> list:  # type: ignore[type-arg]
    received = T0 + timedelta(days=days + 1)
    return [
        normalize(
            {**m, "timestamp": (T0 + timedelta(days=days, minutes=i)).isoformat()},
            received_at=received,
            source="t",
        )
        for i, m in enumerate(messages)
    ]


def test_new_events_update_the_graph_as_a_rebuild_would(graph_store: Store) -> None:
    from tsunagu.identity.graph import update_graph

    rules = IdentityRules()
    assert update_graph(store=graph_store, rules=rules).rebuilt  # no graph yet: a build
    graph_store.insert_events(
        later(
            # A new browser of M2, then M2 logs in on it.
            {"type": "page", "anonymousId": "b1", "name": "Top"},
            {
                "type": "identify",
                "userId": "M2",
                "anonymousId": "b1",
                "traits": {"email": "hanako.new@example.jp"},
            },
            # A guest who later turns out to be M2: two profiles become one.
            {"type": "identify", "anonymousId": "g1", "traits": {"email": "guest1@example.jp"}},
            {"type": "identify", "userId": "M2", "anonymousId": "g1"},
            # M1 already holds five anonymous ids (the limit): a sixth stays apart.
            {"type": "identify", "userId": "M1", "anonymousId": "a6"},
            # M4 on the family tablet too: refused.
            {
                "type": "identify",
                "userId": "M4",
                "anonymousId": "t1",
                "context": {"device": {"id": "T"}},
            },
        )
    )
    report = update_graph(store=graph_store, rules=rules)
    assert report.records >= 4 and report.merged_profiles >= 1 and report.refused_links >= 1
    updated = profiles(graph_store)
    assert updated[("anonymous_id", "b1")] == updated[("user_id", "M2")]
    assert updated[("email", "guest1@example.jp")] == updated[("user_id", "M2")]
    assert updated[("anonymous_id", "a6")] != updated[("user_id", "M1")]
    assert updated[("user_id", "M4")] != updated[("device_id", "T")]
    kinds = {
        k
        for (k,) in graph_store.query("SELECT DISTINCT kind FROM identity_audit WHERE NOT at_build")
    }
    assert kinds == {"merged", "refused"}
    build_graph(store=graph_store, rules=rules)
    assert profiles(graph_store) == updated
    # Nothing new: nothing changes.
    assert update_graph(store=graph_store, rules=rules).merged_profiles == 0
    assert profiles(graph_store) == updated


def test_detaching_a_shared_device_splits_the_profile_and_says_why(
    graph_store: Store, live_server
) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from tsunagu.identity.graph import split_identifier
    from tsunagu.keys import create_key

    rules = IdentityRules()
    graph_store.insert_events(
        later(
            # The store's demo iPad: M2 logs in on it once, then a guest leaves an e-mail on it.
            {
                "type": "identify",
                "userId": "M2",
                "anonymousId": "ipad-1",
                "context": {"device": {"id": "DEMO-IPAD"}},
            },
            {
                "type": "identify",
                "anonymousId": "ipad-2",
                "traits": {"email": "guest9@example.jp"},
                "context": {"device": {"id": "DEMO-IPAD"}},
            },
        )
    )
    build_graph(store=graph_store, rules=rules)
    glued = profiles(graph_store)
    assert glued[("email", "guest9@example.jp")] == glued[("user_id", "M2")]
    report = split_identifier(
        store=graph_store,
        rules=rules,
        kind="device_id",
        value="DEMO-IPAD",
        reason="store demo iPad",
    )
    split = profiles(graph_store)
    assert split[("email", "guest9@example.jp")] != split[("user_id", "M2")]
    assert split[("device_id", "DEMO-IPAD")] == report.profile_after != report.profile_before
    assert len(report.profiles_after) >= 3
    assert ("split", "device_id", "DEMO-IPAD", "detached: store demo iPad") in graph_store.query(
        "SELECT kind, type, value, reason FROM identity_audit"
    )
    # The detachment holds in later rebuilds, and over HTTP it takes an admin key.
    build_graph(store=graph_store, rules=rules)
    assert profiles(graph_store) == split
    _, admin = create_key(store=graph_store, name="ops", scope="admin")
    m2 = split[("user_id", "M2")]
    tablet = httpx.post(
        f"{live_server.url}/v1/profiles/{m2}/split",
        json={"type": "device_id", "value": "T", "reason": "family tablet"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert tablet.status_code == 200, tablet.text
    assert tablet.json()["profile_before"] == m2
    assert httpx.post(
        f"{live_server.url}/v1/profiles/{m2}/split", json={"type": "device_id", "value": "T"}
    ).status_code in (400, 401)
