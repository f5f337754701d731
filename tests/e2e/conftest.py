"""Fixtures for end-to-end tests: a live server whose FastAPI app the test can inspect."""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from tests.conftest import serve_app
from tests.e2e.processes import ServerProcess, new_source, start_server
from tsunagu.api import create_app
from tsunagu.config import Settings
from tsunagu.events.sources import create_source
from tsunagu.store import Store


class _PlainTraceback(logging.Filter):
    """Render a server-side exception's traceback without `traceback.format_exception`.

    On Python 3.11, formatting a traceback calls `ast.parse` (for the ``^^^`` markers), which is
    not thread-safe: when the server thread logs a 500 while pytest formats the failing test's
    traceback, pytest crashes with ``SystemError: AST constructor recursion depth mismatch``.
    The frames and the exception are still printed, just without the markers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            _, exc, tb = record.exc_info
            frames = "".join(
                f"  File {f.filename}:{f.lineno} in {f.name}\n    {(f.line or '').strip()}\n"
                for f in traceback.extract_tb(tb)
            )
            record.msg = f"{record.getMessage()}\n{frames}{type(exc).__name__}: {exc}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


@pytest.fixture(autouse=True, scope="session")
def _server_errors_without_ast() -> Iterator[None]:
    logger = logging.getLogger("uvicorn.error")
    plain = _PlainTraceback()
    logger.addFilter(plain)
    try:
        yield
    finally:
        logger.removeFilter(plain)


@dataclass
class AppServer:
    url: str
    write_key: str
    store: Store
    settings: Settings
    app: FastAPI
    source: str
    """Name of the source `write_key` belongs to: events.source of what this test sends."""

    @property
    def collector(self) -> Any:
        return self.app.state.collector


@dataclass
class _Running:
    url: str
    store: Store
    settings: Settings
    app: FastAPI


@contextmanager
def _serve(settings: Settings, store: Store) -> Iterator[_Running]:
    app = create_app(settings, store=store)
    with serve_app(app) as url:
        yield _Running(url=url, store=store, settings=settings, app=app)


@pytest.fixture(scope="module")
def _module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Running]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("e2e") / "data")
    with Store(settings.database_path) as store, _serve(settings, store) as running:
        yield running


@pytest.fixture
def app_server(_module_server: _Running) -> AppServer:
    """A live server (one per test module, started once) and a write key of a source of this
    test's own, so the test's events are those with `events.source = app_server.source`.

    Unlike the root `live_server`, it exposes the FastAPI app (`app.state.collector`).
    """
    name = "e2e-" + uuid.uuid4().hex[:12]
    _, key = create_source(store=_module_server.store, name=name)
    return AppServer(
        url=_module_server.url,
        write_key=key,
        store=_module_server.store,
        settings=_module_server.settings,
        app=_module_server.app,
        source=name,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """`tsunagu serve` as a real process on a new data dir with a source ("web")."""
    data_dir = tmp_path / "data"
    srv = start_server(data_dir, tmp_path / "server.log", new_source(data_dir))
    try:
        yield srv
    finally:
        srv.kill()
