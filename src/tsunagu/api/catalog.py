"""Products, stores, stock and click-and-collect: what every channel reads the same way."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query

from tsunagu.api.deps import AdminKey, ReadKey, SettingsDep, StoreDep, analytics_engine
from tsunagu.catalog.favourites import FavouritesResult, favourites_availability
from tsunagu.catalog.inventory import (
    AvailabilityResult,
    StockOnDay,
    StockResult,
    StockUpdate,
    apply_stock,
    availability,
    local_to_utc,
    stocked_at,
)
from tsunagu.catalog.products import (
    Product,
    ProductPage,
    ProductWrite,
    StorePublic,
    StoreWrite,
    get_product,
    get_store,
    list_stores,
    put_product,
    put_store,
    search_products,
)
from tsunagu.catalog.reservations import (
    Reservation,
    ReservationCreate,
    cancel,
    get_reservation,
    pick_up,
    reserve,
)
from tsunagu.clienteling import ClientelingView, clienteling
from tsunagu.identity.rules import load_rules
from tsunagu.recommend.service import Context, RecommendationResult, model_for, recommend
from tsunagu.store import utcnow

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get(
    "/products", summary="Search products by name (kana, kanji and width folded) and category"
)
def products(
    store: StoreDep,
    _: ReadKey,
    q: str | None = Query(default=None, max_length=200, description="words of the name"),
    category: str | None = Query(default=None, max_length=200),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=1_000_000_000),
) -> ProductPage:
    return search_products(store=store, q=q, category=category, limit=limit, offset=offset)


@router.get("/products/{sku}", summary="One product")
def product(sku: str, store: StoreDep, _: ReadKey) -> Product:
    return get_product(store=store, sku=sku)


@router.put("/products/{sku}", summary="Create or replace a product (the change is recorded)")
def replace_product(sku: str, body: ProductWrite, store: StoreDep, _: AdminKey) -> Product:
    return put_product(store=store, sku=sku, product=body)


@router.get("/stores", summary="Stores: by prefecture, or nearest to a point first")
def stores(
    store: StoreDep,
    _: ReadKey,
    prefecture: str | None = Query(default=None, max_length=50),
    lat: float | None = Query(default=None, ge=-90, le=90),
    lon: float | None = Query(default=None, ge=-180, le=180),
    radius_km: float | None = Query(default=None, gt=0, le=20_000),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[StorePublic]:
    return list_stores(
        store=store, prefecture=prefecture, lat=lat, lon=lon, radius_km=radius_km, limit=limit
    )


@router.get("/stores/{store_id}", summary="One store")
def one_store(store_id: str, store: StoreDep, _: ReadKey) -> StorePublic:
    return get_store(store=store, store_id=store_id)


@router.put("/stores/{store_id}", summary="Create or replace a store (the change is recorded)")
def replace_store(store_id: str, body: StoreWrite, store: StoreDep, _: AdminKey) -> StorePublic:
    return put_store(store=store, store_id=store_id, body=body)


@router.post("/inventory", summary="Stock counts (quantity) and changes (delta), applied in order")
def stock(body: StockUpdate, store: StoreDep, settings: SettingsDep, _: AdminKey) -> StockResult:
    return apply_stock(store=store, update=body, timezone=settings.timezone)


@router.get(
    "/stores/{store_id}/stock",
    summary="What a store had on hand at a time (from the stock history); now by default",
)
def store_stock(
    store_id: str,
    store: StoreDep,
    settings: SettingsDep,
    _: ReadKey,
    at: datetime | None = Query(default=None, description="a time; without an offset, local"),
) -> StockOnDay:
    when = utcnow() if at is None else local_to_utc(at, settings.timezone)
    return stocked_at(store=store, store_id=store_id, when=when)


@router.get(
    "/inventory/availability",
    summary="Stores that have a product available, nearest first, with distance and quantity",
)
def stock_near(
    store: StoreDep,
    _: ReadKey,
    sku: str = Query(min_length=1, max_length=200),
    lat: float = Query(ge=-90, le=90),
    lon: float = Query(ge=-180, le=180),
    radius_km: float | None = Query(default=None, gt=0, le=20_000),
    limit: int = Query(default=20, ge=1, le=500),
) -> AvailabilityResult:
    return availability(store=store, sku=sku, lat=lat, lon=lon, radius_km=radius_km, limit=limit)


@router.post(
    "/reservations",
    status_code=201,
    summary="Hold stock at a store for a customer (click-and-collect); 409 when not enough",
)
def create_reservation(body: ReservationCreate, store: StoreDep, _: AdminKey) -> Reservation:
    return reserve(store=store, request=body)


@router.get("/reservations/{reservation_id}", summary="One reservation")
def read_reservation(reservation_id: str, store: StoreDep, _: ReadKey) -> Reservation:
    return get_reservation(store=store, reservation_id=reservation_id)


@router.post("/reservations/{reservation_id}/pickup", summary="The customer collected it")
def collect(reservation_id: str, store: StoreDep, _: AdminKey) -> Reservation:
    return pick_up(store=store, reservation_id=reservation_id)


@router.post("/reservations/{reservation_id}/cancel", summary="Release the held stock")
def release(reservation_id: str, store: StoreDep, _: AdminKey) -> Reservation:
    return cancel(store=store, reservation_id=reservation_id)


@router.get(
    "/profiles/{profile_id}/favourites/availability",
    summary="For each item the customer favourited, the nearest stores that have it",
)
def favourites_near(
    profile_id: str,
    store: StoreDep,
    settings: SettingsDep,
    _: ReadKey,
    lat: float | None = Query(default=None, ge=-90, le=90, description="default: home store"),
    lon: float | None = Query(default=None, ge=-180, le=180),
    radius_km: float | None = Query(default=None, gt=0, le=20_000),
    stores_per_item: int = Query(default=3, ge=1, le=50),
) -> FavouritesResult:
    analytics_engine(store, settings)
    return favourites_availability(
        store=store,
        profile_id=profile_id,
        lat=lat,
        lon=lon,
        radius_km=radius_km,
        stores_per_item=stores_per_item,
    )


@router.get(
    "/profiles/{profile_id}/recommendations",
    summary="Products for the customer from their online and store history, for the place",
)
def recommendations(
    profile_id: str,
    store: StoreDep,
    settings: SettingsDep,
    _: ReadKey,
    context: Context = "web",
    store_id: str | None = Query(default=None, max_length=200, description="for context=store"),
    limit: int = Query(default=10, ge=1, le=100),
) -> RecommendationResult:
    analytics_engine(store, settings)
    return recommend(
        store=store,
        recommender=model_for(store=store, data_dir=settings.data_dir),
        profile_id=profile_id,
        context=context,
        store_id=store_id,
        limit=limit,
    )


@router.get(
    "/clienteling",
    summary="The store-staff screen: who this member is, what they looked at online, what to "
    "offer in this store, their coupons",
)
def staff_view(
    store: StoreDep,
    settings: SettingsDep,
    _: ReadKey,
    store_id: str = Query(min_length=1, max_length=200),
    member_card: str | None = Query(default=None, max_length=200),
    qr: str | None = Query(default=None, max_length=1000, description="the app's QR payload"),
) -> ClientelingView:
    analytics_engine(store, settings)
    return clienteling(
        store=store,
        rules=load_rules(settings.data_dir),
        data_dir=settings.data_dir,
        store_id=store_id,
        member_card=member_card,
        qr=qr,
    )
