"""Recommendations for one customer in a place (web, app, a store), and the offline test that
holds the model against a popularity baseline. See recommend/model.py for the model."""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.recommend.model import (
    Recommender,
    interactions_of,
    interactions_sql,
    load,
    load_interactions,
    save,
    train,
)
from tsunagu.store import Store, utcnow

Context = Literal["web", "app", "store"]
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
    reason: Literal["history", "popular_in_region", "popular"]


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
        raise InvalidInput(f"store_id: no store {store_id!r}", field="store_id")
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

    def allowed(sku: str) -> bool:
        if sku not in products:
            return False
        if sku in customer.recent and not products[sku][3]:
            return False
        return in_stock is None or sku in in_stock

    picked: list[Recommendation] = []

    def take(candidates: list[tuple[str, float]], reason: str) -> None:
        for sku, score in candidates:
            if len(picked) >= limit:
                return
            if allowed(sku) and all(p.sku != sku for p in picked):
                name, category, price, _ = products[sku]
                picked.append(
                    Recommendation(
                        sku=sku,
                        name=name,
                        category=category,
                        price=price,
                        score=round(score, 6),
                        reason=reason,  # type: ignore[arg-type]
                    )
                )

    if recommender is not None and customer.history:
        take(recommender.scores(customer.history, limit * 5 + len(customer.recent)), "history")
    if len(picked) < limit:
        take(shared.regional.get(_prefecture(store, profile_id) or "", []), "popular_in_region")
    if len(picked) < limit:
        take(shared.popular, "popular")
    return RecommendationResult(
        profile_id=profile_id, context=context, store_id=store_id, items=picked
    )


@dataclass
class _Shared:
    """What every request reads and few change: the data's present, the products, and what
    sells (everywhere and per prefecture), kept until the analytics table or the products
    change."""

    key: tuple[object, ...]
    now: datetime
    products: dict[str, tuple[str | None, str | None, int | None, bool | None]]
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
    products = {
        r[0]: (r[1], r[2], r[3], r[4])
        for r in store.query("SELECT sku, name, category, price, repeat_purchase FROM products")
    }
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
    popularity_ndcg_at_10: float
    train_seconds: float
    seconds: float


def evaluate(*, store: Store, max_customers: int = 20_000, seed: int = 1) -> EvaluationResult:
    """Hold out each customer's last purchase day (its line items are the answer), train on
    what came before it, and score the top 10 of the model and of the most bought products by
    recall@10 and NDCG@10. Both lists leave out what the customer bought before, unless it is
    a product people buy again, as recommendations do."""
    started = time.perf_counter()
    before = "NOT EXISTS (SELECT 1 FROM _last l WHERE l.pid = a.pid AND a.day >= l.last_day)"
    cur = store.cursor()
    try:
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _last AS SELECT pid, max(day) AS last_day "
            "FROM analytics_events WHERE event = 'Order Completed' GROUP BY pid "
            "HAVING count(DISTINCT day) >= 2"
        )
        purchases = (
            "SELECT a.pid, a.day, unnest(a.skus) AS sku FROM analytics_events a "
            "WHERE a.event = 'Order Completed'"
        )
        truth = cur.execute(
            f"SELECT p.pid, list(DISTINCT p.sku) FROM ({purchases}) p JOIN _last l "
            "ON l.pid = p.pid AND p.day = l.last_day WHERE p.sku IN (SELECT sku FROM products) "
            "GROUP BY p.pid"
        ).fetchall()
        bought = dict(
            cur.execute(
                f"SELECT p.pid, list(DISTINCT p.sku) FROM ({purchases} AND {before}) p GROUP BY p.pid"
            ).fetchall()
        )
        popular = [
            r[0]
            for r in cur.execute(
                f"SELECT sku, count(*) FROM ({purchases} AND {before}) "
                "WHERE sku IN (SELECT sku FROM products) GROUP BY sku ORDER BY 2 DESC, sku LIMIT 500"
            ).fetchall()
        ]
        repeat = {
            r[0] for r in cur.execute("SELECT sku FROM products WHERE repeat_purchase").fetchall()
        }
        data = interactions_of(cur.sql(interactions_sql(before)).to_arrow_table())
    finally:
        cur.close()
    recommender = train(data)
    row_of = {int(p): i for i, p in enumerate(data.pids)}
    cases = [(int(p), set(t)) for p, t in truth if int(p) in row_of]
    if len(cases) > max_customers:
        cases = random.Random(seed).sample(cases, max_customers)
    if not cases:
        raise InvalidInput(
            "events: no customer with two purchase days to hold one out", field="events"
        )
    sums = np.zeros(4)
    for pid, answer in cases:
        row = data.matrix.getrow(row_of[pid])
        history = {data.skus[c]: float(v) for c, v in zip(row.indices, row.data, strict=True)}
        had = set(bought.get(pid, [])) - repeat
        ranked = [s for s, _ in recommender.scores(history, 10 + len(had)) if s not in had][:10]
        base = [s for s in popular if s not in had][:10]
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(answer), 10)))
        for k, top in enumerate((ranked, base)):
            hits = [1.0 if s in answer else 0.0 for s in top]
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
