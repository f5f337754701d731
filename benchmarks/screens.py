"""The marketer's screens in a real browser on a big store, beside a floor measured in the same
run: Home (`/`, to its first chart drawn), a 4-step cross-channel funnel (to its chart drawn)
and a customer's timeline (`/profiles/ID`, to the table present; a different busy customer on
every load, so no cache flatters it).

Each load is timed from `page.goto` to the awaited element in Debian's Chromium (Playwright), one
signed-in context; the server's own time for the HTML comes from the page's Navigation Timing
(`responseEnd - requestStart`). The floor is the same page with no server work: the HTML
tsunagu answered, saved once and served from memory by a stdlib HTTP server on loopback with
the same static files and their headers, so the browser draws the same figures with the same
`plotly.min.js` and `tsunagu.js`. `plot only` is a bare page holding just the chart divs (the
same `data-figure` JSON) and those two scripts. Loads of tsunagu and of its floor take turns,
so drift of the machine falls on both; the ratio of p95s is what tsunagu's server adds.

Requests off this machine are refused: by default through a proxy that does not exist (the
browser keeps its HTTP cache, as a marketer's does), with `--route` by Playwright's `page.route`
as the screen tests do (which turns the browser's cache off: every load fetches and compiles
plotly.min.js again).

    .venv/bin/python benchmarks/screens.py --data /work/big/data [--loads 20] [--route]
    .venv/bin/python benchmarks/screens.py --customers 5000   # a fresh sample in a temp dir

Adds a marketer `bench-screens` to the store it is given (nothing else is written).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import numpy as np
from timing import serving

from tsunagu.exceptions import Conflict
from tsunagu.store import Store
from tsunagu.users import create_user

CHROMIUM = "/usr/bin/chromium"
LOGIN, PASSWORD = "bench-screens", "bench-screens-password"
TZ = "Asia/Tokyo"
WARM = 3
FUNNEL = [
    ("Product Viewed", "app"),
    ("Product Added", ""),
    ("Store Visited", ""),
    ("Order Completed", "store"),
]
KEPT_HEADERS = ("content-type", "cache-control", "etag", "last-modified")
NAVIGATION = (
    "() => { const n = performance.getEntriesByType('navigation')[0];"
    " return n.responseEnd - n.requestStart; }"
)


@dataclass
class Screen:
    name: str
    urls: list[str]
    """One path per load, the warm-up's first."""
    selector: str
    took: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    plot: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Answer:
    body: bytes
    headers: dict[str, str]


# -- the store --------------------------------------------------------------------------------


def build_sample(customers: int, root: Path) -> Path:
    """A fresh sample retailer in `root`, imported as `tsunagu demo` does; its data dir."""
    from tsunagu.analytics.facts import ensure_fresh
    from tsunagu.analytics.fans import compute_fan_levels, load_fan_rules
    from tsunagu.demo import generate
    from tsunagu.identity.graph import build_graph
    from tsunagu.identity.rules import load_rules
    from tsunagu.imports import DEMO_ORDER, run_import

    data = root / "data"
    generate(out_dir=root / "files", customers=customers, days=180, seed=42)
    with Store(data / "tsunagu.duckdb") as store:
        for kind, name in DEMO_ORDER:
            run_import(store=store, kind=kind, path=root / "files" / name, timezone=TZ)
        build_graph(store=store, rules=load_rules(data))
        ensure_fresh(store=store, rules=load_rules(data), timezone=TZ)
        compute_fan_levels(store=store, rules=load_fan_rules(data))
    return data


def funnel_steps(known: set[str]) -> list[tuple[str, str]]:
    """The 4-step cross-channel funnel, keeping the steps whose event the store has."""
    steps = [s for s in FUNNEL if s[0] in known]
    if len(steps) < 2:
        raise SystemExit(f"the store lacks the funnel's events: {sorted(known)}")
    return steps


