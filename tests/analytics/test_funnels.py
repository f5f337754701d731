from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlglot

from tests.analytics import reference
from tests.analytics.conftest import CHANNELS, NAMES, TZ
from tsunagu.analytics.engine import Engine, transpile
from tsunagu.analytics.filters import parse, utc_bounds
from tsunagu.analytics.funnels import FunnelQuery, FunnelResult, funnel_sql, run_funnel
from tsunagu.exceptions import InvalidInput
from tsunagu.store import Store


def answer(store: Store, body: dict[str, Any], *, portable: bool = False) -> FunnelResult:
    """The funnel as the DuckDB engine walks it, or by the portable SQL statement."""
    query = parse(FunnelQuery, body)
    return run_funnel(engine=Engine(store), query=query, timezone=TZ, portable=portable)


def by_hand(
    store: Store,
    hist: dict[int, list[reference.Ev]],
    body: dict[str, Any],
    breakdown_of: Any = None,
) -> dict[str, Any]:
    query = parse(FunnelQuery, body)
    lo, hi = utc_bounds(query.from_, query.to, TZ)
    plain = {
        "steps": [s.model_dump() for s in query.steps],
        "window_seconds": query.seconds(),
        "mode": query.mode,
        "exclusions": [x.model_dump() for x in query.exclusions],
        "exclusions_mode": query.exclusions_mode,
    }
    return reference.funnel(hist, plain, lo=lo, hi=hi, breakdown_of=breakdown_of)


def assert_same(got: list[Any], want: list[tuple[int, Any, Any]]) -> None:
    assert [s.customers for s in got] == [w[0] for w in want]
    for s, (_, median, p90) in zip(got, want, strict=True):
        for value, expected in (
            (s.median_seconds_to_convert, median),
            (s.p90_seconds_to_convert, p90),
        ):
            if expected is None:
                assert value is None
            else:
                assert value == pytest.approx(expected, abs=0.002)


def random_step(rng: random.Random) -> dict[str, Any]:
    step: dict[str, Any] = {"event": rng.choice(NAMES)}
    roll = rng.random()
    if roll < 0.25:
        step["channel"] = rng.choice(CHANNELS)
    elif roll < 0.35:
        step["channel"] = rng.sample(CHANNELS, 2)
    roll = rng.random()
    if roll < 0.2:
        step["where"] = {"category": rng.choice(("靴", "バッグ"))}
    elif roll < 0.3:
        step["where"] = {"price": {"gte": 2500}}
    elif roll < 0.35:
        step["where"] = {"category": {"ne": "靴"}, "price": [1000, 9800]}
    return step


def random_query(rng: random.Random) -> dict[str, Any]:
    k = rng.randint(2, 5)
    body: dict[str, Any] = {
        "steps": [random_step(rng) for _ in range(k)],
        "window": rng.choice(("6h", "1d", "2d", "7d", 86400 * 3)),
        "mode": rng.choice(("ordered", "ordered", "strict", "any")),
    }
    if rng.random() < 0.4:
        body["from"] = str(date(2026, 3, 1) + timedelta(days=rng.randint(0, 4)))
        body["to"] = str(date(2026, 3, 6) + timedelta(days=rng.randint(0, 4)))
    if rng.random() < 0.4:
        a = rng.randint(1, k - 1) if body["mode"] != "any" else 1
        b = rng.randint(a + 1, k) if body["mode"] != "any" else k
        body["exclusions"] = [{"event": rng.choice(NAMES), "between": [a, b]}]
        if rng.random() < 0.3:
            body["exclusions_mode"] = "attempt"
    return body


@pytest.mark.parametrize("seed", range(60))
def test_random_funnels_equal_the_plain_reading(crafted: tuple[Store, Any], seed: int) -> None:
    """Ties (a six-hour grid), repeated names, steps exactly a window apart, exclusions."""
    store, hist = crafted
    rng = random.Random(seed)
    body = random_query(rng)
    want = by_hand(store, hist, body)
    for portable in (False, True):
        assert_same(answer(store, body, portable=portable).steps, want["steps"])


