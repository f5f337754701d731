"""`evaluate()` scores what the recommendations endpoint would have answered: held to a case
worked out by hand, and to the evaluation an outsider runs through the API."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.analytics.conftest import analysed
from tests.conftest import serve_app
from tsunagu.api import create_app
from tsunagu.config import Settings
from tsunagu.events.normalize import normalize
from tsunagu.exceptions import InvalidInput
from tsunagu.keys import create_key
from tsunagu.recommend.model import Interactions, Recommender
from tsunagu.recommend.service import evaluate, train_and_save
from tsunagu.store import Store

D0 = datetime(2026, 5, 1, 3, tzinfo=UTC)  # noon in Tokyo
SKUS = "DBAECFGHIJKL"
"""The hand-made model's ranking, whatever the history."""


class Fixed(Recommender):
    def scores(self, history: dict[str, float], n: int) -> list[tuple[str, float]]:
        return [(sku, float(len(SKUS) - i)) for i, sku in enumerate(SKUS)][:n]


def bought(user: str, day: int, *skus: str) -> dict:  # type: ignore[type-arg]
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": user,
        "timestamp": (D0 + timedelta(days=day)).isoformat(),
        "properties": {
            "order_id": f"{user}-{day}",
            "products": [{"sku": s, "price": 1000, "quantity": 1} for s in skus],
        },
    }


PURCHASES = [
    bought("u1", 0, "A"),
    bought("u1", 20, "C", "D", "L"),  # u1's last purchase day: held out
    bought("u2", 30, "B", "C"),
    bought("u2", 45, "A", "C"),  # u2's last purchase day: held out
    bought("u3", 44, "B", "F"),  # one purchase day: kept, not tested
    bought("u4", 10, "F"),
    bought("u5", 35, "A"),
]


def shop(path: Path, *, products: bool = True, messages: list[dict] = PURCHASES) -> Store:  # type: ignore[type-arg]
    store = Store(path)
    store.insert_events(
        [normalize(m, received_at=D0 + timedelta(days=60), source="t") for m in messages]
    )
    if products:
        for sku in SKUS:
            store.query(
                "INSERT INTO products (sku, name, price, repeat_purchase, updated_at) "
                "VALUES (?, ?, 1000, ?, now())",
                [sku, f"商品{sku}", sku == "C"],
            )
    analysed(store)
    return store


def test_evaluate_scores_a_case_worked_out_by_hand(tmp_path: Path) -> None:
    trained_on: list[Interactions] = []

    def fit(data: Interactions) -> Recommender:
        trained_on.append(data)
        return Fixed(model=None, skus=list(SKUS))

    with shop(tmp_path / "t.duckdb") as store:
        got = evaluate(store=store, fit=fit)
        users = dict(store.query("SELECT pid, anchor_value FROM analytics_profiles"))
    # Trained on what came before each tested customer's last purchase day, and on the rest.
    (data,) = trained_on
    kept = {
        users[int(pid)]: {data.skus[c] for c in data.matrix.getrow(i).indices}
        for i, pid in enumerate(data.pids)
    }
    assert kept == {"u1": {"A"}, "u2": {"B", "C"}, "u3": {"B", "F"}, "u4": {"F"}, "u5": {"A"}}

    def ndcg(positions: list[int], answers: int) -> float:
        return sum(1 / math.log2(p + 2) for p in positions) / sum(
            1 / math.log2(i + 2) for i in range(answers)
        )

    # What was kept ends on day 44 (u3). u2 bought B and C on day 30, within the last 30 days:
    # B is left out of what u2 is shown, C repeats and stays.
    # The model's ten: u1 D B A E C F G H I J (answer C D L: D at 0, C at 4), u2 D A E C F G H
    # I J K (answer A C: at 1 and 3). The month's best sellers (days 14-44): B 2, then A, C, F
    # 1 each: u1 B A C F (C at 2), u2 A C F (at 0 and 1).
    assert got.customers == 2
    assert got.recall_at_10 == round((2 / 3 + 2 / 2) / 2, 4)
    assert got.ndcg_at_10 == round((ndcg([0, 4], 3) + ndcg([1, 3], 2)) / 2, 4)
    assert got.popularity_recall_at_10 == round((1 / 3 + 2 / 2) / 2, 4)
    assert got.popularity_ndcg_at_10 == round((ndcg([2], 3) + ndcg([0, 1], 2)) / 2, 4)


def test_evaluate_names_the_real_reason_it_cannot_run(tmp_path: Path) -> None:
    with shop(tmp_path / "no-products.duckdb", products=False) as store:
        with pytest.raises(InvalidInput) as refused:
            evaluate(store=store)
    assert refused.value.field == "products"
    assert "none of the 6 SKUs bought (such as 'A') is in the products master" in str(refused.value)
    once = [m for m in PURCHASES if m["userId"] not in ("u1", "u2")]
    with shop(tmp_path / "once.duckdb", messages=once) as store:
        with pytest.raises(InvalidInput) as refused:
            evaluate(store=store)
    assert refused.value.field == "events"
    assert "no customer with two purchase days" in str(refused.value)


def test_evaluate_agrees_with_an_evaluation_through_the_api(
    sample_copy: Store, tmp_path: Path
) -> None:
    """The outsider's way: take each customer's last purchase day and what followed it out of
    the data, train, ask GET /v1/profiles/{id}/recommendations for each, score recall@10."""
    store = sample_copy
    got = evaluate(store=store)
    last = (
        "SELECT pid, max(day) AS last_day FROM analytics_events WHERE event = 'Order Completed' "
        "GROUP BY pid HAVING count(DISTINCT day) >= 2"
    )
    answers = store.query(
        "SELECT ap.profile_id, list(DISTINCT s.sku) FROM (SELECT a.pid, a.day, unnest(a.skus) "
        f"AS sku FROM analytics_events a WHERE a.event = 'Order Completed') s JOIN ({last}) l "
        "ON l.pid = s.pid AND s.day = l.last_day JOIN analytics_profiles ap ON ap.pid = s.pid "
        "WHERE s.sku IN (SELECT sku FROM products) GROUP BY ap.profile_id"
    )
    store.query(
        "DELETE FROM events WHERE rowid IN (SELECT a.seq FROM analytics_events a "
        f"JOIN ({last}) l ON l.pid = a.pid AND a.day >= l.last_day)"
    )
    analysed(store)
    train_and_save(store=store, data_dir=tmp_path)
    _, key = create_key(store=store, name="outside", scope="read")
    recall = 0.0
    with (
        serve_app(create_app(Settings(data_dir=tmp_path), store=store)) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as client,
    ):
        for profile_id, skus in answers:
            shown = client.get(f"/v1/profiles/{profile_id}/recommendations").json()["items"]
            recall += len({i["sku"] for i in shown} & set(skus)) / min(len(skus), 10)
    assert got.customers == len(answers) > 50
    assert got.recall_at_10 == pytest.approx(recall / len(answers), abs=0.005)
    assert got.recall_at_10 > 2 * got.popularity_recall_at_10