def prepare(data: Path, profiles: int) -> tuple[list[tuple[str, str]], list[str]]:
    """Add the benchmark's marketer; the funnel's steps and the `profiles` busiest customers."""
    with Store(data / "tsunagu.duckdb") as store:
        try:
            create_user(store=store, login=LOGIN, role="marketer", password=PASSWORD)
        except Conflict:
            pass
        known = {e for (e,) in store.query("SELECT DISTINCT event FROM analytics_events")}
        busiest = [p for (p,) in store.query(
            "SELECT profile_id FROM profile_traits ORDER BY events DESC, profile_id LIMIT ?",
            [profiles],
        )]  # fmt: skip
    return funnel_steps(known), busiest


def screens(steps: list[tuple[str, str]], profiles: list[str]) -> list[Screen]:
    query = urlencode([kv for e, c in steps for kv in (("e", e), ("c", c))] + [("window", "14d")])
    funnel = f"/analytics/funnel?{query}"
    loads = len(profiles)
    return [
        Screen("home", ["/"] * loads, "#chart-customers[data-drawn]"),
        Screen(f"funnel ({len(steps)} steps)", [funnel] * loads, "#chart-funnel[data-drawn]"),
        Screen("timeline", [f"/profiles/{p}" for p in profiles], "#timeline"),
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the floor --------------------------------------------------------------------------------


@contextmanager
def signed_in(url: str) -> Iterator[httpx.Client]:
    """An httpx client holding the benchmark marketer's session."""
    with httpx.Client(base_url=url, timeout=300) as client:
        form = client.get("/login")
        found = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert found, "the sign-in page has no CSRF field"
        answer = client.post(
            "/login", data={"login": LOGIN, "password": PASSWORD, "csrf": found[1]}
        )
        assert answer.status_code == 303, answer.text[:400]
        yield client


def answer_of(response: httpx.Response) -> Answer:
    response.raise_for_status()
    kept = {k: v for k, v in response.headers.items() if k in KEPT_HEADERS}
    return Answer(response.content, kept)


def bare_page(html: str) -> bytes:
    """Only the page's chart divs (the same figure JSON) and the scripts that draw them."""
    charts = re.findall(r'<div id="([^"]+)" class="plot" data-figure="([^"]*)"></div>', html)
    divs = "".join(f'<div id="{i}" class="plot" data-figure="{f}"></div>\n' for i, f in charts)
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"></head><body>\n'
        f"{divs}"
        '<script src="/static/plotly.min.js"></script><script src="/static/app/tsunagu.js">'
        "</script>\n</body></html>\n"
    ).encode()


def floor_files(client: httpx.Client, pages: list[Screen]) -> dict[str, Answer]:
    """Each page as tsunagu answered it (under its own path), its bare chart page (under
    /bare/NAME) and the static files they load, with tsunagu's headers."""
    files: dict[str, Answer] = {}
    for screen in pages:
        page = answer_of(client.get(screen.urls[0]))
        html = page.body.decode()
        files[screen.urls[0].split("?")[0]] = page
        if 'data-figure="' in html:
            files[f"/bare/{id(screen)}"] = Answer(bare_page(html), page.headers)
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            files.setdefault(asset, answer_of(client.get(asset)))
    return files


@contextmanager
def floor_server(files: dict[str, Answer]) -> Iterator[str]:
    """`files` by path (the query left out) on a loopback port, with ETag revalidation."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            found = files.get(self.path.split("?", 1)[0])
            if found is None:
                self.send_error(404)
                return
            etag = found.headers.get("etag")
            fresh = etag is not None and self.headers.get("If-None-Match") == etag
            self.send_response(304 if fresh else 200)
            for key, value in found.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0" if fresh else str(len(found.body)))
            self.end_headers()
            if not fresh:
                self.wfile.write(found.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# -- the browser ------------------------------------------------------------------------------


def load(page: Any, url: str, selector: str) -> tuple[float, float]:
    """Seconds from `goto` to `selector`, and the server's milliseconds for the HTML."""
    page.goto("about:blank")  # every load arrives from elsewhere, not as a reload
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_selector(selector, state="attached", timeout=300_000)
    took = time.perf_counter() - started
    page.wait_for_load_state("load")
    return took, float(page.evaluate(NAVIGATION))


