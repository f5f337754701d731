"""Products, stores, stock near me and click-and-collect, as every channel calls them."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import httpx
import pytest

from tsunagu.catalog.inventory import StockUpdate, apply_stock, availability, stock_on
from tsunagu.catalog.products import (
    ProductWrite,
    StoreWrite,
    as_of,
    get_product,
    list_stores,
    put_product,
    put_store,
    search_products,
)
from tsunagu.catalog.reservations import (
    ReservationCreate,
    cancel,
    expire,
    get_reservation,
    pick_up,
    reserve,
)
from tsunagu.exceptions import Conflict, InvalidInput, NotFound
from tsunagu.keys import create_key
from tsunagu.store import Store, utcnow

TOKYO = (35.6812, 139.7671)
STORES = {
    "S-TOKYO": ("東京駅前店", "東京都", 35.6812, 139.7671),
    "S-YOKOHAMA": ("横浜店", "神奈川県", 35.4657, 139.6223),
    "S-SHINJUKU": ("新宿店", "東京都", 35.6896, 139.7006),
    "S-OSAKA": ("梅田店", "大阪府", 34.7025, 135.4959),
    "S-NOWHERE": ("倉庫", "東京都", None, None),
}
PRODUCTS = {
    "SHO-1": ("痛くないパンプス（ブラウン）", "靴"),
    "SHO-2": ("本革の靴 ローファー", "靴"),
    "TOP-1": ("コットンTシャツ（ボルドー）", "トップス"),
    "TOP-2": ("ﾘﾈﾝｼｬﾂ ﾎﾜｲﾄ", "トップス"),
    "BAG-1": ("Leather Tote BAG", "バッグ"),
}


@pytest.fixture
def shop(store: Store) -> Store:
    for store_id, (name, pref, lat, lon) in STORES.items():
        put_store(
            store=store,
            store_id=store_id,
            body=StoreWrite(name=name, prefecture=pref, lat=lat, lon=lon),
        )
    for sku, (name, category) in PRODUCTS.items():
        put_product(
            store=store, sku=sku, product=ProductWrite(name=name, category=category, price=5000)
        )
    return store


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("ぱんぷす", {"SHO-1"}),  # katakana found by hiragana
        ("ﾊﾟﾝﾌﾟｽ", {"SHO-1"}),  # half-width kana
        ("いたくない", {"SHO-1"}),  # kanji found by its reading
        ("くつ", {"SHO-2"}),  # 靴
        ("ＴシャツＴ", set()),
        ("ｔシャツ ぼるどー", {"TOP-1"}),  # full/half width, every word must be there
        ("リネン", {"TOP-2"}),  # half-width name, full-width query
        ("tote bag", {"BAG-1"}),  # case
        ("", set(PRODUCTS)),
    ],
)
def test_search_folds_width_kana_and_kanji(shop: Store, q: str, found: set[str]) -> None:
    assert {p.sku for p in search_products(store=shop, q=q).items} == found


def test_search_by_category_pages_and_history(shop: Store) -> None:
    page = search_products(store=shop, category="靴", limit=1)
    assert page.total == 2 and len(page.items) == 1 and page.items[0].sku == "SHO-1"
    assert search_products(store=shop, category="靴", limit=1, offset=1).items[0].sku == "SHO-2"
    before = utcnow()
    put_product(
        store=shop,
        sku="SHO-1",
        product=ProductWrite(name="痛くないパンプス（黒）", category="靴", price=4500),
    )
    assert get_product(store=shop, sku="SHO-1").price == 4500
    assert as_of(store=shop, kind="products", key="SHO-1", when=before)["price"] == 5000
    assert {p.sku for p in search_products(store=shop, q="くろ").items} == {"SHO-1"}
    with pytest.raises(NotFound):
        get_product(store=shop, sku="NOPE")


def test_stores_nearest_first_and_by_prefecture(shop: Store) -> None:
    near = list_stores(store=shop, lat=TOKYO[0], lon=TOKYO[1])
    assert [s.store_id for s in near] == ["S-TOKYO", "S-SHINJUKU", "S-YOKOHAMA", "S-OSAKA"]
    assert near[0].distance_km == pytest.approx(0, abs=0.01)
    assert near[1].distance_km == pytest.approx(6.1, abs=0.3)  # Tokyo station to Shinjuku
    assert near[3].distance_km == pytest.approx(403, abs=5)  # to Osaka, great circle
    within = list_stores(store=shop, lat=TOKYO[0], lon=TOKYO[1], radius_km=30)
    assert [s.store_id for s in within] == ["S-TOKYO", "S-SHINJUKU", "S-YOKOHAMA"]
    assert {s.store_id for s in list_stores(store=shop, prefecture="東京")} == {
        "S-TOKYO",
        "S-SHINJUKU",
        "S-NOWHERE",
    }
    with pytest.raises(InvalidInput) as err:
        list_stores(store=shop, lat=35.0)
    assert err.value.field == "lon"


def test_counts_and_changes_apply_in_order_and_are_kept(shop: Store) -> None:
    t0 = datetime(2026, 11, 1, 10, 0)
    apply_stock(
        store=shop,
        update=StockUpdate.model_validate(
            {
                "items": [
                    {"store_id": "S-TOKYO", "sku": "SHO-1", "quantity": 5},
                    {"store_id": "S-TOKYO", "sku": "SHO-1", "delta": -2},
                    {"store_id": "S-SHINJUKU", "sku": "SHO-1", "quantity": 1},
                ],
                "as_of": t0.isoformat() + "+00:00",
            }
        ),
    )
    apply_stock(
        store=shop,
        update=StockUpdate.model_validate(
            {
                "items": [{"store_id": "S-TOKYO", "sku": "SHO-1", "delta": 10}],
                "as_of": (t0 + timedelta(days=1)).isoformat() + "+00:00",
            }
        ),
    )
    assert stock_on(store=shop, store_id="S-TOKYO", sku="SHO-1", when=t0 + timedelta(hours=1)) == 3
    assert stock_on(store=shop, store_id="S-TOKYO", sku="SHO-1", when=t0 + timedelta(days=2)) == 13
    assert (
        stock_on(store=shop, store_id="S-TOKYO", sku="SHO-1", when=t0 - timedelta(days=1)) is None
    )
    # A change that would go below zero: nothing of the update is applied.
    with pytest.raises(InvalidInput) as err:
        apply_stock(
            store=shop,
            update=StockUpdate.model_validate(
                {
                    "items": [
                        {"store_id": "S-OSAKA", "sku": "SHO-1", "quantity": 4},
                        {"store_id": "S-TOKYO", "sku": "SHO-1", "delta": -14},
                    ]
                }
            ),
        )
    assert err.value.field == "items.1.delta"
    assert shop.scalar("SELECT count(*) FROM inventory WHERE store_id = 'S-OSAKA'") == 0
    with pytest.raises(InvalidInput) as err:
        apply_stock(
            store=shop,
            update=StockUpdate.model_validate(
                {"items": [{"store_id": "S-X", "sku": "A", "quantity": 1}]}
            ),
        )
    assert err.value.field == "items.0.store_id"


def stocked(shop: Store) -> Store:
    apply_stock(
        store=shop,
        update=StockUpdate.model_validate(
            {
                "items": [
                    {"store_id": "S-TOKYO", "sku": "SHO-1", "quantity": 0},
                    {"store_id": "S-SHINJUKU", "sku": "SHO-1", "quantity": 5},
                    {"store_id": "S-YOKOHAMA", "sku": "SHO-1", "quantity": 2},
                    {"store_id": "S-OSAKA", "sku": "SHO-1", "quantity": 9},
                    {"store_id": "S-NOWHERE", "sku": "SHO-1", "quantity": 50},
                ]
            }
        ),
    )
    return shop


def test_availability_nearest_first_with_stock_only(shop: Store) -> None:
    stocked(shop)
    got = availability(store=shop, sku="SHO-1", lat=TOKYO[0], lon=TOKYO[1])
    # Tokyo has none; the warehouse has no coordinates.
    assert [(a.store.store_id, a.available) for a in got.stores] == [
        ("S-SHINJUKU", 5),
        ("S-YOKOHAMA", 2),
        ("S-OSAKA", 9),
    ]
    assert got.stores[0].store.distance_km < got.stores[1].store.distance_km
    near = availability(store=shop, sku="SHO-1", lat=TOKYO[0], lon=TOKYO[1], radius_km=10)
    assert [a.store.store_id for a in near.stores] == ["S-SHINJUKU"]
    assert availability(store=shop, sku="NOPE", lat=TOKYO[0], lon=TOKYO[1]).stores == []


def test_holds_never_oversell_under_concurrent_requests(shop: Store) -> None:
    stocked(shop)
    results: list[str] = []

    def one(i: int) -> None:
        try:
            reserve(
                store=shop,
                request=ReservationCreate(store_id="S-SHINJUKU", sku="SHO-1", user_id=f"M{i}"),
            )
            results.append("held")
        except Conflict:
            results.append("refused")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("held") == 5 and results.count("refused") == 15
    assert (
        availability(store=shop, sku="SHO-1", lat=TOKYO[0], lon=TOKYO[1]).stores[0].store.store_id
        == "S-YOKOHAMA"
    )


def test_pickup_expiry_and_cancel_are_events_and_move_stock(shop: Store) -> None:
    stocked(shop)
    now = utcnow()
    held = reserve(
        store=shop,
        request=ReservationCreate(
            store_id="S-YOKOHAMA", sku="SHO-1", quantity=2, hours=2, user_id="M1"
        ),
        now=now,
    )
    with pytest.raises(Conflict):
        reserve(
            store=shop,
            request=ReservationCreate(store_id="S-YOKOHAMA", sku="SHO-1", user_id="M2"),
            now=now,
        )
    done = pick_up(store=shop, reservation_id=held.reservation_id, now=now + timedelta(hours=1))
    assert done.status == "picked_up"
    assert (
        shop.scalar(
            "SELECT quantity FROM inventory WHERE store_id = 'S-YOKOHAMA' AND sku = 'SHO-1'"
        )
        == 0
    )
    with pytest.raises(Conflict):
        pick_up(store=shop, reservation_id=held.reservation_id)
    late = reserve(
        store=shop,
        request=ReservationCreate(
            store_id="S-OSAKA", sku="SHO-1", quantity=9, hours=1, user_id="M3"
        ),
        now=now,
    )
    assert expire(store=shop, now=now + timedelta(hours=2)) == 1
    assert get_reservation(store=shop, reservation_id=late.reservation_id).status == "expired"
    gone = reserve(
        store=shop,
        request=ReservationCreate(store_id="S-OSAKA", sku="SHO-1", user_id="M4"),
        now=now + timedelta(hours=3),
    )
    assert (
        cancel(store=shop, reservation_id=gone.reservation_id, now=now + timedelta(hours=3)).status
        == "cancelled"
    )
    events = shop.query(
        "SELECT user_id, event, channel, json_extract_string(raw, '$.properties.reservation_id') "
        "FROM events ORDER BY timestamp, event"
    )
    assert ("M1", "Reservation Created", "store", held.reservation_id) in events
    assert ("M1", "Reservation Picked Up", "store", held.reservation_id) in events
    assert ("M3", "Reservation Expired", "store", late.reservation_id) in events
    assert ("M4", "Reservation Cancelled", "store", gone.reservation_id) in events
    assert expire(store=shop, now=now + timedelta(hours=9)) == 0  # nothing twice


def test_http_services(live_server) -> None:  # type: ignore[no-untyped-def]
    shop = live_server.store
    for store_id, (name, pref, lat, lon) in STORES.items():
        put_store(
            store=shop,
            store_id=store_id,
            body=StoreWrite(name=name, prefecture=pref, lat=lat, lon=lon),
        )
    _, read = create_key(store=shop, name="app", scope="read")
    _, admin = create_key(store=shop, name="ops", scope="admin")
    r, a = {"Authorization": f"Bearer {read}"}, {"Authorization": f"Bearer {admin}"}
    url = live_server.url
    body = {"name": "痛くないパンプス", "category": "靴", "price": 8900}
    assert httpx.put(f"{url}/v1/products/SHO-9", json=body, headers=r).status_code == 403
    assert httpx.put(f"{url}/v1/products/SHO-9", json=body, headers=a).status_code == 200
    bad = httpx.put(f"{url}/v1/products/SHO-9", json={**body, "price": -1}, headers=a)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "price"
    found = httpx.get(f"{url}/v1/products", params={"q": "ﾊﾟﾝﾌﾟｽ"}, headers=r).json()
    assert [p["sku"] for p in found["items"]] == ["SHO-9"]
    assert httpx.get(f"{url}/v1/products/NOPE", headers=r).status_code == 404
    stores = httpx.get(
        f"{url}/v1/stores", params={"lat": TOKYO[0], "lon": TOKYO[1], "limit": 2}, headers=r
    ).json()
    assert [s["store_id"] for s in stores] == ["S-TOKYO", "S-SHINJUKU"]
    stock = {"items": [{"store_id": "S-SHINJUKU", "sku": "SHO-9", "quantity": 1}]}
    assert httpx.post(f"{url}/v1/inventory", json=stock, headers=a).status_code == 200
    near = httpx.get(
        f"{url}/v1/inventory/availability",
        params={"sku": "SHO-9", "lat": TOKYO[0], "lon": TOKYO[1], "radius_km": 50},
        headers=r,
    ).json()
    assert (
        near["stores"][0]["store"]["store_id"] == "S-SHINJUKU"
        and near["stores"][0]["available"] == 1
    )
    missing = httpx.get(
        f"{url}/v1/inventory/availability", params={"sku": "SHO-9", "lat": 91, "lon": 0}, headers=r
    )
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "lat"
    hold = {"store_id": "S-SHINJUKU", "sku": "SHO-9", "user_id": "M1"}
    first = httpx.post(f"{url}/v1/reservations", json=hold, headers=a)
    assert first.status_code == 201, first.text
    second = httpx.post(f"{url}/v1/reservations", json=hold, headers=a)
    assert second.status_code == 409 and second.json()["error"]["field"] == "quantity"
    rid = first.json()["reservation_id"]
    assert (
        httpx.post(f"{url}/v1/reservations/{rid}/pickup", headers=a).json()["status"] == "picked_up"
    )
    assert httpx.get(f"{url}/v1/reservations/{rid}", headers=r).json()["status"] == "picked_up"
    nobody = httpx.post(
        f"{url}/v1/reservations", json={"store_id": "S-SHINJUKU", "sku": "SHO-9"}, headers=a
    )
    assert nobody.status_code == 400 and nobody.json()["error"]["field"] == "user_id"


def test_what_a_store_had_on_a_day(shop: Store) -> None:
    from tsunagu.catalog.inventory import stocked_at

    t0 = datetime(2026, 11, 1, 0, 0)
    for day, items in enumerate(
        [
            [
                {"store_id": "S-TOKYO", "sku": "SHO-1", "quantity": 2},
                {"store_id": "S-TOKYO", "sku": "TOP-1", "quantity": 1},
            ],
            [
                {"store_id": "S-TOKYO", "sku": "TOP-1", "delta": -1},
                {"store_id": "S-TOKYO", "sku": "BAG-1", "quantity": 4},
            ],
        ]
    ):
        apply_stock(
            store=shop,
            update=StockUpdate.model_validate(
                {"items": items, "as_of": (t0 + timedelta(days=day)).isoformat() + "+00:00"}
            ),
        )
    first = stocked_at(store=shop, store_id="S-TOKYO", when=t0 + timedelta(hours=12))
    assert first.items == [("SHO-1", 2), ("TOP-1", 1)]
    second = stocked_at(store=shop, store_id="S-TOKYO", when=t0 + timedelta(days=1, hours=12))
    assert second.items == [("BAG-1", 4), ("SHO-1", 2)]


def test_the_server_expires_holds_as_their_time_passes(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import time

    from tests.conftest import serve_app

    from tsunagu.api import create_app
    from tsunagu.config import Settings

    put_store(store=store, store_id="S1", body=StoreWrite(name="店", lat=35.0, lon=139.0))
    apply_stock(
        store=store,
        update=StockUpdate.model_validate(
            {"items": [{"store_id": "S1", "sku": "A", "quantity": 1}]}
        ),
    )
    hold = reserve(
        store=store,
        request=ReservationCreate(store_id="S1", sku="A", hours=1, user_id="M1"),
        now=utcnow() - timedelta(hours=1, seconds=-1),
    )
    with serve_app(create_app(Settings(data_dir=tmp_path, hold_sweep_seconds=0.2), store=store)):
        deadline = time.monotonic() + 10
        while get_reservation(store=store, reservation_id=hold.reservation_id).status == "held":
            assert time.monotonic() < deadline, "the hold did not expire"
            time.sleep(0.1)
    assert (
        store.scalar(
            "SELECT count(*) FROM events WHERE event = 'Reservation Expired' AND user_id = 'M1'"
        )
        == 1
    )


def test_paging_out_of_range_names_the_field(shop: Store) -> None:
    for kwargs, field in (
        ({"offset": 10**20}, "offset"),
        ({"offset": -1}, "offset"),
        ({"limit": 0}, "limit"),
    ):
        with pytest.raises(InvalidInput) as err:
            search_products(store=shop, **kwargs)
        assert err.value.field == field


def test_concurrent_http_holds_never_oversell(live_server) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    shop = live_server.store
    put_store(store=shop, store_id="S1", body=StoreWrite(name="店", lat=35.0, lon=139.0))
    apply_stock(
        store=shop,
        update=StockUpdate.model_validate(
            {"items": [{"store_id": "S1", "sku": "A", "quantity": 5}]}
        ),
    )
    _, admin = create_key(store=shop, name="app", scope="admin")

    def hold(i: int) -> int:
        return httpx.post(
            f"{live_server.url}/v1/reservations",
            json={"store_id": "S1", "sku": "A", "user_id": f"M{i}"},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(hold, range(20)))
    assert sorted(codes) == [201] * 5 + [409] * 15
    assert shop.scalar("SELECT sum(quantity) FROM reservations WHERE status = 'held'") == 5
