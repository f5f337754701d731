"""The store-staff screen's one call, on the sample retailer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import serve_app
from tsunagu.analytics.fans import FanRules, compute_fan_levels
from tsunagu.api import create_app
from tsunagu.clienteling import clienteling
from tsunagu.config import Settings
from tsunagu.exceptions import NotFound
from tsunagu.identity.rules import IdentityRules
from tsunagu.keys import create_key
from tsunagu.store import Store


def a_member_with_a_card_and_online_life(store: Store) -> tuple[str, str, str]:
    """(member card, member id, profile id) of a member active online with a coupon issued."""
    return store.query(
        "SELECT m.member_card, m.member_id, ap.profile_id FROM members m "
        "JOIN identity_nodes n ON n.type = 'user_id' AND n.value = m.member_id "
        "JOIN analytics_profiles ap ON ap.profile_id = n.profile_id "
        "JOIN analytics_events e ON e.pid = ap.pid "
        "WHERE m.member_card IS NOT NULL GROUP BY ALL "
        "ORDER BY count(*) FILTER (WHERE e.event = 'Coupon Issued') > 0 DESC, "
        "count(*) FILTER (WHERE e.channel IN ('web', 'app') AND e.event = 'Product Viewed') DESC, "
        "m.member_id LIMIT 1"
    )[0]


def test_one_call_tells_staff_who_it_is_and_what_to_offer(
    sample_copy: Store, tmp_path: Path
) -> None:
    store = sample_copy
    compute_fan_levels(store=store, rules=FanRules())
    card, member, profile_id = a_member_with_a_card_and_online_life(store)
    shop = store.query(
        "SELECT store_id FROM inventory WHERE quantity > 0 GROUP BY store_id ORDER BY count(*) DESC LIMIT 1"
    )[0][0]
    view = clienteling(
        store=store, rules=IdentityRules(), data_dir=tmp_path, store_id=shop, member_card=card
    )
    assert view.profile_id == profile_id and member in view.member_ids
    assert view.summary.get("name") and "orders_store" in view.summary
    assert view.fan_level is not None and view.fan_level["level"] >= 1
    # Recent online activity: the member's latest views, carts and favourites, newest first.
    assert view.recent_online and all(
        a.channel in ("web", "app", "line") for a in view.recent_online
    )
    times = [a.at for a in view.recent_online]
    assert times == sorted(times, reverse=True)
    stock = {
        r[0]
        for r in store.query(
            "SELECT sku FROM inventory WHERE store_id = ? AND quantity > 0", [shop]
        )
    }
    assert view.recommendations and {r.sku for r in view.recommendations} <= stock
    # Coupons: the issued ones not redeemed and not expired at the end of the data.
    redeemed = {c.code for c in view.coupons} & {
        r[0]
        for r in store.query(
            "SELECT json_extract_string(raw, '$.properties.code') FROM events WHERE event = 'Coupon Redeemed'"
        )
    }
    assert not redeemed
    # The app's QR code carries the member id (or TYPE:VALUE): the same customer.
    by_qr = clienteling(
        store=store, rules=IdentityRules(), data_dir=tmp_path, store_id=shop, qr=f"user_id:{member}"
    )
    assert by_qr.profile_id == profile_id
    with pytest.raises(NotFound):
        clienteling(
            store=store,
            rules=IdentityRules(),
            data_dir=tmp_path,
            store_id=shop,
            member_card="9999999999999",
        )
    with pytest.raises(NotFound):
        clienteling(
            store=store,
            rules=IdentityRules(),
            data_dir=tmp_path,
            store_id="S-NOPE",
            member_card=card,
        )


def test_clienteling_over_http(sample_copy: Store, tmp_path: Path) -> None:
    card, _, profile_id = a_member_with_a_card_and_online_life(sample_copy)
    shop = sample_copy.query("SELECT min(store_id) FROM stores")[0][0]
    _, key = create_key(store=sample_copy, name="staff", scope="read")
    with serve_app(create_app(Settings(data_dir=tmp_path), store=sample_copy)) as url:
        got = httpx.get(
            f"{url}/v1/clienteling",
            params={"store_id": shop, "member_card": card},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert got.status_code == 200, got.text
        assert got.json()["profile_id"] == profile_id
        nobody = httpx.get(
            f"{url}/v1/clienteling",
            params={"store_id": shop},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert nobody.status_code == 400 and nobody.json()["error"]["field"] == "member_card"
