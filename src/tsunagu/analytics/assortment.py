"""Regional assortment: what the people around a store buy, online and in store, against what
the store stocks and sells (the Hema idea: let the neighbourhood's demand shape the shelf).

- The catchment is the customers whose home store (most of their store visits and purchases,
  else the one on their member record) is this store or lies within `radius_km` of it, or whose
  member postcode shares the store's postal district (the first three digits).
- Their demand: the orders of the last `days` days (any channel, any store) with each product,
  and how many of them bought it.
- The store: what it has on hand now, and its own sales of each product in those days.
- Two lists: products in demand nearby that the store does not stock (none on hand), most
  wanted first; and products stocked with little local demand (fewer than `low_demand` local
  buyers), most stock first. And the same per category: share of local demand against share of
  the store's sales and of its stocked lines.
"""

from __future__ import annotations

import csv
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tsunagu.catalog.products import distance_sql
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.store import Store


class AssortmentQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store_id: str = Field(min_length=1, max_length=200)
    radius_km: float = Field(default=10.0, gt=0, le=500)
    days: int = Field(default=90, ge=1, le=3650)
    low_demand: int = Field(default=2, ge=1, description="local buyers below this are low demand")
    top: int = Field(default=50, ge=1, le=1000)


class ProductLine(BaseModel):
    sku: str
    name: str | None
    category: str | None
    local_buyers: int
    local_orders: int
    store_orders: int
    on_hand: int


class CategoryLine(BaseModel):
    category: str
    local_buyers: int
    local_orders: int
    share_of_local_demand: float
    store_orders: int
    share_of_store_sales: float
    stocked_products: int
    share_of_stocked: float


class AssortmentReport(BaseModel):
    store_id: str
    catchment_customers: int
    days: int
    missing: list[ProductLine]
    """In demand nearby, not on hand here."""
    slow: list[ProductLine]
    """On hand here, little demand nearby."""
    categories: list[CategoryLine]
    seconds: float


def assortment_report(*, store: Store, query: AssortmentQuery) -> AssortmentReport:
    started = time.perf_counter()
    found = store.query(
        "SELECT lat, lon, postcode FROM stores WHERE store_id = ?", [query.store_id]
    )
    if not found:
        raise NotFound(f"store_id: no store {query.store_id!r}", field="store_id")
    lat, lon, postcode = found[0]
    near = "s.store_id = $store"
    params: dict[str, Any] = {"store": query.store_id}
    if lat is not None and lon is not None:  # a store without coordinates: its own members
        near = f"({near} OR {distance_sql('s.lat', 's.lon', lat, lon)} <= $radius)"
        params["radius"] = query.radius_km
    district = (postcode or "").replace("-", "")[:3]
    last = store.scalar("SELECT max(day) FROM analytics_events")
    if last is None:
        raise InvalidInput("events: nothing to report on yet", field="events")
    since = last - timedelta(days=query.days - 1)
    cur = store.cursor()
    try:
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _catchment AS SELECT DISTINCT ap.pid FROM analytics_profiles ap "
            "WHERE ap.profile_id IN ("
            " SELECT t.profile_id FROM profile_traits t JOIN stores s ON s.store_id = t.home_store_id "
            f" WHERE {near} "
            " UNION SELECT n.profile_id FROM members m JOIN identity_nodes n "
            " ON n.type = 'user_id' AND n.value = m.member_id "
            " LEFT JOIN stores s ON s.store_id = m.home_store_id "
            f" WHERE ({near.replace('s.store_id = $store', 'm.home_store_id = $store')}) "
            "   OR ($district <> '' AND left(replace(m.postcode, '-', ''), 3) = $district))",
            {**params, "district": district},
        )
        customers = int(cur.execute("SELECT count(*) FROM _catchment").fetchall()[0][0])
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _lines AS "
            "SELECT p.sku, p.name, p.category, coalesce(d.buyers, 0) AS local_buyers, "
            "coalesce(d.orders, 0) AS local_orders, coalesce(o.orders, 0) AS store_orders, "
            "coalesce(v.quantity, 0) AS on_hand FROM products p "
            "LEFT JOIN (SELECT sku, count(DISTINCT pid) AS buyers, count(*) AS orders FROM ("
            "  SELECT DISTINCT e.pid, e.seq, unnest(e.skus) AS sku FROM analytics_events e "
            "  WHERE e.event = 'Order Completed' AND e.day >= $since "
            "  AND e.pid IN (SELECT pid FROM _catchment)) GROUP BY sku) d USING (sku) "
            "LEFT JOIN (SELECT sku, count(*) AS orders FROM (SELECT DISTINCT seq, unnest(skus) AS sku "
            "  FROM analytics_events WHERE event = 'Order Completed' AND store_id = $store "
            "  AND day >= $since) GROUP BY sku) o USING (sku) "
            "LEFT JOIN inventory v ON v.sku = p.sku AND v.store_id = $store",
            {"since": since, "store": query.store_id},
        )
        columns = "sku, name, category, local_buyers, local_orders, store_orders, on_hand"
        missing = cur.execute(
            f"SELECT {columns} FROM _lines WHERE on_hand = 0 AND local_buyers > 0 "
            "ORDER BY local_buyers DESC, local_orders DESC, sku LIMIT ?",
            [query.top],
        ).fetchall()
        slow = cur.execute(
            f"SELECT {columns} FROM _lines WHERE on_hand > 0 AND local_buyers < ? "
            "ORDER BY on_hand DESC, local_buyers, store_orders, sku LIMIT ?",
            [query.low_demand, query.top],
        ).fetchall()
        categories = cur.execute(
            "SELECT coalesce(category, '(none)'), sum(local_buyers), sum(local_orders), "
            "sum(local_orders) / nullif(sum(sum(local_orders)) OVER (), 0), sum(store_orders), "
            "sum(store_orders) / nullif(sum(sum(store_orders)) OVER (), 0), "
            "count(*) FILTER (WHERE on_hand > 0), "
            "count(*) FILTER (WHERE on_hand > 0) / nullif(sum(count(*) FILTER (WHERE on_hand > 0)) OVER (), 0) "
            "FROM _lines GROUP BY 1 ORDER BY 3 DESC, 1"
        ).fetchall()
        cur.execute("DROP TABLE _lines")
        cur.execute("DROP TABLE _catchment")
    finally:
        cur.close()
    names = ("sku", "name", "category", "local_buyers", "local_orders", "store_orders", "on_hand")
    return AssortmentReport(
        store_id=query.store_id,
        catchment_customers=customers,
        days=query.days,
        missing=[ProductLine(**dict(zip(names, r, strict=True))) for r in missing],
        slow=[ProductLine(**dict(zip(names, r, strict=True))) for r in slow],
        categories=[
            CategoryLine(
                category=c,
                local_buyers=int(b or 0),
                local_orders=int(o or 0),
                share_of_local_demand=round(float(sd or 0), 6),
                store_orders=int(so or 0),
                share_of_store_sales=round(float(ss or 0), 6),
                stocked_products=int(st or 0),
                share_of_stocked=round(float(sst or 0), 6),
            )
            for c, b, o, sd, so, ss, st, sst in categories
        ],
        seconds=round(time.perf_counter() - started, 4),
    )


def write_csv(report: AssortmentReport, path: Path) -> None:
    """Both lists as one table: section, then the product's figures."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["section", *ProductLine.model_fields])
        for section, lines in (("missing", report.missing), ("slow", report.slow)):
            for line in lines:
                writer.writerow([section, *line.model_dump().values()])
