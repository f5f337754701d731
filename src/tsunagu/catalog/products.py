"""Products and stores as every channel reads them: the same rows for the EC site, the app, the
call centre and the till. Changes come from the imports and from `put_product` / `put_store`,
each recorded with its time (catalog/history.py)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tsunagu.catalog.history import record_changes
from tsunagu.catalog.search import query_words
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.store import Store, utcnow
from tsunagu.store.times import UtcTime

EARTH_KM = 6371.0088
MAX_OFFSET = 1_000_000_000


def distance_sql(lat: str, lon: str, lat0: float | str, lon0: float | str) -> str:
    """Great-circle distance in km from (lat0, lon0), numbers or columns, to the columns `lat`,
    `lon`."""
    a, o = (x if isinstance(x, str) else repr(float(x)) for x in (lat0, lon0))
    return (
        f"(2 * {EARTH_KM} * asin(sqrt(pow(sin(radians({lat} - {a}) / 2), 2) + "
        f"cos(radians({a})) * cos(radians({lat})) * "
        f"pow(sin(radians({lon} - {o}) / 2), 2))))"
    )


class ProductWrite(BaseModel):
    """A product as `PUT /v1/products/{sku}` takes it (the whole record)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=500)
    category: str | None = Field(default=None, max_length=200)
    subcategory: str | None = Field(default=None, max_length=200)
    brand: str | None = Field(default=None, max_length=200)
    price: int | None = Field(default=None, ge=0, description="JPY")
    repeat_purchase: bool | None = None
    launched_on: date | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class Product(ProductWrite):
    model_config = ConfigDict(extra="ignore")

    sku: str
    updated_at: UtcTime


class ProductPage(BaseModel):
    items: list[Product]
    total: int
    limit: int
    offset: int


_PRODUCT_COLUMNS = (
    "sku, name, category, subcategory, brand, price, repeat_purchase, launched_on, attributes, "
    "updated_at"
)


def _product(row: tuple[Any, ...]) -> Product:
    values = dict(zip([c.strip() for c in _PRODUCT_COLUMNS.split(",")], row, strict=True))
    values["attributes"] = json.loads(values["attributes"]) if values["attributes"] else {}
    return Product.model_validate(values)


