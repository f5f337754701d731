"""Stores the analytics tests share: a crafted one full of ties, repeats and window edges, and
the sample retailer with its identity graph and analytics table built."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.analytics import reference
from tsunagu.analytics.facts import rebuild
from tsunagu.demo import generate
from tsunagu.events.normalize import normalize
from tsunagu.identity.graph import build_graph
from tsunagu.identity.rules import IdentityRules
from tsunagu.imports import DEMO_ORDER, run_import
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


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Store]]:
    """The sample retailer (its files and an analysed store)."""
    root = tmp_path_factory.mktemp("sample")
    generate(out_dir=root / "files", customers=1500, days=120, seed=11)
    with Store(root / "data" / "tsunagu.duckdb") as store:
        for kind, name in DEMO_ORDER:
            run_import(store=store, kind=kind, path=root / "files" / name)
        analysed(store)
        yield root / "files", store


@pytest.fixture
def sample_copy(sample: tuple[Path, Store], tmp_path: Path) -> Iterator[Store]:
    """A store of its own with the sample's data, for tests that change it."""
    _, shared = sample
    shared.query("CHECKPOINT")
    shutil.copy(shared.path, tmp_path / "copy.duckdb")
    with Store(tmp_path / "copy.duckdb") as store:
        yield store
