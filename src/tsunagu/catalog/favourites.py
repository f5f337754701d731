""" "Your favourite is in stock nearby": for each item a customer favourited (online, in the app
or on LINE), the nearest stores that have it available.

The favourites are the customer's "Product Added to Wishlist" events, newest first, read from
the analytics table (every channel, one customer; analytics/facts.py, which the caller brings up
to date). The place is the one asked about, else where the customer's device last was (a
store's beacon or the app's GPS: `context.location`), else their home store (the store of most
of their store visits and purchases, else the one on their member record).
"""

from __future__ import annotations

from pydantic import BaseModel

from tsunagu.catalog.inventory import Availability, availability
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.store import Store

WISHLIST = "Product Added to Wishlist"


class Location(BaseModel):
    lat: float
    lon: float
    source: str
    """"query", "last_location" or "home_store"."""
    store_id: str | None = None


class FavouriteAvailability(BaseModel):
    sku: str
    name: str | None
    stores: list[Availability]


class FavouritesResult(BaseModel):
    profile_id: str
    location: Location
    items: list[FavouriteAvailability]


def favourites(*, store: Store, profile_id: str, limit: int = 20) -> list[str]:
    """The skus the customer favourited, the latest first."""
    if not store.query("SELECT 1 FROM analytics_profiles WHERE profile_id = ?", [profile_id]):
        if not store.query(
            "SELECT 1 FROM identity_nodes WHERE profile_id = ? LIMIT 1", [profile_id]
        ):
            raise NotFound(f"no profile {profile_id!r}", field="profile_id")
        return []
    rows = store.query(
        "SELECT sku FROM analytics_events WHERE pid = (SELECT pid FROM analytics_profiles "
        f"WHERE profile_id = ?) AND event = '{WISHLIST}' AND sku IS NOT NULL "
        "GROUP BY sku ORDER BY max(ts) DESC, sku LIMIT ?",
        [profile_id, limit],
    )
    return [r[0] for r in rows]


def last_location(*, store: Store, profile_id: str) -> Location | None:
    """Where the customer's device last was (a store's beacon, the app's GPS)."""
    rows = store.query(
        "SELECT lat, lon FROM analytics_events WHERE pid = (SELECT pid FROM analytics_profiles "
        "WHERE profile_id = ?) AND lat IS NOT NULL AND lon IS NOT NULL ORDER BY r DESC LIMIT 1",
        [profile_id],
    )
    if not rows:
        return None
    return Location(lat=rows[0][0], lon=rows[0][1], source="last_location")


def home_location(*, store: Store, profile_id: str) -> Location | None:
    rows = store.query(
        "SELECT s.store_id, s.lat, s.lon FROM stores s WHERE s.lat IS NOT NULL AND s.store_id = "
        "coalesce((SELECT home_store_id FROM profile_traits WHERE profile_id = $1), "
        " (SELECT min(m.home_store_id) FROM members m JOIN identity_nodes n "
        "  ON n.type = 'user_id' AND n.value = m.member_id WHERE n.profile_id = $1))",
        [profile_id],
    )
    if not rows:
        return None
    store_id, lat, lon = rows[0]
    return Location(lat=lat, lon=lon, source="home_store", store_id=store_id)


def favourites_availability(
    *,
    store: Store,
    profile_id: str,
    lat: float | None = None,
    lon: float | None = None,
    radius_km: float | None = None,
    stores_per_item: int = 3,
) -> FavouritesResult:
    if (lat is None) != (lon is None):
        raise InvalidInput(
            "lat and lon: give both or neither", field="lat" if lat is None else "lon"
        )
    skus = favourites(store=store, profile_id=profile_id)
    if lat is not None and lon is not None:
        where = Location(lat=lat, lon=lon, source="query")
    else:
        found = last_location(store=store, profile_id=profile_id) or home_location(
            store=store, profile_id=profile_id
        )
        if found is None:
            raise InvalidInput(
                "lat: where the customer is is not known (no location, no home store); give lat "
                "and lon",
                field="lat",
            )
        where = found
    names = dict(
        store.query(
            "SELECT sku, name FROM products WHERE sku IN (SELECT unnest(?::VARCHAR[]))", [skus]
        )
    )
    items = [
        FavouriteAvailability(
            sku=sku,
            name=names.get(sku),
            stores=availability(
                store=store,
                sku=sku,
                lat=where.lat,
                lon=where.lon,
                radius_km=radius_km,
                limit=stores_per_item,
            ).stores,
        )
        for sku in skus
    ]
    return FavouritesResult(profile_id=profile_id, location=where, items=items)
