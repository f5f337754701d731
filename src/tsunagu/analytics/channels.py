"""Channel journeys: who buys where, research online / purchase offline, showrooming, O2O lift.

Definitions (the tests hold a plain-Python reading to the same answers):

- A purchase is an "Order Completed" in [from, to); in a store (channel `store`) or online
  (`web`, `app`). Purchases on other channels (call centre, catalogue, LINE) count in revenue
  and orders but make no one an online or a store buyer.
- Buyers are online-only, store-only or omnichannel (bought both online and in a store in the
  period); `other_only` bought on other channels alone. Their share of buyers and of revenue
  (`properties.revenue`, else `total`), and spend per buyer.
- O2O lift: spend per omnichannel buyer over spend per single-channel buyer (online-only and
  store-only together); also over each.
- O2O lift per store: the same ratio among buyers whose home store (the profile's
  `home_store_id`) is that store; per category: among buyers of orders with an item of the
  category, their online / store orders of it making them omnichannel or single-channel, and
  spend the revenue of those orders.
- ROPO (research online, purchase offline): a store order is ROPO when the customer viewed one
  of its products ("Product Viewed" on web or app, same sku) in the `ropo_days` days before it.
  The rate is over all store orders; per store, and per category of the line items (an item is
  ROPO when its own sku was viewed).
- Showrooming: an online order is showroomed when the customer was in a store ("Store
  Visited", or an order in a store) in the `showrooming_days` days before it. The rate is over
  all online orders; per category of the order's line items (each category once per order);
  per store, the showroomed orders whose last store visit before the order (the latest to
  arrive of simultaneous ones) was there, as a
  share of all showroomed orders.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tsunagu.analytics.engine import Engine
from tsunagu.analytics.filters import ts_literal, utc_bounds

ONLINE = ("web", "app")
SEGMENTS = ("online_only", "store_only", "omnichannel", "other_only")


class ChannelsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: date | datetime | None = Field(default=None, alias="from")
    to: date | datetime | None = None
    ropo_days: int = Field(default=7, ge=1, le=365)
    showrooming_days: int = Field(default=7, ge=1, le=365)


class Segment(BaseModel):
    segment: str
    buyers: int
    share_of_buyers: float
    orders: int
    revenue: int
    share_of_revenue: float
    spend_per_buyer: float


class Rate(BaseModel):
    key: str
    """A store id or a category."""
    matched: int
    total: int
    rate: float


class Behaviour(BaseModel):
    orders: int
    total: int
    rate: float
    customers: int
    by_store: list[Rate]
    by_category: list[Rate]


class Lift(BaseModel):
    key: str
    """A store id or a category."""
    omnichannel_buyers: int
    single_channel_buyers: int
    lift: float | None
    """None without buyers of both kinds."""


class ChannelMix(BaseModel):
    """Who bought where and the O2O lift: what Home shows, without ROPO and showrooming."""

    buyers: int
    orders: int
    revenue: int
    segments: list[Segment]
    o2o_lift: float | None
    """Spend per omnichannel buyer / spend per single-channel buyer."""
    o2o_lift_vs_online_only: float | None
    o2o_lift_vs_store_only: float | None

    def omnichannel_share(self) -> float | None:
        """The share of buyers who bought both online and in a store."""
        return next((s.share_of_buyers for s in self.segments if s.segment == "omnichannel"), None)


class ChannelsResult(ChannelMix):
    o2o_by_store: list[Lift]
    o2o_by_category: list[Lift]
    ropo: Behaviour
    showrooming: Behaviour
    seconds: float


def _ratio(a: float, b: float) -> float:
    return round(a / b, 6) if b else 0.0


def channel_mix(*, engine: Engine, query: ChannelsQuery, timezone: str) -> ChannelMix:
    lo, hi = utc_bounds(query.from_, query.to, timezone)
    period = _period("o.ts", lo, hi)
    online = ", ".join(f"'{c}'" for c in ONLINE)
    segments = {
        row[0]: row[1:]
        for row in engine.rows(
            "SELECT CASE WHEN online AND store THEN 'omnichannel' WHEN online THEN 'online_only' "
            "WHEN store THEN 'store_only' ELSE 'other_only' END AS segment, count(*), "
            "sum(orders), sum(revenue) FROM ("
            f" SELECT pid, bool_or(channel IN ({online})) AS online, bool_or(channel = 'store') "
            "  AS store, count(*) AS orders, coalesce(sum(revenue), 0) AS revenue "
            f" FROM analytics_events o WHERE event = 'Order Completed' AND {period} GROUP BY pid"
            ") GROUP BY segment"
        )
    }
    buyers = sum(int(v[0]) for v in segments.values())
    orders = sum(int(v[1]) for v in segments.values())
    revenue = round(sum(v[2] for v in segments.values()))
    listed = []
    for name in SEGMENTS:
        n, o, rev = (round(x) for x in segments.get(name, (0, 0, 0)))
        listed.append(
            Segment(
                segment=name,
                buyers=n,
                share_of_buyers=_ratio(n, buyers),
                orders=o,
                revenue=rev,
                share_of_revenue=_ratio(rev, revenue),
                spend_per_buyer=round(rev / n, 2) if n else 0.0,
            )
        )
    spend = {s.segment: s for s in listed}
    omni = spend["omnichannel"].spend_per_buyer
    single_buyers = spend["online_only"].buyers + spend["store_only"].buyers
    single_revenue = spend["online_only"].revenue + spend["store_only"].revenue

    def lift(base: float) -> float | None:
        return round(omni / base, 6) if base and spend["omnichannel"].buyers else None

    return ChannelMix(
        buyers=buyers,
        orders=orders,
        revenue=revenue,
        segments=listed,
        o2o_lift=lift(single_revenue / single_buyers if single_buyers else 0.0),
        o2o_lift_vs_online_only=lift(spend["online_only"].spend_per_buyer),
        o2o_lift_vs_store_only=lift(spend["store_only"].spend_per_buyer),
    )


def run_channels(*, engine: Engine, query: ChannelsQuery, timezone: str) -> ChannelsResult:
    started = time.perf_counter()
    mix = channel_mix(engine=engine, query=query, timezone=timezone)
    lo, hi = utc_bounds(query.from_, query.to, timezone)
    period = _period("o.ts", lo, hi)
    return ChannelsResult(
        **mix.model_dump(),
        o2o_by_store=_lifts(engine, *_by_home_store(period)),
        o2o_by_category=_lifts(engine, *_by_category(period)),
        ropo=_behaviour(engine, *_ropo_sql(period, query.ropo_days)),
        showrooming=_behaviour(
            engine, *_showrooming_sql(period, query.showrooming_days), store_share=True
        ),
        seconds=round(time.perf_counter() - started, 4),
    )


def _by_home_store(period: str) -> tuple[str, str]:
    """Buyers with the home store of their profile as the key."""
    online = ", ".join(f"'{c}'" for c in ONLINE)
    buyers = (
        f"SELECT pid, bool_or(channel IN ({online})) AS online, bool_or(channel = 'store') AS "
        "store, coalesce(sum(revenue), 0) AS spend FROM analytics_events o "
        f"WHERE event = 'Order Completed' AND {period} GROUP BY pid"
    )
    return (
        f"SELECT t.home_store_id AS key, b.* FROM ({buyers}) b "
        "JOIN analytics_profiles ap USING (pid) "
        "JOIN profile_traits t ON t.profile_id = ap.profile_id WHERE t.home_store_id IS NOT NULL"
    ), "key"


def _by_category(period: str) -> tuple[str, str]:
    """Buyers of each category: their orders with an item of it."""
    online = ", ".join(f"'{c}'" for c in ONLINE)
    items = (
        "SELECT pid, channel, revenue, unnest(list_distinct(coalesce(categories, [category]))) "
        f"AS key FROM analytics_events o WHERE event = 'Order Completed' AND {period}"
    )
    return (
        f"SELECT pid, key, bool_or(channel IN ({online})) AS online, bool_or(channel = 'store') "
        f"AS store, coalesce(sum(revenue), 0) AS spend FROM ({items}) WHERE key IS NOT NULL "
        "GROUP BY pid, key"
    ), "key"


def _lifts(engine: Engine, buyers: str, key: str) -> list[Lift]:
    """Spend per omnichannel buyer over spend per single-channel buyer, per `key`."""
    rows = engine.rows(
        f"SELECT {key}, count(*) FILTER (WHERE online AND store), "
        "coalesce(sum(spend) FILTER (WHERE online AND store), 0), "
        "count(*) FILTER (WHERE online <> store), "
        f"coalesce(sum(spend) FILTER (WHERE online <> store), 0) FROM ({buyers}) "
        f"GROUP BY {key} ORDER BY {key}"
    )
    return [
        Lift(
            key=k,
            omnichannel_buyers=int(omni),
            single_channel_buyers=int(single),
            lift=round((omni_spend / omni) / (single_spend / single), 6)
            if omni and single and single_spend
            else None,
        )
        for k, omni, omni_spend, single, single_spend in rows
    ]


def _period(column: str, lo: datetime | None, hi: datetime | None) -> str:
    parts = ["true"]
    if lo is not None:
        parts.append(f"{column} >= {ts_literal(lo)}")
    if hi is not None:
        parts.append(f"{column} < {ts_literal(hi)}")
    return " AND ".join(parts)


def _behaviour(
    engine: Engine, orders_sql: str, items_sql: str, *, store_share: bool = False
) -> Behaviour:
    """From a query of orders (pid, store, matched) and one of line items (category,
    matched). With `store_share`, a store's total is every matched order (its share of them)."""
    ((total, matched, customers),) = engine.rows(
        f"SELECT count(*), count(*) FILTER (WHERE matched), count(DISTINCT pid) "
        f"FILTER (WHERE matched) FROM ({orders_sql})"
    )
    per_store = "sum(count(*)) OVER ()" if store_share else "count(*)"
    by_store = _rates(
        engine.rows(
            f"SELECT store, count(*) FILTER (WHERE matched), {per_store} FROM ({orders_sql}) "
            f"WHERE store IS NOT NULL{' AND matched' if store_share else ''} GROUP BY store"
        )
    )
    by_category = _rates(
        engine.rows(
            f"SELECT category, count(*) FILTER (WHERE matched), count(*) FROM ({items_sql}) "
            "WHERE category IS NOT NULL GROUP BY category"
        )
    )
    return Behaviour(
        orders=int(matched),
        total=int(total),
        rate=_ratio(matched, total),
        customers=int(customers),
        by_store=by_store,
        by_category=by_category,
    )


