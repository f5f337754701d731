"""Fixtures every test domain shares: a fresh store, a source key, a live server on loopback."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from tsunagu.api import create_app
from tsunagu.config import Settings
from tsunagu.events.sources import create_source
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_app(app: FastAPI) -> Iterator[str]:
    """Run `app` on a real uvicorn server on a free loopback port; yields its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


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
