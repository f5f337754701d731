"""What the browser tests need: Segment's browser library from the npm registry (installed once
into a cache, never committed), Debian's Chromium through Playwright, and a shop's web server.

Locally a missing Chromium or npm skips the browser tests; under CI (CI set) it fails them:
`make test` installs both there.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ANALYTICS_NEXT = "@segment/analytics-next@^1.84"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing: make test installs it")
    pytest.skip(f"{what} is missing (make test installs it)")


def chromium() -> Path:
    if not CHROMIUM.exists():
        _missing("Debian's chromium")
    return CHROMIUM


@functools.cache
def analytics_next() -> Path:
    """The folder of the library's browser build (dist/umd), installed from the npm registry
    into a cache the first time."""
    cache = Path(os.environ.get("TSUNAGU_TEST_CACHE", Path.home() / ".cache" / "tsunagu-tests"))
    root = cache / "npm"
    umd = root / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd"
    if not (umd / "index.js").exists():
        npm = shutil.which("npm")
        if npm is None:
            _missing("npm")
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(root), ANALYTICS_NEXT],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return umd


@contextmanager
def shop_server(pages: dict[str, str], bundles: Path) -> Iterator[int]:
    """A shop's web server on a loopback port: `pages` by path, and the library's files under
    /analytics-next/bundles/ (where it loads its lazy parts from, given `cdnURL`)."""

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(bundles), **kwargs)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in pages:
                body = pages[path].encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            prefix = "/analytics-next/bundles/"
            if not path.startswith(prefix):
                self.send_error(404)
                return
            self.path = "/" + path.removeprefix(prefix)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class Watched:
    """A page whose console errors, page errors and requests off this machine are kept (and
    the latter refused)."""

    def __init__(self, context: Any) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.answers: list[tuple[str, int]] = []
        self.page = context.new_page()
        self.page.on("response", lambda r: self.answers.append((r.url, r.status)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

        def route(r: Any) -> None:
            host = r.request.url.split("/")[2].split(":")[0]
            if host in ("127.0.0.1", "localhost"):
                r.continue_()
            else:
                self.outside.append(r.request.url)
                r.abort()

        self.page.route("**/*", route)
