"""Coupons counted for the marketer: per store, those issued to the store's customers (their
home store) and those redeemed at its till; per campaign, issued and redeemed. A redemption
counts unless its receipt was cancelled (voided)."""

from __future__ import annotations

from dataclasses import dataclass

from tsunagu.store import Store

_REDEEMED = "redemption_id IS NOT NULL AND voided_at IS NULL"
_HOME = "coalesce(p.home_store_id, json_extract_string(p.traits, '$.home_store_id'))"


@dataclass(frozen=True, slots=True)
class StoreTally:
    store_id: str | None
    """None: coupons issued to customers with no home store."""
    name: str | None
    issued: int
    """To customers whose home store it is."""
    redeemed: int
    """At this store's till."""
    discount_yen: int
    amount_yen: int
    """The purchases the redemptions were made on."""


@dataclass(frozen=True, slots=True)
class CampaignTally:
    campaign_id: str
    name: str
    issued: int
    redeemed: int
    discount_yen: int
    amount_yen: int

    @property
    def redemption_rate(self) -> float | None:
        return self.redeemed / self.issued if self.issued else None


def coupons_by_store(*, store: Store, campaign_id: str | None = None) -> list[StoreTally]:
    """Each store with a coupon issued to its customers or redeemed at it (of `campaign_id`,
    or of every campaign), by store id; the customers without a home store last."""
    only = "WHERE c.campaign_id = ?" if campaign_id is not None else ""
    params = [campaign_id] * 2 if campaign_id is not None else []
    rows = store.query(
        "WITH i AS (SELECT " + _HOME + " AS store_id, count(*) AS n FROM coupons c "
        "LEFT JOIN profile_traits p USING (profile_id) " + only + " GROUP BY 1), "
        "r AS (SELECT store_id, count(*) AS n, sum(discount_yen) AS d, sum(amount_yen) AS a "
        "FROM coupons c " + (only + " AND " if only else "WHERE ") + _REDEEMED + " GROUP BY 1) "
        "SELECT store_id, s.name, coalesce(i.n, 0), coalesce(r.n, 0), coalesce(r.d, 0), "
        "coalesce(r.a, 0) FROM i FULL JOIN r USING (store_id) LEFT JOIN stores s USING (store_id) "
        "ORDER BY store_id IS NULL, store_id",
        params,
    )
    return [StoreTally(s, name, int(i), int(r), int(d), int(a)) for s, name, i, r, d, a in rows]


def coupons_by_campaign(*, store: Store) -> list[CampaignTally]:
    """Each campaign that issued a coupon, the newest first."""
    rows = store.query(
        "SELECT m.campaign_id, m.name, count(*), count(*) FILTER (" + _REDEEMED + "), "
        "coalesce(sum(c.discount_yen) FILTER (" + _REDEEMED + "), 0), "
        "coalesce(sum(c.amount_yen) FILTER (" + _REDEEMED + "), 0) "
        "FROM coupons c JOIN campaigns m USING (campaign_id) "
        "GROUP BY m.campaign_id, m.name, m.created_at ORDER BY m.created_at DESC, m.campaign_id"
    )
    return [CampaignTally(c, name, int(i), int(r), int(d), int(a)) for c, name, i, r, d, a in rows]