def search_products(
    *,
    store: Store,
    q: str | None = None,
    category: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> ProductPage:
    """Products whose name has every word of `q` (width, kana and kanji folded; see
    catalog/search.py), in `category`, by sku, one page."""
    if not 1 <= limit <= 10_000:
        raise InvalidInput("limit: from 1 to 10,000", field="limit")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(f"offset: from 0 to {MAX_OFFSET:,}", field="offset")
    where: list[str] = ["true"]
    params: list[Any] = []
    for norm, reading in query_words(q or ""):
        where.append("(contains(s.norm, ?) OR contains(s.reading, ?))")
        params += [norm, reading]
    if category:
        where.append("(p.category = ? OR p.subcategory = ?)")
        params += [category, category]
    base = f"FROM products p LEFT JOIN product_search s USING (sku) WHERE {' AND '.join(where)}"
    total = int(store.scalar(f"SELECT count(*) {base}", params))
    rows = store.query(
        f"SELECT {', '.join('p.' + c.strip() for c in _PRODUCT_COLUMNS.split(','))} {base} "
        "ORDER BY p.sku LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return ProductPage(items=[_product(r) for r in rows], total=total, limit=limit, offset=offset)


def get_product(*, store: Store, sku: str) -> Product:
    rows = store.query(f"SELECT {_PRODUCT_COLUMNS} FROM products WHERE sku = ?", [sku])
    if not rows:
        raise NotFound(f"no product {sku!r}", field="sku")
    return _product(rows[0])


def put_product(*, store: Store, sku: str, product: ProductWrite) -> Product:
    """Create or replace one product; the change is recorded with its time."""
    _check_key(sku, "sku")
    _put(store, "products", {"sku": sku, **product.model_dump()})
    return get_product(store=store, sku=sku)


_TYPES = {
    "products": {"price": "BIGINT", "repeat_purchase": "BOOLEAN", "launched_on": "DATE"},
    "stores": {"lat": "DOUBLE", "lon": "DOUBLE", "opened_on": "DATE"},
}


def _put(store: Store, kind: str, record: dict[str, Any]) -> None:
    """Write one record of `kind` (its columns, `attributes` as JSON) and its history row."""
    values = {**record, "attributes": json.dumps(record["attributes"], ensure_ascii=False)}
    values["updated_at"] = utcnow()
    types = {**_TYPES[kind], "attributes": "JSON", "updated_at": "TIMESTAMP"}
    select = ", ".join(f"?::{types.get(c, 'VARCHAR')} AS {c}" for c in values)
    with store.transaction() as cur:
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _changed AS SELECT {select}", list(values.values())
        )
        cur.execute(f"INSERT OR REPLACE INTO {kind} BY NAME SELECT * FROM _changed")
        record_changes(cur, kind, "_changed", source="api")
        cur.execute("DROP TABLE _changed")


def _check_key(value: str, field: str) -> None:
    if not value.strip() or len(value) > 200:
        raise InvalidInput(f"{field}: must be 1-200 characters, not blank", field=field)


# -- stores --------------------------------------------------------------------------------------


class StoreWrite(BaseModel):
    """A store as `PUT /v1/stores/{store_id}` takes it (the whole record)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=500)
    prefecture: str | None = Field(default=None, max_length=50)
    city: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    postcode: str | None = Field(default=None, max_length=20)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    store_type: str | None = Field(default=None, max_length=100)
    opened_on: date | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class StorePublic(StoreWrite):
    model_config = ConfigDict(extra="ignore")

    store_id: str
    updated_at: UtcTime
    distance_km: float | None = None
    """From the point asked about, when one was."""


STORE_COLUMNS = (
    "store_id, name, prefecture, city, address, postcode, lat, lon, store_type, opened_on, "
    "attributes, updated_at"
)


def store_of(row: tuple[Any, ...], distance: float | None = None) -> StorePublic:
    values = dict(zip([c.strip() for c in STORE_COLUMNS.split(",")], row, strict=True))
    values["attributes"] = json.loads(values["attributes"]) if values["attributes"] else {}
    values["distance_km"] = None if distance is None else round(distance, 3)
    return StorePublic.model_validate(values)


def list_stores(
    *,
    store: Store,
    prefecture: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    radius_km: float | None = None,
    limit: int = 100,
) -> list[StorePublic]:
    """Stores, by id; with `lat` and `lon`, nearest first with their distance (stores without
    coordinates left out), within `radius_km` if given; `prefecture` matches from its start
    (東京 finds 東京都)."""
    if (lat is None) != (lon is None):
        raise InvalidInput(
            "lat and lon: give both or neither", field="lat" if lat is None else "lon"
        )
    where: list[str] = ["true"]
    params: list[Any] = []
    if prefecture:
        where.append("starts_with(prefecture, ?)")
        params.append(prefecture)
    distance = "CAST(NULL AS DOUBLE)"
    order = "store_id"
    if lat is not None and lon is not None:
        distance = distance_sql("lat", "lon", lat, lon)
        where.append("lat IS NOT NULL AND lon IS NOT NULL")
        order = "distance, store_id"
        if radius_km is not None:
            where.append(f"{distance} <= ?")
            params.append(radius_km)
    rows = store.query(
        f"SELECT {STORE_COLUMNS}, {distance} AS distance FROM stores WHERE {' AND '.join(where)} "
        f"ORDER BY {order} LIMIT ?",
        [*params, limit],
    )
    return [store_of(r[:-1], r[-1]) for r in rows]


def get_store(*, store: Store, store_id: str) -> StorePublic:
    rows = store.query(f"SELECT {STORE_COLUMNS} FROM stores WHERE store_id = ?", [store_id])
    if not rows:
        raise NotFound(f"no store {store_id!r}", field="store_id")
    return store_of(rows[0])


def put_store(*, store: Store, store_id: str, body: StoreWrite) -> StorePublic:
    """Create or replace one store; the change is recorded with its time."""
    _check_key(store_id, "store_id")
    _put(store, "stores", {"store_id": store_id, **body.model_dump()})
    return get_store(store=store, store_id=store_id)


def as_of(*, store: Store, kind: str, key: str, when: datetime) -> dict[str, Any] | None:
    """The product or store `key` as it was at `when` (naive UTC), from its history."""
    rows = store.query(
        "SELECT data FROM master_history WHERE kind = ? AND key = ? AND changed_at <= ? "
        "ORDER BY changed_at DESC, rowid DESC LIMIT 1",
        [kind, key, when],
    )
    return json.loads(rows[0][0]) if rows and rows[0][0] else None
