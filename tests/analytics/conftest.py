"""Stores the analytics tests share: a crafted one full of ties, repeats and window edges, and
the sample retailer with its identity graph and analytics table built."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.analytics import reference
from tsunagu.analytics.facts import rebuild
from tsunagu.events.normalize import normalize
from tsunagu.identity.graph import build_graph
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store

T0 = datetime(2026, 3, 1, tzinfo=UTC)
TZ = "Asia/Tokyo"
NAMES = ("A", "B", "C", "D")
CHANNELS = ("web", "app", "store")


def crafted_messages(seed: int = 7, customers: int = 120) -> list[dict]:  # type: ignore[type-arg]
    """Events on a six-hour grid (so many share an instant and many fall exactly on a one-day
    window's edge), names repeated, some customers known by two identifiers."""
    rng = random.Random(seed)
    messages = []
    for c in range(customers):
        anon = f"anon-{c}"
        user = f"U{c}" if c % 3 else None
        for _ in range(rng.randint(1, 14)):
            channel = rng.choice(CHANNELS)
            message = {
                "type": "track",
                "event": rng.choice(NAMES),
                "anonymousId": anon,
                "timestamp": (T0 + timedelta(hours=6 * rng.randint(0, 40))).isoformat(),
                "context": {"channel": channel},
                "properties": {
                    "category": rng.choice(("靴", "バッグ")),
                    "price": rng.choice((1000, 2500, 9800)),
                    **({"store_id": rng.choice(("S1", "S2"))} if channel == "store" else {}),
                },
            }
            if user and rng.random() < 0.7:
                message["userId"] = user
            messages.append(message)
    rng.shuffle(messages)
    return messages


def analysed(store: Store) -> None:
    build_graph(store=store, rules=IdentityRules())
    with store.transaction() as cur:
        rebuild(cur, IdentityRules(), timezone=TZ)


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, dict]]:  # type: ignore[type-arg]
    path = tmp_path_factory.mktemp("crafted") / "tsunagu.duckdb"
    received = T0 + timedelta(days=30)
    with Store(path) as store:
        rows = [normalize(m, received_at=received, source="t") for m in crafted_messages()]
        store.insert_events(rows)
        analysed(store)
        yield store, reference.histories(store)
