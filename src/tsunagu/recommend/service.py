"""Recommendations for one customer in a place (web, app, a store), and the offline test that
holds the model against a popularity baseline. See recommend/model.py for the model."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
from pydantic import BaseModel

from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.recommend.model import (
    Interactions,
    Recommender,
    interactions_of,
    interactions_sql,
    load,
    load_interactions,
    save,
    train,
)
from tsunagu.store import Store, utcnow
from tsunagu.store.db import count

Context = Literal["web", "app", "store"]
Reason = Literal["history", "popular_in_region", "popular"]
Scored = list[tuple[str, float]]
Product = tuple[str | None, str | None, int | None, bool | None]
"""name, category, price, repeat_purchase"""
RECENT_DAYS = 30
REGION_DAYS = 90
_cache: dict[Path, tuple[float, Recommender]] = {}
_cache_lock = threading.Lock()


def current(data_dir: Path) -> Recommender | None:
    """The trained model of `data_dir`, loaded once per process (again when retrained)."""
    path = data_dir / "models" / "recommender.pkl"
    if not path.exists():
        return None
    mtime = path.stat().st_mtime
    with _cache_lock:
        cached = _cache.get(path)
        if cached is None or cached[0] != mtime:
            model = load(data_dir)
            if model is None:
                return None
            _cache[path] = (mtime, model)
        return _cache[path][1]


def model_for(*, store: Store, data_dir: Path) -> Recommender | None:
    """The trained model, trained now if there is none yet (once: the first request of a new
    store pays for it); None when there is nothing to learn from."""
    model = current(data_dir)
    if model is not None:
        return model
    with _train_lock:
        model = current(data_dir)
        if model is None:
            try:
                train_and_save(store=store, data_dir=data_dir)
            except InvalidInput:
                return None
            model = current(data_dir)
    return model


_train_lock = threading.Lock()


class TrainReport(BaseModel):
    customers: int
    products: int
    interactions: int
    seconds: float


def train_and_save(*, store: Store, data_dir: Path) -> TrainReport:
    started = time.perf_counter()
    data = load_interactions(store, interactions_sql())
    if data.matrix.nnz == 0:
        raise InvalidInput(
            "events: no product views, carts, favourites or purchases to learn from", field="events"
        )
    recommender = train(data)
    save(recommender, data_dir)
    return TrainReport(
        customers=data.matrix.shape[0],
        products=len(data.skus),
        interactions=int(data.matrix.nnz),
        seconds=round(time.perf_counter() - started, 3),
    )


class Recommendation(BaseModel):
    sku: str
    name: str | None
    category: str | None
    price: int | None
    score: float
    reason: Reason


class RecommendationResult(BaseModel):
    profile_id: str
    context: Context
    store_id: str | None
    items: list[Recommendation]


@dataclass
class _Customer:
    pid: int | None
    history: dict[str, float]
    recent: set[str]


def pick(
    sources: list[tuple[Reason, Callable[[], Scored]]],
    *,
    allowed: Callable[[str], bool],
    limit: int,
) -> list[tuple[str, float, Reason]]:
    """The first `limit` allowed products of the sources in turn, each product once, with the
    source it came from; a source is asked only when those before it fell short."""
    picked: dict[str, tuple[float, Reason]] = {}
    for reason, candidates in sources:
        if len(picked) >= limit:
            break
        for sku, score in candidates():
            if len(picked) >= limit:
                break
            if sku not in picked and allowed(sku):
                picked[sku] = (score, reason)
    return [(sku, score, reason) for sku, (score, reason) in picked.items()]


def allowed_for(
    products: dict[str, Product], recent: set[str], in_stock: set[str] | None
) -> Callable[[str], bool]:
    """What may be recommended: a known product, not one bought in the last RECENT_DAYS unless
    it repeats, and in a store only what the store has available."""

    def allowed(sku: str) -> bool:
        product = products.get(sku)
        if product is None or (sku in recent and not product[3]):
            return False
        return in_stock is None or sku in in_stock

    return allowed


def from_history(
    recommender: Recommender | None, history: dict[str, float], recent: set[str], limit: int
) -> Scored:
    """The model's best products for a history, enough of them that the filters leave `limit`."""
    if recommender is None or not history:
        return []
    return recommender.scores(history, limit * 5 + len(recent))


