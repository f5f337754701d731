"""`tsunagu serve`: one process owns the store and serves the collector, API and dashboard."""

from __future__ import annotations

import gc
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from tsunagu.api import create_app
from tsunagu.config import Settings
from tsunagu.logs import configure as configure_logs
from tsunagu.remote import write_server_file
from tsunagu.store import Store


def run_server(settings: Settings, *, host: str, port: int) -> None:
    """Open the store (failing clearly if another process holds it) and serve until stopped."""
    configure_logs(level=settings.log_level, json_lines=settings.log_format == "json")
    store = Store.open(settings)
    local_key = "tsk_local_" + secrets.token_urlsafe(32)
    info = settings.server_file
    write_server_file(info, url=f"http://{host}:{port}", key=local_key)
    try:
        app = create_app(
            settings, store=store, local_admin_key=local_key,
            on_stop=lambda: info.unlink(missing_ok=True),
        )  # fmt: skip
        # What is loaded by now lives as long as the server: the collector's full collections
        # need not walk it again and again.
        gc.freeze()
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_config=None,  # logs.py: JSON lines, personal data masked
            log_level=settings.log_level,
            access_log=False,  # api/metrics.py logs each request (no query string)
            timeout_graceful_shutdown=10,
        )
    finally:
        info.unlink(missing_ok=True)
        store.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Run `app` on a real uvicorn server on a free loopback port in this process (tests,
    benchmarks, a notebook); yields its URL and stops it on exit."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
