"""Fixtures every test domain shares: a fresh store, a source key, a live server on loopback."""

from __future__ import annotations

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