def _products(store: Store) -> dict[str, Product]:
    return {
        r[0]: (r[1], r[2], r[3], r[4])
        for r in store.query("SELECT sku, name, category, price, repeat_purchase FROM products")
    }


def _customer(store: Store, profile_id: str, now: datetime) -> _Customer:
    pid = store.query("SELECT pid FROM analytics_profiles WHERE profile_id = ?", [profile_id])
    if not pid:
        if not store.query(
            "SELECT 1 FROM identity_nodes WHERE profile_id = ? LIMIT 1", [profile_id]
        ):
            raise NotFound(f"no profile {profile_id!r}", field="profile_id")
        return _Customer(None, {}, set())
    rows = store.query(
        f"SELECT sku, weight FROM ({interactions_sql('a.pid = ?')})", [int(pid[0][0])]
    )
    recent = store.query(
        "SELECT DISTINCT unnest(skus) FROM analytics_events WHERE pid = ? "
        "AND event = 'Order Completed' AND ts >= ?",
        [int(pid[0][0]), now - timedelta(days=RECENT_DAYS)],
    )
    return _Customer(int(pid[0][0]), {s: float(w) for s, w in rows}, {r[0] for r in recent})


def recommend(
    *,
    store: Store,
    recommender: Recommender | None,
    profile_id: str,
    context: Context = "web",
    store_id: str | None = None,
    limit: int = 10,
) -> RecommendationResult:
    if context == "store" and not store_id:
        raise InvalidInput("store_id: in-store recommendations need the store", field="store_id")
    if store_id and not store.query("SELECT 1 FROM stores WHERE store_id = ?", [store_id]):
        raise NotFound(f"store_id: no store {store_id!r}", field="store_id")
    shared = _shared(store)
    now = shared.now
    customer = _customer(store, profile_id, now)
    products = shared.products
    in_stock = None
    if context == "store":
        in_stock = {
            r[0]
            for r in store.query(
                "SELECT v.sku FROM inventory v LEFT JOIN (SELECT sku, sum(quantity) AS held "
                " FROM reservations WHERE store_id = $1 AND status = 'held' AND expires_at > $2 "
                " GROUP BY sku) h USING (sku) "
                "WHERE v.store_id = $1 AND v.quantity - coalesce(h.held, 0) > 0",
                [store_id, utcnow()],
            )
        }

    def in_region() -> Scored:
        return shared.regional.get(_prefecture(store, profile_id) or "", [])

    picked = pick(
        [
            (
                "history",
                lambda: from_history(recommender, customer.history, customer.recent, limit),
            ),
            ("popular_in_region", in_region),
            ("popular", lambda: shared.popular),
        ],
        allowed=allowed_for(products, customer.recent, in_stock),
        limit=limit,
    )
    items = [
        Recommendation(
            sku=sku,
            name=products[sku][0],
            category=products[sku][1],
            price=products[sku][2],
            score=round(score, 6),
            reason=reason,
        )
        for sku, score, reason in picked
    ]
    return RecommendationResult(
        profile_id=profile_id, context=context, store_id=store_id, items=items
    )


@dataclass
class _Shared:
    """What every request reads and few change: the data's present, the products, and what
    sells (everywhere and per prefecture), kept until the analytics table or the products
    change."""

    key: tuple[object, ...]
    now: datetime
    products: dict[str, Product]
    popular: list[tuple[str, float]]
    regional: dict[str, list[tuple[str, float]]]


_shared_cache: dict[str, _Shared] = {}