def _rates(rows: list[tuple[Any, ...]]) -> list[Rate]:
    rates = [Rate(key=k, matched=int(m), total=int(t), rate=_ratio(m, t)) for k, m, t in rows]
    return sorted(rates, key=lambda r: (-r.matched, -r.total, r.key))


def _ropo_sql(period: str, days: int) -> tuple[str, str]:
    online = ", ".join(f"'{c}'" for c in ONLINE)
    items = (
        "SELECT o.seq, o.pid, o.ts, o.store_id, unnest(o.skus) AS sku "
        f"FROM analytics_events o WHERE o.event = 'Order Completed' AND o.channel = 'store' "
        f"AND {period}"
    )
    looked = (
        f"SELECT i.seq, i.sku, bool_or(v.pid IS NOT NULL) AS viewed FROM ({items}) i "
        "LEFT JOIN analytics_events v ON v.pid = i.pid AND v.sku = i.sku "
        f"AND v.event = 'Product Viewed' AND v.channel IN ({online}) "
        f"AND v.ts <= i.ts AND v.ts >= i.ts - INTERVAL {days} DAY GROUP BY i.seq, i.sku"
    )
    orders = (
        "SELECT o.pid, o.store_id AS store, coalesce(l.viewed, false) AS matched "
        "FROM analytics_events o LEFT JOIN ("
        f" SELECT seq, bool_or(viewed) AS viewed FROM ({looked}) GROUP BY seq"
        f") l ON l.seq = o.seq WHERE o.event = 'Order Completed' AND o.channel = 'store' "
        f"AND {period}"
    )
    lines = (
        "SELECT p.category, l.viewed AS matched FROM ("
        f" SELECT i.seq, i.sku, coalesce(k.viewed, false) AS viewed FROM ({items}) i "
        f" LEFT JOIN ({looked}) k ON k.seq = i.seq AND k.sku = i.sku"
        ") l LEFT JOIN products p ON p.sku = l.sku"
    )
    return orders, lines


def _showrooming_sql(period: str, days: int) -> tuple[str, str]:
    online = ", ".join(f"'{c}'" for c in ONLINE)
    orders = (
        "SELECT o.seq, o.pid, o.categories, arg_max(v.store_id, (v.ts, v.seq)) AS store, "
        "count(v.pid) > 0 AS matched FROM analytics_events o "
        "LEFT JOIN analytics_events v ON v.pid = o.pid "
        "AND (v.event = 'Store Visited' OR (v.event = 'Order Completed' AND v.channel = 'store')) "
        f"AND v.ts <= o.ts AND v.ts >= o.ts - INTERVAL {days} DAY "
        f"WHERE o.event = 'Order Completed' AND o.channel IN ({online}) AND {period} "
        "GROUP BY o.seq, o.pid, o.categories"
    )
    lines = f"SELECT unnest(categories) AS category, matched FROM ({orders})"
    return orders, lines
