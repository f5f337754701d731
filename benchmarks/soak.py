"""Soak: `tsunagu serve` (its own process, loopback only) takes a steady stream of events
through the collector (1,000 a second in batches of 20, by default for 10 minutes) while
analytics queries run every few seconds and a journey answers every "Product Added" on LINE
(LINE's API a server on loopback in this process). Bounded in count and time.

Every `--every` seconds it prints the window's events/s, the collector's p99 acknowledgement,
the queries' p99, errors, messages LINE received and the server's resident memory. At the end:
the rate reached against the rate offered, the last window's p99 and memory against the first
minute's (the ratios: growth that does not level off shows there).

    .venv/bin/python benchmarks/soak.py [--rate 1000] [--minutes 10] [--members 5000]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from timing import line_members, percentile, serving

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.activation.servers import line_api  # noqa: E402

PER_BATCH = 20
QUERIES = (
    ("POST", "/v1/analytics/funnel",
     {"steps": [{"event": "Product Viewed"}, {"event": "Product Added"}], "window": "1d"}),
    ("GET", "/v1/analytics/kpis", None),
    ("POST", "/v1/analytics/retention",
     {"start": {"event": "Product Viewed"}, "return": {"event": "Product Added"}, "grain": "day",
      "periods": 3}),
    ("GET", "/v1/analytics/channels", None),
)  # fmt: skip


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _recipients(received: list[dict[str, Any]]) -> int:
    """Customers LINE was asked to reach (a push names one, a multicast many)."""
    return sum(1 if isinstance(r.get("to"), str) else len(r.get("to") or ()) for r in received)


class Window:
    """What happened since the last report."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acks: list[float] = []
        self.queries: list[float] = []
        self.events = 0
        self.errors = 0

    def take(self) -> tuple[list[float], list[float], int, int]:
        with self.lock:
            taken = (self.acks, self.queries, self.events, self.errors)
            self.acks, self.queries, self.events, self.errors = [], [], 0, 0
        return taken


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=1000, help="events a second")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--every", type=float, default=30, help="seconds between reports")
    parser.add_argument("--no-queries", action="store_true", help="events only (a floor)")
    parser.add_argument("--no-journey", action="store_true")
    args = parser.parse_args()
    seconds = args.minutes * 60
    data, write_key, admin = line_members("bench-soak-", args.members)
    window = Window()
    stop = threading.Event()
    with line_api() as api:
        env = {"TSUNAGU_LINE_CHANNEL_ACCESS_TOKEN": "line-token",
               "TSUNAGU_LINE_API_BASE": api.url, "TSUNAGU_QUIET_HOURS": "",
               "TSUNAGU_CAP_CHANNEL_DAY": "0", "TSUNAGU_CAP_ALL_DAY": "0",
               "TSUNAGU_CAP_CHANNEL_WEEK": "0", "TSUNAGU_CAP_ALL_WEEK": "0",
               "TSUNAGU_LOG_LEVEL": "warning"}  # fmt: skip
        port = 19000 + int(time.time()) % 1000
        with serving(data, port, env) as url:
            pid = int(json.loads((data / "server.json").read_text())["pid"])
            auth = {"Authorization": f"Bearer {admin}"}
            if not args.no_journey:
                made = httpx.post(f"{url}/v1/journeys", headers=auth, json={
                    "name": "soak", "control_share": 0, "channel": "line", "reentry": "always",
                    "trigger": {"event": {"event": "Product Added"}},
                    "steps": [{"send": {"message": {"text": "カートに商品があります"}}}]})  # fmt: skip
                made.raise_for_status()
            begin = time.perf_counter() + 0.5
            total_batches = int(args.rate * seconds) // PER_BATCH

            def sender(first: int, step: int) -> None:
                with httpx.Client(base_url=url, auth=(write_key, ""), timeout=30) as client:
                    for b in range(first, total_batches, step):
                        if stop.is_set():
                            return
                        wait = begin + b * PER_BATCH / args.rate - time.perf_counter()
                        if wait > 0:
                            time.sleep(wait)
                        batch = [{"type": "track",
                                  "userId": f"M{(b if i == 0 else b * PER_BATCH + i) % args.members:06d}",
                                  "event": "Product Added" if i == 0 else "Product Viewed",
                                  "messageId": f"soak-{b}-{i}",
                                  "properties": {"sku": f"SKU-{(b + i) % 500}"}}
                                 for i in range(PER_BATCH)]  # fmt: skip
                        t = time.perf_counter()
                        try:
                            ok = client.post("/v1/batch", json={"batch": batch}).status_code == 200
                        except httpx.HTTPError:
                            ok = False
                        took = time.perf_counter() - t
                        with window.lock:
                            window.acks.append(took)
                            window.events += PER_BATCH if ok else 0
                            window.errors += 0 if ok else 1

            def querier() -> None:
                with httpx.Client(base_url=url, headers=auth, timeout=120) as client:
                    n = 0
                    while not stop.wait(2.0):
                        method, path, body = QUERIES[n % len(QUERIES)]
                        n += 1
                        t = time.perf_counter()
                        try:
                            ok = client.request(method, path, json=body).status_code == 200
                        except httpx.HTTPError:
                            ok = False
                        with window.lock:
                            window.queries.append(time.perf_counter() - t)
                            window.errors += 0 if ok else 1

            threads = [threading.Thread(target=sender, args=(w, 8)) for w in range(8)]
            threads.append(threading.Thread(target=querier if not args.no_queries else stop.wait))
            for thread in threads:
                thread.start()
            rows: list[dict[str, Any]] = []
            print(f"{'t (s)':>6} {'events/s':>9} {'ack p99':>9} {'query p99':>10} "
                  f"{'errors':>7} {'LINE':>7} {'RSS MB':>7}")  # fmt: skip
            last = time.perf_counter()
            while any(t.is_alive() for t in threads[:-1]):
                time.sleep(args.every)
                now = time.perf_counter()
                acks, queries, events, errors = window.take()
                row = {
                    "t": now - begin, "rate": events / (now - last),
                    "ack_p99": percentile(acks, 0.99) if acks else float("nan"),
                    "query_p99": percentile(queries, 0.99) if queries else float("nan"),
                    "errors": errors, "line": _recipients(api.received), "rss": _rss_mb(pid),
                }  # fmt: skip
                last = now
                rows.append(row)
                print(f"{row['t']:6.0f} {row['rate']:9,.0f} {row['ack_p99']:7.0f}ms "
                      f"{row['query_p99']:8.0f}ms {row['errors']:7d} {row['line']:7,d} "
                      f"{row['rss']:7.0f}", flush=True)  # fmt: skip
            stop.set()
            for thread in threads:
                thread.join()
    full = rows[:-1] or rows  # the last window is cut short by the end of the run
    steady = [r for r in full if r["t"] > 60] or full
    first = [r for r in rows if r["t"] <= 60] or rows[:1]
    reached = sum(r["rate"] for r in steady) / len(steady)
    errors = sum(r["errors"] for r in rows)
    triggers = 0 if args.no_journey else sum(r["rate"] * args.every for r in rows) / PER_BATCH
    print(f"\nrate: {reached:,.0f} events/s of {args.rate:,} offered ({reached / args.rate:.2f}); "
          f"errors: {errors}; LINE messages: {rows[-1]['line']:,} for ~{triggers:,.0f} "
          "Product Added")  # fmt: skip
    end = full[-1]
    print(f"ack p99: last full window {end['ack_p99']:.0f} ms vs first minute "
          f"{max(r['ack_p99'] for r in first):.0f} ms; query p99 {end['query_p99']:.0f} ms vs "
          f"{max(r['query_p99'] for r in first):.0f} ms")  # fmt: skip
    print(
        f"RSS: last full window {end['rss']:.0f} MB vs after the first minute "
        f"{first[-1]['rss']:.0f} MB ({end['rss'] / first[-1]['rss']:.2f}); "
        f"peak {max(r['rss'] for r in rows):.0f} MB"
    )


if __name__ == "__main__":
    main()
