from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import serve_app
from tsunagu.api import create_app
from tsunagu.config import Settings
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.keys import create_key
from tsunagu.recommend.service import RECENT_DAYS, current, evaluate, recommend, train_and_save
from tsunagu.store import Store


def test_the_recommender_beats_popularity_on_the_sample_retailer(
    sample: tuple[Path, Store],
) -> None:
    _, store = sample
    got = evaluate(store=store)
    assert got.customers > 50
    assert got.recall_at_10 > got.popularity_recall_at_10
    assert got.ndcg_at_10 > got.popularity_ndcg_at_10


@pytest.fixture
def trained(sample_copy: Store, tmp_path: Path) -> tuple[Store, Path]:
    train_and_save(store=sample_copy, data_dir=tmp_path)
    return sample_copy, tmp_path


def buyer(store: Store) -> str:
    """A customer with a recent purchase of a product that does not repeat."""
    return store.query(
        "SELECT ap.profile_id FROM analytics_events e JOIN analytics_profiles ap USING (pid) "
        "WHERE e.event = 'Order Completed' AND e.ts >= (SELECT max(ts) FROM analytics_events) - "
        f"INTERVAL {RECENT_DAYS - 1} DAY AND EXISTS (SELECT 1 FROM products p "
        "WHERE list_contains(e.skus, p.sku) AND NOT p.repeat_purchase) "
        "GROUP BY ap.profile_id ORDER BY count(*) DESC, ap.profile_id LIMIT 1"
    )[0][0]


def test_recommendations_follow_the_place_and_leave_out_what_was_just_bought(
    trained: tuple[Store, Path],
) -> None:
    store, data_dir = trained
    model = current(data_dir)
    profile_id = buyer(store)
    web = recommend(store=store, recommender=model, profile_id=profile_id)
    assert len(web.items) == 10 and web.items[0].reason == "history"
    last = store.scalar("SELECT max(ts) FROM analytics_events")
    just_bought = {
        r[0]
        for r in store.query(
            "SELECT DISTINCT unnest(e.skus) FROM analytics_events e JOIN analytics_profiles ap "
            "USING (pid) WHERE ap.profile_id = ? AND e.event = 'Order Completed' AND e.ts >= ?",
            [profile_id, last - timedelta(days=RECENT_DAYS)],
        )
    }
    repeats = {r[0] for r in store.query("SELECT sku FROM products WHERE repeat_purchase")}
    assert not ({i.sku for i in web.items} & (just_bought - repeats))
    shop = store.query(
        "SELECT store_id FROM inventory GROUP BY store_id ORDER BY count(*) FILTER (WHERE quantity > 0) LIMIT 1"
    )[0][0]
    in_store = recommend(
        store=store, recommender=model, profile_id=profile_id, context="store", store_id=shop
    )
    stock = {
        r[0]
        for r in store.query(
            "SELECT sku FROM inventory WHERE store_id = ? AND quantity > 0", [shop]
        )
    }
    assert in_store.items and {i.sku for i in in_store.items} <= stock
    with pytest.raises(InvalidInput):
        recommend(store=store, recommender=model, profile_id=profile_id, context="store")
    with pytest.raises(NotFound):
        recommend(store=store, recommender=model, profile_id="p_nobody")


def test_a_customer_without_history_gets_what_sells_in_their_region(
    trained: tuple[Store, Path],
) -> None:
    store, data_dir = trained
    quiet = store.query(
        "SELECT t.profile_id FROM profile_traits t JOIN stores s ON s.store_id = t.home_store_id "
        "WHERE t.profile_id NOT IN (SELECT ap.profile_id FROM analytics_events e JOIN "
        " analytics_profiles ap USING (pid) WHERE e.event IN ('Product Viewed', 'Product Added', "
        " 'Product Added to Wishlist', 'Order Completed')) LIMIT 1"
    )
    profile_id = (
        quiet[0][0]
        if quiet
        else store.query(
            "SELECT DISTINCT profile_id FROM identity_nodes WHERE profile_id NOT IN "
            "(SELECT profile_id FROM analytics_profiles) LIMIT 1"
        )[0][0]
    )
    got = recommend(store=store, recommender=current(data_dir), profile_id=profile_id)
    assert len(got.items) == 10
    assert {i.reason for i in got.items} <= {"popular_in_region", "popular"}


def test_recommendations_over_http_train_on_first_use(sample_copy: Store, tmp_path: Path) -> None:
    _, key = create_key(store=sample_copy, name="app", scope="read")
    profile_id = buyer(sample_copy)
    with serve_app(create_app(Settings(data_dir=tmp_path), store=sample_copy)) as url:
        got = httpx.get(
            f"{url}/v1/profiles/{profile_id}/recommendations",
            params={"context": "app", "limit": 5},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert got.status_code == 200, got.text
        assert len(got.json()["items"]) == 5
        assert (tmp_path / "models" / "recommender.pkl").exists()
        bad = httpx.get(
            f"{url}/v1/profiles/{profile_id}/recommendations",
            params={"context": "fax"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "context"