def _shared(store: Store) -> _Shared:
    key = tuple(
        store.query(
            "SELECT (SELECT list(value ORDER BY key) FROM analytics_state), "
            "(SELECT max(updated_at) FROM products), (SELECT count(*) FROM products)"
        )[0]
    )
    cached = _shared_cache.get(str(store.path))
    if cached is not None and cached.key == key:
        return cached
    now = store.scalar("SELECT max(ts) FROM analytics_events") or datetime(2000, 1, 1)
    since = now - timedelta(days=REGION_DAYS)
    products = _products(store)
    sold = (
        "SELECT pid, unnest(skus) AS sku FROM analytics_events "
        "WHERE event = 'Order Completed' AND ts >= ?"
    )
    popular = [
        (sku, float(n))
        for sku, n in store.query(
            f"SELECT sku, count(*) FROM ({sold}) GROUP BY sku ORDER BY 2 DESC, sku LIMIT 200",
            [since],
        )
    ]
    regional: dict[str, list[tuple[str, float]]] = {}
    for prefecture, sku, n in store.query(
        f"SELECT s.prefecture, o.sku, count(*) AS n FROM ({sold}) o "
        "JOIN analytics_profiles ap USING (pid) JOIN profile_traits t USING (profile_id) "
        "JOIN stores s ON s.store_id = t.home_store_id WHERE s.prefecture IS NOT NULL "
        "GROUP BY ALL ORDER BY s.prefecture, n DESC, o.sku",
        [since],
    ):
        ranked = regional.setdefault(prefecture, [])
        if len(ranked) < 200:
            ranked.append((sku, float(n)))
    shared = _Shared(key, now, products, popular, regional)
    _shared_cache[str(store.path)] = shared
    return shared


def _prefecture(store: Store, profile_id: str) -> str | None:
    """The prefecture of the customer's home store (most store visits, else their member
    record's)."""
    rows = store.query(
        "SELECT s.prefecture FROM stores s WHERE s.store_id = coalesce("
        "(SELECT home_store_id FROM profile_traits WHERE profile_id = $1), "
        "(SELECT min(m.home_store_id) FROM members m JOIN identity_nodes n "
        " ON n.type = 'user_id' AND n.value = m.member_id WHERE n.profile_id = $1))",
        [profile_id],
    )
    return rows[0][0] if rows else None


# -- offline test ---------------------------------------------------------------------------------


class EvaluationResult(BaseModel):
    customers: int
    """Customers whose last purchase day was held out."""
    recall_at_10: float
    ndcg_at_10: float
    popularity_recall_at_10: float
    """Of the month's best sellers: the 30 days before the end of what was kept."""
    popularity_ndcg_at_10: float
    train_seconds: float
    seconds: float


BEST_SELLER_DAYS = 30


