"""Stock by store: snapshots and deltas in, "which stores near here have it" out.

A snapshot sets a store's count of a sku; a delta adds to it (a sale -1, a delivery +24) and
may not take it below zero. Every change is kept in `inventory_history` with its time, so the
stock of a day can be asked later (`stock_on`). Availability is what is on hand less what is
held for click-and-collect (catalog/reservations.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from tsunagu.catalog.products import STORE_COLUMNS, StorePublic, distance_sql, store_of
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.store import Store, utcnow
from tsunagu.store.times import UtcTime

MAX_RADIUS_KM = 20_000.0


class StockChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store_id: str = Field(min_length=1, max_length=200)
    sku: str = Field(min_length=1, max_length=200)
    quantity: int | None = Field(default=None, ge=0, description="a count (snapshot)")
    delta: int | None = Field(default=None, description="a change (delta): -1 sold, +24 delivered")

    @model_validator(mode="after")
    def _one(self) -> StockChange:
        if (self.quantity is None) == (self.delta is None):
            raise ValueError("quantity: give a quantity (a count) or a delta (a change), not both")
        return self


class StockUpdate(BaseModel):
    """`POST /v1/inventory`."""

    model_config = ConfigDict(extra="forbid")

    items: list[StockChange] = Field(min_length=1, max_length=10_000)
    as_of: datetime | None = Field(
        default=None, description="when counted (local time without an offset); default now"
    )


class StockResult(BaseModel):
    applied: int
    changed_at: datetime


def apply_stock(
    *, store: Store, update: StockUpdate, source: str = "api", timezone: str = "Asia/Tokyo"
) -> StockResult:
    """Apply counts and changes in order, in one transaction: all, or (a bad item) none."""
    when = utcnow() if update.as_of is None else local_to_utc(update.as_of, timezone)
    pairs = sorted({(c.store_id, c.sku) for c in update.items})
    with store.transaction() as cur:
        known = {r[0] for r in cur.execute("SELECT store_id FROM stores").fetchall()}
        for i, change in enumerate(update.items):
            if change.store_id not in known:
                raise InvalidInput(
                    f"items.{i}.store_id: no store {change.store_id!r}", field=f"items.{i}.store_id"
                )
        stock = {
            (s, k): int(q)
            for s, k, q in cur.execute(
                "SELECT v.store_id, v.sku, v.quantity FROM inventory v JOIN "
                "(SELECT unnest(?::VARCHAR[]) AS store_id, unnest(?::VARCHAR[]) AS sku) p "
                "USING (store_id, sku)",
                [[s for s, _ in pairs], [k for _, k in pairs]],
            ).fetchall()
        }
        history = []
        for i, change in enumerate(update.items):
            key = (change.store_id, change.sku)
            after = (
                change.quantity
                if change.quantity is not None
                else stock.get(key, 0) + (change.delta or 0)
            )
            if after < 0:
                raise InvalidInput(
                    f"items.{i}.delta: would leave {after} of {change.sku} at {change.store_id}; "
                    "stock cannot go below zero",
                    field=f"items.{i}.delta",
                )
            stock[key] = after
            history.append((change.store_id, change.sku, after, change.delta))
        table = pa.table(
            {
                "store_id": [h[0] for h in history],
                "sku": [h[1] for h in history],
                "quantity": pa.array([h[2] for h in history], pa.int64()),
                "delta": pa.array([h[3] for h in history], pa.int64()),
            }
        )
        cur.register("_stock", table)
        cur.execute(
            "INSERT INTO inventory_history SELECT store_id, sku, quantity, delta, ?, ? FROM _stock",
            [when, source],
        )
        cur.unregister("_stock")
        final = pa.table(
            {
                "store_id": [k[0] for k in pairs],
                "sku": [k[1] for k in pairs],
                "quantity": pa.array([stock[k] for k in pairs], pa.int64()),
            }
        )
        cur.register("_final", final)
        cur.execute(
            "INSERT OR REPLACE INTO inventory (store_id, sku, quantity, updated_at) "
            "SELECT store_id, sku, quantity, ? FROM _final",
            [when],
        )
        cur.unregister("_final")
    return StockResult(applied=len(update.items), changed_at=when)


def local_to_utc(moment: datetime, timezone: str) -> datetime:
    """Naive UTC of `moment` (one without an offset is local to `timezone`)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(timezone))
    return aware.astimezone(UTC).replace(tzinfo=None)


def stock_on(*, store: Store, store_id: str, sku: str, when: datetime) -> int | None:
    """How many of `sku` `store_id` had at `when` (naive UTC), from the history; None if no
    figure was known by then."""
    rows = store.query(
        "SELECT quantity FROM inventory_history WHERE store_id = ? AND sku = ? AND changed_at <= ? "
        "ORDER BY changed_at DESC, rowid DESC LIMIT 1",
        [store_id, sku, when],
    )
    return int(rows[0][0]) if rows else None


