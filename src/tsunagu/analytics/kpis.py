"""KPIs per day, week or month, for the whole business or per store.

Definitions (the tests hold a plain-Python reading to the same answers):

- Periods are local calendar days, weeks (Monday first) or months from `from` to `to`.
- Active customers: customers with an event of their own in the period, per channel and in
  all; what the retailer sends ("Message Sent", "Coupon Issued", "Catalog Sent") does not count.
- Orders, revenue (`properties.revenue`, else `total`; JPY), AOV = revenue / orders, buyers,
  purchase frequency = orders / buyers, repeat rate = share of buyers with two or more orders
  in the period, new buyers (their first order ever falls in the period) and returning buyers.
- Coupons issued ("Coupon Issued") and redeemed ("Coupon Redeemed") in the period, and the
  redemption rate = redeemed / issued.
- Per store (`by_store`): the same figures from events at each store (orders at its tills,
  visits, redemptions); coupons issued belong to no store.
- `totals` are over the whole range (customers counted once).
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tsunagu.analytics.engine import Engine
from tsunagu.exceptions import InvalidInput
from tsunagu.store.sql import literal

SENT_BY_RETAILER = ("Message Sent", "Coupon Issued", "Catalog Sent")
MAX_PERIODS = 1000


class KpiQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: date | None = Field(default=None, alias="from", description="first day (local)")
    to: date | None = Field(default=None, description="last day (local)")
    grain: Literal["day", "week", "month"] = "day"
    store_id: str | None = Field(default=None, max_length=200, description="one store's figures")
    by_store: bool = Field(default=False, description="a row per period and store")


class Kpis(BaseModel):
    period: date | None
    """The period's first day; null in totals."""
    store_id: str | None = None
    active_customers: int
    active_by_channel: dict[str, int]
    orders: int
    revenue: int
    revenue_online: int
    revenue_store: int
    """Revenue of orders at the till (the store channel); online is the rest."""
    aov: float
    buyers: int
    purchase_frequency: float
    repeat_rate: float
    new_buyers: int
    returning_buyers: int
    coupons_issued: int
    coupons_redeemed: int
    coupon_redemption_rate: float | None


class KpiResult(BaseModel):
    grain: str
    periods: list[Kpis]
    totals: list[Kpis]
    """One row for the range (one per store with `by_store`)."""
    seconds: float


def run_kpis(*, engine: Engine, query: KpiQuery, periods: bool = True) -> KpiResult:
    """The figures per period and for the range; with `periods` False the range's alone
    (`periods` empty: Home's comparison with the previous period)."""
    started = time.perf_counter()
    if query.from_ and query.to and query.to < query.from_:
        raise InvalidInput("to: must not be before from", field="to")
    if (
        query.from_
        and query.to
        and query.grain == "day"
        and (query.to - query.from_).days > MAX_PERIODS
    ):
        raise InvalidInput(f"to: at most {MAX_PERIODS} days at a time", field="to")
    return KpiResult(
        grain=query.grain,
        periods=_figures(engine, query, totals=False) if periods else [],
        totals=_figures(engine, query, totals=True),
        seconds=round(time.perf_counter() - started, 4),
    )