def evaluate(
    *,
    store: Store,
    max_customers: int = 20_000,
    seed: int = 1,
    fit: Callable[[Interactions], Recommender] = train,
) -> EvaluationResult:
    """What the recommendations endpoint would have answered had each customer's last purchase
    day not happened yet, scored against what they bought that day.

    Every customer with two purchase days or more has their last one and whatever they did from
    it on held out; the model is trained (`fit`) on the rest. Each is then recommended the top
    10 as `recommend()` picks them at the end of what was kept (web: the model's ranking of
    their history with the same filters, what they bought in the last RECENT_DAYS left out
    unless it repeats; the best sellers after it), and so is the baseline: the month's best
    sellers with the same filters. Scored by recall@10 (the products of the held-out day among
    the ten, over at most ten) and NDCG@10, averaged over customers."""
    started = time.perf_counter()
    before = "NOT EXISTS (SELECT 1 FROM _last l WHERE l.pid = a.pid AND a.day >= l.last_day)"
    purchases = (
        "SELECT a.pid, a.day, a.ts, unnest(a.skus) AS sku FROM analytics_events a "
        "WHERE a.event = 'Order Completed'"
    )
    cur = store.cursor()
    try:
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _last AS SELECT pid, max(day) AS last_day "
            "FROM analytics_events WHERE event = 'Order Completed' GROUP BY pid "
            "HAVING count(DISTINCT day) >= 2"
        )
        _evaluable(cur, purchases)
        truth = cur.execute(
            f"SELECT p.pid, list(DISTINCT p.sku) FROM ({purchases}) p JOIN _last l "
            "ON l.pid = p.pid AND p.day = l.last_day WHERE p.sku IN (SELECT sku FROM products) "
            "GROUP BY p.pid"
        ).fetchall()
        (end,) = _one(cur, f"SELECT max(a.ts) FROM analytics_events a WHERE {before}")
        recent = dict(
            cur.execute(
                f"SELECT p.pid, list(DISTINCT p.sku) FROM ({purchases} AND {before}) p "
                "WHERE p.ts >= ? GROUP BY p.pid",
                [end - timedelta(days=RECENT_DAYS)],
            ).fetchall()
        )
        best_sellers = [
            (sku, float(n))
            for sku, n in cur.execute(
                f"SELECT sku, count(*) FROM ({purchases} AND {before}) WHERE ts >= ? "
                "AND sku IN (SELECT sku FROM products) GROUP BY sku ORDER BY 2 DESC, sku LIMIT 500",
                [end - timedelta(days=BEST_SELLER_DAYS)],
            ).fetchall()
        ]
        data = interactions_of(cur.sql(interactions_sql(before)).to_arrow_table())
    finally:
        cur.close()
    row_of = {int(p): i for i, p in enumerate(data.pids)}
    cases = [(int(p), set(t)) for p, t in truth if int(p) in row_of]
    if not cases:
        raise InvalidInput(
            "events: no customer bought a product of the master both before and on their last "
            "purchase day",
            field="events",
        )
    if len(cases) > max_customers:
        cases = random.Random(seed).sample(cases, max_customers)
    recommender = fit(data)
    products = _products(store)
    sums = np.zeros(4)
    for pid, answer in cases:
        row = data.matrix.getrow(row_of[pid])
        history = {data.skus[c]: float(v) for c, v in zip(row.indices, row.data, strict=True)}
        bought = set(recent.get(pid, []))
        allowed = allowed_for(products, bought, None)
        model = pick(
            [
                ("history", lambda: from_history(recommender, history, bought, 10)),  # noqa: B023
                ("popular", lambda: best_sellers),
            ],
            allowed=allowed,
            limit=10,
        )
        baseline = pick([("popular", lambda: best_sellers)], allowed=allowed, limit=10)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(answer), 10)))
        for k, top in enumerate((model, baseline)):
            hits = [1.0 if sku in answer else 0.0 for sku, _, _ in top]
            sums[2 * k] += sum(hits) / min(len(answer), 10)
            sums[2 * k + 1] += sum(h / math.log2(i + 2) for i, h in enumerate(hits)) / ideal
    n = len(cases)
    return EvaluationResult(
        customers=n,
        recall_at_10=round(sums[0] / n, 4),
        ndcg_at_10=round(sums[1] / n, 4),
        popularity_recall_at_10=round(sums[2] / n, 4),
        popularity_ndcg_at_10=round(sums[3] / n, 4),
        train_seconds=recommender.seconds,
        seconds=round(time.perf_counter() - started, 3),
    )


def _evaluable(cur: duckdb.DuckDBPyConnection, purchases: str) -> None:
    """Refuse, with its real cause, a store on which no customer can be held out."""
    if not count(cur, "SELECT count(*) FROM _last"):
        raise InvalidInput(
            "events: no customer with two purchase days to hold one out", field="events"
        )
    bought, known, example = _one(
        cur,
        "SELECT count(DISTINCT sku), count(DISTINCT sku) FILTER (WHERE sku IN "
        f"(SELECT sku FROM products)), min(sku) FROM ({purchases})",
    )
    if not known:
        raise InvalidInput(
            f"products: none of the {bought:,} SKUs bought (such as {example!r}) is in the "
            "products master; import the products first",
            field="products",
        )


def _one(cur: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    row = cur.execute(sql).fetchone()
    assert row is not None  # an aggregate without GROUP BY answers one row
    return row
