from __future__ import annotations

import httpx
import pytest

from tests.identity.test_graph import MEMBERS, events
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.identity.graph import build_graph
from tsunagu.identity.profiles import get_profile, lookup
from tsunagu.identity.rules import IdentityRules
from tsunagu.keys import create_key
from tsunagu.store import Store


@pytest.fixture
def built(store: Store, tmp_path) -> Store:  # type: ignore[no-untyped-def]
    from tsunagu.catalog.imports import import_master

    members = tmp_path / "members.csv"
    members.write_text(MEMBERS, encoding="utf-8")
    import_master(store=store, kind="members", path=members)
    store.insert_events(
        events(
            {"type": "identify", "userId": "M1", "anonymousId": "a1"},
            {
                "type": "track",
                "event": "Order Completed",
                "anonymousId": "a1",
                "context": {"channel": "web"},
                "properties": {"revenue": 5400},
            },
            {
                "type": "track",
                "event": "Store Visited",
                "userId": "M1",
                "properties": {"store_id": "S001"},
            },
            {
                "type": "track",
                "event": "Order Completed",
                "anonymousId": "card:2000000000011",
                "context": {"channel": "store", "traits": {"member_card": "2000000000011"}},
                "properties": {"store_id": "S001", "revenue": 12000},
            },
        )
    )
    build_graph(store=store, rules=IdentityRules())
    return store


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("member_card", "2000-0000-0001-1"),
        ("email", "TARO@example.jp"),
        ("phone", "０９０１２３４５６７８"),
        (None, "M1"),
        (None, "a1"),
    ],
)
def test_any_identifier_in_any_spelling_finds_the_profile(
    built: Store, kind: str | None, value: str
) -> None:
    assert lookup(store=built, rules=IdentityRules(), kind=kind, value=value) == lookup(
        store=built, rules=IdentityRules(), kind="user_id", value="M1"
    )


def test_profile_has_identifiers_member_traits_and_cross_channel_figures(built: Store) -> None:
    profile = get_profile(
        store=built,
        profile_id=lookup(store=built, rules=IdentityRules(), kind="user_id", value="M1"),
    )
    assert profile.identifiers["member_card"] == ["2000000000011"]
    assert profile.traits["name"] == "山田 太郎"
    computed = profile.computed
    assert (computed["orders_online"], computed["spend_online"]) == (1, 5400)
    assert (computed["orders_store"], computed["spend_store"]) == (1, 12000)
    assert computed["home_store_id"] == "S001"
    assert set(computed["channels"]) == {"web", "store"}
    assert computed["last_store_visit"].endswith("Z")
    assert computed["favourite_categories"] == []  # no products in these events
    assert profile.trait_sources["name"] == "members"
    assert profile.traits["registered_at"] == "2025-01-01T01:00:00Z"


def test_unknown_or_bad_identifiers(built: Store) -> None:
    with pytest.raises(NotFound):
        lookup(store=built, rules=IdentityRules(), kind="email", value="nobody@example.jp")
    with pytest.raises(InvalidInput):
        lookup(store=built, rules=IdentityRules(), kind="shoe", value="27")
    with pytest.raises(NotFound):
        get_profile(store=built, profile_id="p_nope")


def test_profile_api_needs_a_key(live_server, built: Store) -> None:  # type: ignore[no-untyped-def]
    _, key = create_key(store=built, name="staff-screen", scope="read")
    url = live_server.url + "/v1/profiles/lookup"
    params = {"type": "member_card", "value": "2000000000011"}
    assert httpx.get(url, params=params).status_code == 401
    found = httpx.get(url, params=params, headers={"Authorization": f"Bearer {key}"})
    assert found.status_code == 200, found.text
    profile = found.json()
    assert profile["identifiers"]["user_id"] == ["M1"]
    again = httpx.get(
        f"{live_server.url}/v1/profiles/{profile['profile_id']}",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert again.json() == profile
    missing = httpx.get(url, params={"value": "nobody"}, headers={"Authorization": f"Bearer {key}"})
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "value"
    bad = httpx.get(
        url, params={"type": "shoe", "value": "1"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "type"


def test_timeline_is_cross_channel_newest_first_paged_and_filtered(
    built: Store, live_server
) -> None:  # type: ignore[no-untyped-def]
    from tsunagu.identity.profiles import timeline

    pid = lookup(store=built, rules=IdentityRules(), kind="user_id", value="M1")
    first = timeline(store=built, profile_id=pid, limit=2)
    assert [i["event"] for i in first.items] == ["Order Completed", "Store Visited"]
    assert first.items[0]["channel"] == "store" and first.items[0]["properties"]["revenue"] == 12000
    assert first.next_before
    rest = timeline(store=built, profile_id=pid, limit=2, before=first.next_before)
    assert [i["type"] for i in rest.items] == ["track", "identify"] and rest.next_before is None
    assert [i["channel"] for i in timeline(store=built, profile_id=pid, channel="store").items] == [
        "store",
        "store",
    ]
    with pytest.raises(InvalidInput):
        timeline(store=built, profile_id=pid, before="not a cursor")
    _, key = create_key(store=built, name="staff", scope="read")
    page = httpx.get(
        f"{live_server.url}/v1/profiles/{pid}/timeline",
        params={"limit": 3, "channel": "web"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert page.status_code == 200 and {i["channel"] for i in page.json()["items"]} == {"web"}
    bad = httpx.get(
        f"{live_server.url}/v1/profiles/{pid}/timeline",
        params={"channel": "fax"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert bad.status_code == 400
