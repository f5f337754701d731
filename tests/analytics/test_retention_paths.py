from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.analytics import reference
from tests.analytics.conftest import CHANNELS, NAMES, TZ
from tsunagu.analytics.engine import Engine, transpile
from tsunagu.analytics.filters import parse, window_seconds
from tsunagu.analytics.paths import PathsQuery, paths_sql, run_paths
from tsunagu.analytics.retention import RetentionQuery, retention_sql, run_retention
from tsunagu.store import Store


def retention_by_hand(hist: Any, body: dict[str, Any]) -> dict[Any, list[int | None]]:
    query = parse(RetentionQuery, body)
    return reference.retention(
        hist,
        start=query.start.model_dump(),
        ret=query.return_.model_dump(),
        grain=query.grain,
        periods=query.periods or {"day": 30, "week": 12, "month": 12}[query.grain],
        lo=query.from_,
        hi=query.to,
        by_channel=query.breakdown == "channel",
    )


def retention_of(store: Store, body: dict[str, Any]) -> dict[Any, list[int | None]]:
    result = run_retention(engine=Engine(store), query=parse(RetentionQuery, body))
    return {(c.cohort, c.channel): c.retained for c in result.cohorts}


@pytest.mark.parametrize("seed", range(12))
def test_random_retention_triangles_equal_the_plain_reading(
    crafted: tuple[Store, Any], seed: int
) -> None:
    store, hist = crafted
    rng = random.Random(seed)
    body: dict[str, Any] = {
        "start": {"event": rng.choice(NAMES)},
        "return": {"event": rng.choice(NAMES)},
        "grain": rng.choice(("day", "week", "month")),
    }
    if rng.random() < 0.5:
        body["return"]["channel"] = rng.choice(CHANNELS)
    if rng.random() < 0.4:
        body["breakdown"] = "channel"
    if rng.random() < 0.4:
        body["from"] = "2026-03-03"
        body["periods"] = rng.randint(1, 5)
    assert retention_of(store, body) == retention_by_hand(hist, body)


def test_sample_retailer_repeat_purchase_retention(sample: tuple[Path, Store]) -> None:
    _, store = sample
    hist = reference.histories(store)
    for body in (
        {"start": {"event": "Order Completed"}, "return": {"event": "Order Completed"}},
        {
            "start": {"event": "Order Completed", "channel": ["web", "app"]},
            "return": {"event": "Store Visited"},
            "grain": "month",
            "breakdown": "channel",
        },
    ):
        got = retention_of(store, body)
        assert got == retention_by_hand(hist, body)
        assert any(row[1] for row in got.values() if row[1] is not None)
    result = run_retention(
        engine=Engine(store),
        query=parse(
            RetentionQuery,
            {"start": {"event": "Order Completed"}, "return": {"event": "Order Completed"}},
        ),
    )
    # Rates are of the cohort; the average weighs cohorts that have seen the period.
    first = result.cohorts[0]
    assert first.rates[0] == 1.0 and first.rates[1] == pytest.approx(
        first.retained[1] / first.customers
    )
    assert result.average[0] == 1.0


def paths_of(store: Store, body: dict[str, Any]) -> dict[tuple[int, str, int, str], int]:
    result = run_paths(engine=Engine(store), query=parse(PathsQuery, body), timezone=TZ)
    out = {}
    for link in result.links:
        (ls, s), (lt, t) = (x.split(":", 1) for x in (link.source, link.target))
        out[(abs(int(ls)), s, abs(int(lt)), t)] = link.customers
    nodes = {(n.level, n.step): n.customers for n in result.nodes}
    for (ls, s, _, _), _n in out.items():
        level = ls if body.get("direction", "after") == "after" else -ls
        assert sum(v for (a, b, _, _), v in out.items() if (a, b) == (ls, s)) == nodes[(level, s)]
    return out


@pytest.mark.parametrize("seed", range(12))
def test_random_paths_equal_the_plain_reading(crafted: tuple[Store, Any], seed: int) -> None:
    store, hist = crafted
    rng = random.Random(seed)
    body: dict[str, Any] = {
        "event": {"event": rng.choice(NAMES)},
        "direction": rng.choice(("after", "before")),
        "depth": rng.randint(1, 4),
        "top": rng.randint(1, 6),
        "within": rng.choice(("12h", "2d", "30d")),
        "channels": rng.random() < 0.6,
        "collapse_repeats": rng.random() < 0.7,
        "exclude": rng.sample(NAMES, rng.randint(0, 1)),
    }
    want = reference.paths(
        hist,
        anchor=body["event"],
        after=body["direction"] == "after",
        depth=body["depth"],
        top=body["top"],
        within=timedelta(seconds=window_seconds(body["within"])),
        channels=body["channels"],
        collapse=body["collapse_repeats"],
        exclude=set(body["exclude"]),
    )
    assert paths_of(store, body) == want


def test_retention_and_paths_queries_transpile_to_spark() -> None:
    retention = parse(
        RetentionQuery,
        {
            "start": {"event": "A"},
            "return": {"event": "B", "channel": "store"},
            "from": str(date(2026, 1, 1)),
            "breakdown": "channel",
        },
    )
    transpile(retention_sql(retention, periods=12), "spark")
    paths = parse(PathsQuery, {"event": {"event": "A"}, "direction": "before", "exclude": ["C"]})
    transpile(paths_sql(paths, timezone=TZ), "spark")
