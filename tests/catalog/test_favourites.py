from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.conftest import serve_app

from tsunagu.api import create_app
from tsunagu.catalog.favourites import favourites, favourites_availability, home_location
from tsunagu.config import Settings
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.keys import create_key
from tsunagu.store import Store


def a_fan_with_a_home_store(store: Store) -> str:
    """A profile with wishlist items of several channels and a home store with coordinates."""
    return store.query(
        "SELECT ap.profile_id FROM analytics_events e JOIN analytics_profiles ap USING (pid) "
        "JOIN profile_traits t USING (profile_id) JOIN stores s ON s.store_id = t.home_store_id "
        "WHERE e.event = 'Product Added to Wishlist' AND s.lat IS NOT NULL "
        "GROUP BY ap.profile_id ORDER BY count(DISTINCT e.sku) DESC, ap.profile_id LIMIT 1"
    )[0][0]


def test_favourites_are_every_channels_wishlist_newest_first(sample: tuple[Path, Store]) -> None:
    _, store = sample
    profile_id = a_fan_with_a_home_store(store)
    skus = favourites(store=store, profile_id=profile_id)
    # The plain reading: the profile's wishlist events in any channel, latest add first.
    want = store.query(
        "SELECT json_extract_string(e.raw, '$.properties.sku') AS sku, max(e.timestamp) FROM events e "
        "JOIN identity_nodes n ON (n.type = 'user_id' AND n.value = e.user_id) "
        "OR (n.type = 'anonymous_id' AND n.value = e.anonymous_id AND e.user_id IS NULL) "
        "WHERE n.profile_id = ? AND e.event = 'Product Added to Wishlist' GROUP BY 1 "
        "ORDER BY 2 DESC, 1",
        [profile_id],
    )
    assert skus == [w[0] for w in want]
    with pytest.raises(NotFound):
        favourites(store=store, profile_id="p_nobody")


def test_nearest_stores_with_each_favourite_from_home(sample_copy: Store) -> None:
    store = sample_copy
    profile_id = a_fan_with_a_home_store(store)
    home = home_location(store=store, profile_id=profile_id)
    assert home is not None and home.source == "home_store"
    got = favourites_availability(store=store, profile_id=profile_id, stores_per_item=3)
    assert [i.sku for i in got.items] == favourites(store=store, profile_id=profile_id)
    listed = [i for i in got.items if i.stores]
    assert listed  # the sample's stores stock most of the catalogue
    for item in listed:
        distances = [a.store.distance_km for a in item.stores]
        assert distances == sorted(distances) and all(a.available > 0 for a in item.stores)
        # No store with it is nearer than the ones listed.
        nearest = store.query(
            "SELECT min(2 * 6371.0088 * asin(sqrt(pow(sin(radians(s.lat - ?) / 2), 2) + "
            "cos(radians(?)) * cos(radians(s.lat)) * pow(sin(radians(s.lon - ?) / 2), 2)))) "
            "FROM inventory v JOIN stores s USING (store_id) WHERE v.sku = ? AND v.quantity > 0",
            [home.lat, home.lat, home.lon, item.sku],
        )[0][0]
        assert distances[0] == pytest.approx(nearest, abs=0.01)
    elsewhere = favourites_availability(
        store=store, profile_id=profile_id, lat=26.2124, lon=127.6809
    )
    assert elsewhere.location.source == "query"
    with pytest.raises(InvalidInput):
        favourites_availability(store=store, profile_id=profile_id, lat=35.0)


def test_favourites_over_http(sample_copy: Store, tmp_path: Path) -> None:
    profile_id = a_fan_with_a_home_store(sample_copy)
    _, read = create_key(store=sample_copy, name="app", scope="read")
    with serve_app(create_app(Settings(data_dir=tmp_path), store=sample_copy)) as url:
        got = httpx.get(
            f"{url}/v1/profiles/{profile_id}/favourites/availability",
            headers={"Authorization": f"Bearer {read}"},
        )
        assert got.status_code == 200, got.text
        assert got.json()["location"]["source"] == "home_store" and got.json()["items"]
        missing = httpx.get(
            f"{url}/v1/profiles/p_nobody/favourites/availability",
            headers={"Authorization": f"Bearer {read}"},
        )
        assert missing.status_code == 404


def test_the_last_known_location_comes_before_the_home_store(sample: tuple[Path, Store]) -> None:
    _, store = sample
    profile_id, lat, lon = store.query(
        "SELECT n.profile_id, json_extract(e.raw, '$.context.location.latitude')::DOUBLE, "
        "json_extract(e.raw, '$.context.location.longitude')::DOUBLE FROM events e "
        "JOIN identity_nodes n ON n.type = 'user_id' AND n.value = e.user_id "
        "WHERE json_extract(e.raw, '$.context.location.latitude') IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY n.profile_id ORDER BY e.timestamp DESC, e.rowid DESC) = 1 "
        "ORDER BY n.profile_id LIMIT 1"
    )[0]
    got = favourites_availability(store=store, profile_id=profile_id)
    assert got.location.source == "last_location"
    assert (got.location.lat, got.location.lon) == pytest.approx((lat, lon))
