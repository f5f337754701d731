"""Fixtures every test domain shares: a fresh store, a source key, a live server on loopback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tsunagu.api import create_app
from tsunagu.config import Settings
from tsunagu.events.sources import create_source
from tsunagu.server import serve_in_thread
from tsunagu.store import Store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store(settings.database_path) as s:
        yield s


@dataclass
class LiveServer:
    url: str
    write_key: str
    store: Store
    settings: Settings


serve_app = serve_in_thread
"""A real uvicorn server on a free loopback port (tsunagu.server.serve_in_thread)."""


@pytest.fixture
def live_server(settings: Settings, store: Store) -> Iterator[LiveServer]:
    """A real uvicorn server on a free loopback port, owning `store`."""
    _, key = create_source(store=store, name="test")
    with serve_app(create_app(settings, store=store)) as url:
        yield LiveServer(url=url, write_key=key, store=store, settings=settings)


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Store]]:
    """The sample retailer: its files, and a store with them imported, the identity graph and
    the analytics table built (shared: tests that change it use `sample_copy`)."""
    from tsunagu.analytics.facts import rebuild
    from tsunagu.demo import generate
    from tsunagu.identity.graph import build_graph
    from tsunagu.identity.rules import IdentityRules
    from tsunagu.imports import DEMO_ORDER, run_import

    root = tmp_path_factory.mktemp("sample")
    generate(out_dir=root / "files", customers=1500, days=120, seed=11)
    with Store(root / "data" / "tsunagu.duckdb") as store:
        for kind, name in DEMO_ORDER:
            run_import(store=store, kind=kind, path=root / "files" / name)
        build_graph(store=store, rules=IdentityRules())
        with store.transaction() as cur:
            rebuild(cur, IdentityRules(), timezone="Asia/Tokyo")
        yield root / "files", store


@pytest.fixture
def sample_copy(sample: tuple[Path, Store], tmp_path: Path) -> Iterator[Store]:
    """A store of its own with the sample's data, for tests that change it."""
    _, shared = sample
    shared.query("CHECKPOINT")
    shutil.copy(shared.path, tmp_path / "copy.duckdb")
    with Store(tmp_path / "copy.duckdb") as store:
        yield store