def measure(url: str, floor: str, pages: list[Screen], loads: int, route: bool) -> list[str]:
    """Fill each screen's timings; the requests that tried to leave the machine."""
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]  # fmt: skip
    if not route:  # anything but loopback goes to a proxy that is not there
        args.append("--proxy-server=http://127.0.0.1:9")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
            page = context.new_page()

            def watch(request: Any) -> None:
                if request.url.split("/")[2].split(":")[0] != "127.0.0.1" and not (
                    request.url.startswith(("about:", "data:"))
                ):
                    outside.append(request.url)

            page.on("request", watch)
            if route:

                def refuse(r: Any) -> None:
                    local = r.request.url.split("/")[2].split(":")[0] == "127.0.0.1"
                    if local:
                        r.continue_()
                    else:
                        r.abort()

                page.route("**/*", refuse)
            page.goto(f"{url}/login")
            page.fill('input[name="login"]', LOGIN)
            page.fill('input[name="password"]', PASSWORD)
            page.click('button[type="submit"]')
            page.wait_for_url(f"{url}/")
            for screen in pages:
                saved = floor + screen.urls[0]
                bare = f"{floor}/bare/{id(screen)}" if "data-drawn" in screen.selector else None
                for n, path in enumerate(screen.urls[: WARM + loads]):
                    took, server = load(page, url + path, screen.selector)
                    floored, _ = load(page, saved, screen.selector)
                    plotted = load(page, bare, screen.selector)[0] if bare else float("nan")
                    if n >= WARM:
                        screen.took.append(took)
                        screen.server.append(server)
                        screen.floor.append(floored)
                        screen.plot.append(plotted)
                print(f"  {screen.name}: {loads} loads done", flush=True)
        finally:
            browser.close()
    return outside


# -- the report -------------------------------------------------------------------------------


def ms(values: list[float], q: float) -> float:
    """The `q` percentile of `values` (seconds) in milliseconds, linear interpolation."""
    return float(np.percentile(values, q)) * 1000


def report(pages: list[Screen], route: bool) -> None:
    print(f"\nmachine: {os.cpu_count()} cores, {platform.platform()}; "
          f"browser cache {'off (page.route)' if route else 'on'}")  # fmt: skip
    head = ("page", "tsunagu p50", "p95", "floor p50", "p95", "ratio p95", "server HTML p95",
            "plot only p95")  # fmt: skip
    rows = [head]
    for s in pages:
        plot = f"{ms(s.plot, 95):.0f}" if s.plot and not np.isnan(s.plot).any() else "-"
        rows.append((s.name, f"{ms(s.took, 50):.0f}", f"{ms(s.took, 95):.0f}",
                     f"{ms(s.floor, 50):.0f}", f"{ms(s.floor, 95):.0f}",
                     f"{ms(s.took, 95) / ms(s.floor, 95):.1f}x", f"{np.percentile(s.server, 95):.0f}",
                     plot))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for n, r in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                for i, (c, w) in enumerate(zip(r, widths, strict=True))) + " |")  # fmt: skip
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print("(milliseconds; tsunagu and floor from goto to the element, server HTML from the "
          "page's Navigation Timing)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", type=Path, help="a data dir (default /work/big/data)")
    source.add_argument("--customers", type=int, help="generate a fresh sample of N customers")
    parser.add_argument("--loads", type=int, default=20, help="timed loads of each page")
    parser.add_argument("--route", action="store_true", help="refuse off-machine requests "
                        "with page.route (turns the browser's cache off)")  # fmt: skip
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-screens-")) if args.customers else None
    try:
        if scratch:
            print(f"generating and importing {args.customers:,} customers into {scratch}")
            data = build_sample(args.customers, scratch)
        else:
            data = args.data or Path("/work/big/data")
        steps, profiles = prepare(data, WARM + args.loads)
        pages = screens(steps, profiles)
        with serving(data, free_port()) as url:
            httpx.get(f"{url}/healthz", timeout=30).raise_for_status()
            with signed_in(url) as client:
                files = floor_files(client, pages)
            with floor_server(files) as floor:
                print(f"tsunagu at {url}, floor at {floor}; {WARM} warm-up and {args.loads} "
                      f"timed loads of each page")  # fmt: skip
                outside = measure(url, floor, pages, args.loads, args.route)
        report(pages, args.route)
        if outside:
            print(f"refused {len(outside)} requests off this machine, e.g. {outside[0]}")
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
