"""`tsunagu serve`: one process owns the store and serves the collector, API and dashboard."""

from __future__ import annotations

import json
import os

import uvicorn

from tsunagu.api import create_app
from tsunagu.config import Settings
from tsunagu.store import Store


def run_server(settings: Settings, *, host: str, port: int) -> None:
    """Open the store (failing clearly if another process holds it) and serve until stopped."""
    store = Store(settings.database_path)
    info = settings.server_file
    info.write_text(json.dumps({"pid": os.getpid(), "url": f"http://{host}:{port}"}))
    try:
        uvicorn.run(
            create_app(settings, store=store),
            host=host,
            port=port,
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        info.unlink(missing_ok=True)
        store.close()