_PAIR = {
    "type": "array",
    "minItems": 2,
    "maxItems": 2,
    "items": {"type": ["string", "integer"]},
    "description": "[sku, quantity]",
}


class StockOnDay(BaseModel):
    store_id: str
    at: UtcTime
    """Naive UTC (JSON: with Z)."""
    items: list[Annotated[tuple[str, int], WithJsonSchema(_PAIR)]]
    """(sku, quantity) of what the store had on hand then (quantity above zero)."""


def stocked_at(*, store: Store, store_id: str, when: datetime) -> StockOnDay:
    """Everything `store_id` had on hand at `when` (naive UTC), from the history."""
    if not store.query("SELECT 1 FROM stores WHERE store_id = ?", [store_id]):
        raise NotFound(f"store_id: no store {store_id!r}", field="store_id")
    rows = store.query(
        "SELECT sku, quantity FROM (SELECT sku, quantity, row_number() OVER (PARTITION BY sku "
        " ORDER BY changed_at DESC, rowid DESC) AS latest FROM inventory_history "
        " WHERE store_id = ? AND changed_at <= ?) WHERE latest = 1 AND quantity > 0 ORDER BY sku",
        [store_id, when],
    )
    return StockOnDay(store_id=store_id, at=when, items=[(k, int(q)) for k, q in rows])


class Availability(BaseModel):
    store: StorePublic
    quantity: int
    """On hand."""
    available: int
    """On hand less what is held for pickup."""


class AvailabilityResult(BaseModel):
    sku: str
    stores: list[Availability]


def availability(
    *,
    store: Store,
    sku: str,
    lat: float,
    lon: float,
    radius_km: float | None = None,
    limit: int = 20,
    now: datetime | None = None,
) -> AvailabilityResult:
    """Stores with `sku` available, nearest to (lat, lon) first, within `radius_km`."""
    if not -90 <= lat <= 90:
        raise InvalidInput("lat: not a latitude", field="lat")
    if not -180 <= lon <= 180:
        raise InvalidInput("lon: not a longitude", field="lon")
    if radius_km is not None and not 0 < radius_km <= MAX_RADIUS_KM:
        raise InvalidInput(
            f"radius_km: more than 0, at most {MAX_RADIUS_KM:.0f}", field="radius_km"
        )
    distance = distance_sql("s.lat", "s.lon", lat, lon)
    within = f"AND {distance} <= {float(radius_km)!r}" if radius_km is not None else ""
    columns = ", ".join(f"s.{c.strip()}" for c in STORE_COLUMNS.split(","))
    rows = (
        store.prepared_cursor("SELECT 1")
        .execute(
            f"SELECT {columns}, {distance} AS distance, v.quantity, "
            "v.quantity - coalesce(h.held, 0) AS available "
            "FROM (SELECT store_id, quantity FROM inventory WHERE sku = $1 AND quantity > 0) v "
            "JOIN stores s USING (store_id) "
            "LEFT JOIN (SELECT store_id, sum(quantity) AS held FROM reservations "
            " WHERE sku = $1 AND status = 'held' AND expires_at > $2 GROUP BY store_id) h "
            "USING (store_id) "
            f"WHERE s.lat IS NOT NULL AND s.lon IS NOT NULL {within} "
            "AND v.quantity - coalesce(h.held, 0) > 0 ORDER BY distance, s.store_id LIMIT $3",
            [sku, now or utcnow(), limit],
        )
        .fetchall()
    )
    return AvailabilityResult(
        sku=sku,
        stores=[
            Availability(store=store_of(r[:-3], r[-3]), quantity=int(r[-2]), available=int(r[-1]))
            for r in rows
        ],
    )


def available_here(
    *, store: Store, store_id: str, skus: list[str], now: datetime | None = None
) -> dict[str, int]:
    """How many of each of `skus` the store has to sell now (stock less what is held); the ones
    it has none of are left out."""
    rows = store.query(
        "SELECT v.sku, v.quantity - coalesce(h.held, 0) FROM inventory v "
        "LEFT JOIN (SELECT sku, sum(quantity) AS held FROM reservations WHERE store_id = ? "
        " AND status = 'held' AND expires_at > ? GROUP BY sku) h USING (sku) "
        "WHERE v.store_id = ? AND v.sku = ANY(?) AND v.quantity - coalesce(h.held, 0) > 0",
        [store_id, now or utcnow(), store_id, skus],
    )
    return {sku: int(n) for sku, n in rows}