def _figures(engine: Engine, query: KpiQuery, *, totals: bool) -> list[Kpis]:
    """A row per period (and store), or with `totals` one for the range (per store)."""
    period = (
        "CAST(NULL AS DATE)" if totals else f"CAST(date_trunc({literal(query.grain)}, day) AS DATE)"
    )
    where = ["true"]
    if query.from_ is not None:
        where.append(f"day >= DATE '{query.from_.isoformat()}'")
    if query.to is not None:
        where.append(f"day <= DATE '{query.to.isoformat()}'")
    if query.store_id is not None:
        where.append(f"store_id = {literal(query.store_id)}")
    if query.by_store:
        where.append("store_id IS NOT NULL")
    store = "store_id" if query.by_store else "CAST(NULL AS VARCHAR)"
    scope = " AND ".join(where)
    sent = ", ".join(literal(e) for e in SENT_BY_RETAILER)
    keys = "p, s"
    # A buyer is new when their first order ever is in the period (or, for totals, the range).
    start = f"DATE '{(query.from_ or date.min).isoformat()}'" if totals else "per.p"
    active = engine.rows(
        f"SELECT {period} AS p, {store} AS s, channel, count(DISTINCT pid) FROM analytics_events "
        f"WHERE {scope} AND event NOT IN ({sent}) GROUP BY GROUPING SETS (({keys}, channel), ({keys}))"
    )
    # First orders ever, wherever they were, for new vs returning.
    orders = engine.rows(
        "WITH firsts AS (SELECT pid, min(day) AS first_day FROM analytics_events "
        "WHERE event = 'Order Completed' GROUP BY pid), "
        f"per AS (SELECT {period} AS p, {store} AS s, pid, count(*) AS n, "
        "coalesce(sum(revenue), 0) AS revenue, "
        "coalesce(sum(revenue) FILTER (WHERE channel = 'store'), 0) AS in_store "
        f"FROM analytics_events WHERE {scope} AND event = 'Order Completed' GROUP BY ALL) "
        "SELECT per.p, per.s, sum(n), sum(revenue), sum(in_store), count(*), "
        "count(*) FILTER (WHERE n >= 2), "
        f"count(*) FILTER (WHERE f.first_day >= {start}) "
        "FROM per JOIN firsts f USING (pid) GROUP BY ALL"
    )
    coupons = engine.rows(
        f"SELECT {period} AS p, {store} AS s, count(*) FILTER (WHERE event = 'Coupon Issued'), "
        "count(*) FILTER (WHERE event = 'Coupon Redeemed') FROM analytics_events "
        f"WHERE {scope} AND event IN ('Coupon Issued', 'Coupon Redeemed') GROUP BY ALL"
    )
    rows: dict[tuple[Any, Any], dict[str, Any]] = {}

    def row(p: Any, s: Any) -> dict[str, Any]:
        return rows.setdefault((p, s), {"by_channel": {}, "active": 0})

    for p, s, channel, n in active:
        if channel is None:
            row(p, s)["active"] = int(n)
        else:
            row(p, s)["by_channel"][channel] = int(n)
    for p, s, n_orders, revenue, in_store, buyers, repeat, new in orders:
        row(p, s).update(orders=int(n_orders), revenue=round(revenue), buyers=int(buyers))
        row(p, s)["in_store"] = round(in_store)
        row(p, s).update(repeat=int(repeat), new=int(new))
    for p, s, issued, redeemed in coupons:
        row(p, s).update(issued=int(issued), redeemed=int(redeemed))
    out = []
    for (p, s), r in sorted(rows.items(), key=lambda kv: (kv[0][0] or date.min, kv[0][1] or "")):
        n_orders, revenue, buyers = r.get("orders", 0), r.get("revenue", 0), r.get("buyers", 0)
        issued, redeemed = r.get("issued", 0), r.get("redeemed", 0)
        out.append(
            Kpis(
                period=p,
                store_id=s,
                active_customers=r["active"],
                active_by_channel=dict(sorted(r["by_channel"].items())),
                orders=n_orders,
                revenue=revenue,
                revenue_online=revenue - r.get("in_store", 0),
                revenue_store=r.get("in_store", 0),
                aov=round(revenue / n_orders, 2) if n_orders else 0.0,
                buyers=buyers,
                purchase_frequency=round(n_orders / buyers, 6) if buyers else 0.0,
                repeat_rate=round(r.get("repeat", 0) / buyers, 6) if buyers else 0.0,
                new_buyers=r.get("new", 0),
                returning_buyers=buyers - r.get("new", 0),
                coupons_issued=issued,
                coupons_redeemed=redeemed,
                coupon_redemption_rate=round(redeemed / issued, 6) if issued else None,
            )
        )
    return out