@pytest.mark.parametrize("breakdown", ["channel", "category", "price", "profile.first_seen"])
def test_breakdowns_equal_the_plain_reading(crafted: tuple[Store, Any], breakdown: str) -> None:
    store, hist = crafted
    body = {
        "steps": [{"event": "A"}, {"event": "B"}, {"event": "C"}],
        "window": "3d",
        "breakdown": breakdown,
        "breakdown_limit": 200,
    }
    traits = dict(
        store.query(
            "SELECT ap.pid, CAST(t.first_seen AS VARCHAR) FROM analytics_profiles ap "
            "LEFT JOIN profile_traits t USING (profile_id)"
        )
    )

    def value(pid: int, e: reference.Ev) -> str:
        if breakdown == "profile.first_seen":
            v = traits.get(pid)
        elif breakdown == "price":
            v = reference._json_text(e.props.get("price"))
        else:
            v = getattr(e, breakdown)
        return v if v is not None else "(none)"

    want = by_hand(store, hist, body, breakdown_of=value)
    for portable in (False, True):
        got = answer(store, body, portable=portable)
        assert {g.value for g in got.breakdown} == set(want["groups"])
        for group in got.breakdown:
            assert_same(group.steps, want["groups"][group.value])
        assert_same(got.steps, want["steps"])


def test_the_same_event_never_fills_two_steps(crafted: tuple[Store, Any]) -> None:
    store, hist = crafted
    got = answer(store, {"steps": [{"event": "A"}, {"event": "A"}], "window": "7d"})
    twice = sum(1 for evs in hist.values() if sum(e.event == "A" for e in evs) >= 2)
    # Not every customer with two A's converts (the window), but none with one A does.
    assert 0 < got.steps[1].customers <= twice
    once = {pid for pid, evs in hist.items() if sum(e.event == "A" for e in evs) == 1}
    assert once


def test_sample_retailer_cross_channel_funnels_equal_the_plain_reading(
    sample: tuple[Path, Store],
) -> None:
    _, store = sample
    hist = reference.histories(store)
    top = store.query(
        "SELECT category FROM analytics_events WHERE event = 'Product Viewed' "
        "GROUP BY category ORDER BY count(*) DESC LIMIT 1"
    )[0][0]
    bodies = [
        {
            "steps": [
                {"event": "Product Viewed", "channel": "app", "where": {"category": top}},
                {"event": "Store Visited"},
                {"event": "Order Completed", "channel": "store"},
            ],
            "window": "30d",
        },
        {
            "steps": [
                {"event": "Product Viewed"},
                {"event": "Product Added"},
                {"event": "Checkout Started"},
                {"event": "Order Completed", "where": {"revenue": {"gte": 5000}}},
            ],
            "window": "7d",
            "mode": "ordered",
            "exclusions": [{"event": "Order Completed", "channel": "store", "between": [1, 4]}],
        },
        {
            "steps": [
                {"event": "Product Viewed", "channel": "web"},
                {"event": "Order Completed", "channel": "store"},
            ],
            "window": "14d",
            "from": "2026-08-01",
            "to": "2026-09-30",
        },
        {
            "steps": [{"event": "Product Added"}, {"event": "Cart Viewed"}],
            "window": "1h",
            "mode": "strict",
        },
    ]
    for body in bodies:
        want = by_hand(store, hist, body)
        for portable in (False, True):
            got = answer(store, body, portable=portable)
            assert_same(got.steps, want["steps"])
            assert got.steps[0].customers > 0
    # A cross-channel funnel in the sample: app views lead people into stores.
    del bodies[0]["steps"][0]["where"]
    assert answer(store, bodies[0]).steps[2].customers > 0


