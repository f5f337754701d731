"""Campaigns listed, and their coupons counted per store (issued to the store's customers,
redeemed at its till) and per campaign, held to a plain reading of the coupons."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

from tsunagu.activation.campaigns import CampaignCreate, create_campaign, list_campaigns
from tsunagu.activation.coupon_tallies import coupons_by_campaign, coupons_by_store
from tsunagu.activation.coupons import issue, redeem, void
from tsunagu.analytics.filters import parse
from tsunagu.store import Store, utcnow


def _campaign(store: Store, name: str) -> str:
    today = utcnow().date()
    body = {"name": name, "control_share": 0, "coupon": {
        "value_yen": 300, "valid_from": str(today - timedelta(days=1)),
        "valid_to": str(today + timedelta(days=30))}}  # fmt: skip
    return create_campaign(store=store, body=parse(CampaignCreate, body)).campaign_id


def test_coupons_per_store_and_per_campaign(sample_copy: Store) -> None:
    store = sample_copy
    homes = {  # the store the profile shops at, or the one its member record names
        pid: column or json.loads(traits).get("home_store_id")
        for pid, column, traits in store.query(
            "SELECT profile_id, home_store_id, traits FROM profile_traits ORDER BY profile_id "
            "LIMIT 60"
        )
    }
    assert None in homes.values() or len(set(homes.values())) > 3
    first, second = _campaign(store, "春のクーポン"), _campaign(store, "夏のクーポン")
    assert [c.campaign_id for c in list_campaigns(store=store)] == [second, first]
    ids = list(homes)
    made = issue(store=store, campaign_id=first, profile_ids=ids[:40])
    made += issue(store=store, campaign_id=second, profile_ids=ids[30:])
    tills = ["S001", "S002", "S003"]
    for n, coupon in enumerate(made[::3]):
        redeem(store=store, code=coupon.code, store_id=tills[n % 3], receipt_id=f"R{n}",
               amount_yen=2000 + n)  # fmt: skip
    void(store=store, code=made[0].code)  # its receipt was cancelled: not a redemption
    redeemed = made[3::3]
    by_store = coupons_by_store(store=store)
    issued = Counter(homes[c.profile_id] for c in made if c.profile_id)
    at_till = Counter(tills[n % 3] for n, _ in enumerate(made[::3]) if n)
    assert {s.store_id: s.issued for s in by_store if s.issued} == dict(issued)
    assert {s.store_id: s.redeemed for s in by_store if s.redeemed} == dict(at_till)
    assert sum(s.redeemed for s in by_store) == len(redeemed)
    assert sum(s.discount_yen for s in by_store) == 300 * len(redeemed)
    assert sum(s.amount_yen for s in by_store) == sum(2000 + n for n in range(1, len(redeemed) + 1))
    names = dict(store.query("SELECT store_id, name FROM stores"))
    assert all(s.name == names.get(s.store_id) for s in by_store)
    assert [s.store_id for s in by_store if s.store_id] == sorted(s.store_id for s in by_store
                                                                  if s.store_id)  # fmt: skip
    # One campaign's only.
    mine = [c for c in made if c.campaign_id == first]
    only = coupons_by_store(store=store, campaign_id=first)
    assert sum(s.issued for s in only) == len(mine) == 40
    assert sum(s.redeemed for s in only) == sum(1 for c in redeemed if c.campaign_id == first)
    campaigns = coupons_by_campaign(store=store)
    assert [c.campaign_id for c in campaigns] == [second, first]
    for tally in campaigns:
        theirs = [c for c in made if c.campaign_id == tally.campaign_id]
        used = [c for c in redeemed if c.campaign_id == tally.campaign_id]
        assert (tally.issued, tally.redeemed) == (len(theirs), len(used))
        assert tally.redemption_rate == len(used) / len(theirs)


def test_no_coupons_count_nothing(store: Store) -> None:
    assert coupons_by_store(store=store) == [] and coupons_by_campaign(store=store) == []
    assert list_campaigns(store=store) == []
