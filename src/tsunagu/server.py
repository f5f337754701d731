"""`tsunagu serve`: one process owns the store and serves the collector, API and dashboard."""

from __future__ import annotations

import secrets

import uvicorn

from tsunagu.api import create_app
from tsunagu.config import Settings
from tsunagu.remote import write_server_file
from tsunagu.store import Store


def run_server(settings: Settings, *, host: str, port: int) -> None:
    """Open the store (failing clearly if another process holds it) and serve until stopped."""
    store = Store.open(settings)
    local_key = "tsk_local_" + secrets.token_urlsafe(32)
    info = settings.server_file
    write_server_file(info, url=f"http://{host}:{port}", key=local_key)
    try:
        uvicorn.run(
            create_app(
                settings,
                store=store,
                local_admin_key=local_key,
                on_stop=lambda: info.unlink(missing_ok=True),
            ),
            host=host,
            port=port,
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        info.unlink(missing_ok=True)
        store.close()