def test_every_funnel_query_transpiles_to_spark() -> None:
    body = {
        "steps": [
            {
                "event": "Product Viewed",
                "channel": "app",
                "where": {"category": "靴", "price": {"gte": 1}},
            },
            {"event": "Store Visited"},
            {"event": "Order Completed", "channel": "store"},
        ],
        "window": "7d",
        "from": "2026-01-01",
        "to": "2026-03-31",
        "breakdown": "profile.gender",
        "exclusions": [{"event": "Order Refunded"}],
    }
    for mode in ("ordered", "strict", "any"):
        query = parse(FunnelQuery, {**body, "mode": mode})
        spark = transpile(funnel_sql(query, timezone=TZ), "spark")
        sqlglot.parse_one(spark, read="spark")  # it reads back


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps": [{"event": "A"}]}, "steps"),
        ({"steps": [{"event": "A"}, {"event": ""}]}, "steps.1.event"),
        ({"steps": [{"event": "A"}, {"event": "B"}], "window": "7 fortnights"}, "window"),
        ({"steps": [{"event": "A"}, {"event": "B"}], "window": "0d"}, "window"),
        ({"steps": [{"event": "A"}, {"event": "B"}], "mode": "sideways"}, "mode"),
        ({"steps": [{"event": "A"}, {"event": "B"}], "from": "2026-13-01"}, "from"),
        (
            {"steps": [{"event": "A"}, {"event": "B"}], "from": "2026-03-02", "to": "2026-03-01"},
            "to",
        ),
        (
            {
                "steps": [{"event": "A"}, {"event": "B"}],
                "exclusions": [{"event": "C", "between": [2, 2]}],
            },
            "exclusions",
        ),
        (
            {"steps": [{"event": "A", "where": {"category": {"gt": "x"}}}, {"event": "B"}]},
            "where.category",
        ),
        ({"steps": [{"event": "A", "where": {'a"b': 1}}, {"event": "B"}]}, "steps.0.where"),
        ({"steps": [{"event": "A"}, {"event": "B"}], "colour": "red"}, "colour"),
    ],
)
def test_bad_requests_name_the_field(
    crafted: tuple[Store, Any], body: dict[str, Any], field: str
) -> None:
    store, _ = crafted
    with pytest.raises(InvalidInput) as err:
        answer(store, body)
    assert err.value.field is not None and err.value.field.startswith(field), err.value.message


def test_answer_shape_is_the_documented_one(crafted: tuple[Store, Any]) -> None:
    store, _ = crafted
    got = answer(store, {"steps": [{"event": "A"}, {"event": "B"}], "breakdown": "channel"})
    doc = json.loads(got.model_dump_json())
    step = doc["steps"][1]
    for key in (
        "event",
        "customers",
        "conversion_from_first",
        "conversion_from_previous",
        "drop_off",
        "median_seconds_to_convert",
        "p90_seconds_to_convert",
    ):
        assert key in step
    assert step["drop_off"] == doc["steps"][0]["customers"] - step["customers"]
    assert step["conversion_from_previous"] == pytest.approx(
        step["customers"] / doc["steps"][0]["customers"], abs=1e-6
    )
    assert doc["breakdown"] and {"value", "steps"} <= set(doc["breakdown"][0])


def test_rows_out_of_customer_order_are_put_in_order() -> None:
    from tsunagu.analytics.walk import customer_order

    pid = np.array([3, 3, 1, 1, 2], dtype=np.int32)
    r = np.array([1, 2, 5, 9, 1], dtype=np.int32)
    assert customer_order(pid, r) is None  # contiguous, in order: walked as it comes
    split = np.array([3, 1, 3, 1, 2], dtype=np.int32)
    order = customer_order(split, r)
    assert order is not None and list(split[order]) == [1, 1, 2, 3, 3]
    backwards = np.array([3, 3, 1, 1, 2], dtype=np.int32)
    order = customer_order(backwards, np.array([2, 1, 5, 9, 1], dtype=np.int32))
    assert order is not None and list(order) == [2, 3, 4, 1, 0]


def test_an_instant_fills_from_each_attempts_own_next_step() -> None:
    """Attempts landing at one instant from different depths: each fills from its own step."""
    from tsunagu.analytics.walk import _Instants

    # One instant with an event of step 2 and one of step 5 (of five different events).
    one = np.array([1, 1])
    instants = _Instants(
        one, np.array([0, 0]), one, np.array([2, 16]), 5, [[1], [2], [3], [4], [5]]
    )
    at = np.array([0, 0, 0])
    assert list(instants.fill(at, np.array([2, 5, 3]))) == [2, 5, 2]
