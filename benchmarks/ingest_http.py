"""Events/s through POST /v1/batch with durable acknowledgement, from a concurrent client.

Starts `tsunagu serve` in a subprocess on a free loopback port with a fresh data dir, sends
pre-built batches from several client threads, and prints events/s counted from 200 answers
(every 200 means the events are committed). Then, in the same run, the same kind of batches
(their own message ids) from the same client to the floor (benchmarks/floor_collector.py: parse,
columns, Arrow into DuckDB, group commit, 200 after commit, no validation), and the ratio.
Then checks the store holds exactly what was sent.

    .venv/bin/python benchmarks/ingest_http.py [--events 300000] [--batch 500] [--clients 8]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
from timing import percentile, serving

BIN = Path(sys.executable).parent / "tsunagu"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_bodies(events: int, batch: int) -> list[tuple[bytes, int]]:
    """Request bodies, each with the number of messages it holds."""
    bodies = []
    kinds = [
        "Product Viewed",
        "Product Added",
        "Products Searched",
        "Store Visited",
        "Order Completed",
    ]
    for start in range(0, events, batch):
        messages = []
        for i in range(start, min(start + batch, events)):
            messages.append(
                {
                    "type": "track",
                    "event": kinds[i % len(kinds)],
                    "userId": f"M{i % 50_000:06d}",
                    "messageId": uuid.uuid4().hex,
                    "timestamp": "2026-10-01T03:04:05.678Z",
                    "context": {
                        "channel": "app" if i % 2 else "web",
                        "library": {"name": "analytics-python", "version": "2.4.0"},
                    },
                    "properties": {"sku": f"P{i % 3000:05d}", "category": "靴", "price": 12900},
                }
            )
        body = orjson.dumps({"batch": messages, "sentAt": "2026-10-01T03:04:06Z"})
        bodies.append((body, len(messages)))
    return bodies


@dataclass
class Run:
    acked: int
    failures: int
    wall: float
    latencies: list[float]

    def line(self, name: str) -> str:
        return (
            f"{name:<8} {self.acked / self.wall:>10,.0f} events/s  p50 "
            f"{percentile(self.latencies, 0.5):>5.0f} ms  p99 "
            f"{percentile(self.latencies, 0.99):>5.0f} ms  failed {self.failures}"
        )


def send_all(url: str, bodies: list[tuple[bytes, int]], clients: int, auth: Any) -> Run:
    """Every body POSTed to /v1/batch by `clients` threads; the messages of 200s counted as
    acknowledged."""
    next_body = iter(range(len(bodies)))
    lock = threading.Lock()
    run = Run(0, 0, 0.0, [])

    def client() -> None:
        with httpx.Client(base_url=url, auth=auth, timeout=60) as http:
            while True:
                with lock:
                    index = next(next_body, None)
                if index is None:
                    return
                body, messages = bodies[index]
                t0 = time.perf_counter()
                response = http.post(
                    "/v1/batch", content=body, headers={"Content-Type": "application/json"}
                )
                elapsed = time.perf_counter() - t0
                with lock:
                    run.latencies.append(elapsed)
                    if response.status_code == 200:
                        run.acked += messages
                    else:
                        run.failures += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.wall = time.perf_counter() - started
    return run


@contextmanager
def floor_serving(db: Path) -> Iterator[str]:
    """benchmarks/floor_collector.py in a process of its own; its URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("floor_collector.py")), "--port",
         str(port), "--db", str(db)], stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not start")
        time.sleep(0.1)


def preload(data_dir: Path, events: int) -> None:
    """`events` events of 50,000 customers over a year, written straight into the store."""
    from tsunagu.store import Store

    started = time.perf_counter()
    with Store(data_dir / "tsunagu.duckdb") as store, store.transaction() as cur:
        cur.execute(
            """
            INSERT INTO events (message_id, type, event, user_id, channel, timestamp,
                                received_at, source, raw, stored_at)
            SELECT 'pre-' || i, 'track', 'Product Viewed', 'M' || lpad((i % 50000)::VARCHAR, 6, '0'),
                   'web', TIMESTAMP '2025-10-01' + to_seconds(i % 31536000), now()::TIMESTAMP,
                   'preload', json_object('type', 'track', 'event', 'Product Viewed',
                       'messageId', 'pre-' || i, 'properties', json_object('sku', 'P' || i % 3000)),
                   now()::TIMESTAMP
            FROM range(?) AS t(i)
            """,
            [events],
        )
    print(f"stored {events:,} events first ({time.perf_counter() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--data-dir", type=Path, help="an existing store to ingest into (default: a new one)"
    )
    parser.add_argument(
        "--stored", type=int, default=0, help="events to store first (made in SQL), e.g. 10000000"
    )
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="tsunagu-bench-"))
    if args.stored:
        preload(data_dir, args.stored)
    env = {**os.environ, "TSUNAGU_DATA_DIR": str(data_dir)}
    source = f"bench-{uuid.uuid4().hex[:6]}"
    key = subprocess.run(
        [str(BIN), "sources", "create", source],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    bodies = build_bodies(args.events, args.batch)
    print(f"{len(bodies)} batches of {args.batch} events, {args.clients} client threads")
    with serving(data_dir, free_port()) as url:
        wait_healthy(url)
        ours = send_all(url, bodies, args.clients, (key, ""))
    floor_db = Path(tempfile.mkdtemp(prefix="tsunagu-floor-")) / "floor.duckdb"
    with floor_serving(floor_db) as url:
        floor = send_all(url, build_bodies(args.events, args.batch), args.clients, None)
    print(ours.line("tsunagu"))
    print(floor.line("floor"))
    ratio = (ours.acked / ours.wall) / (floor.acked / floor.wall)
    print(f"tsunagu / floor: {ratio:.2f} (cores: {os.cpu_count()})")

    from tsunagu.store import Store

    with Store(data_dir / "tsunagu.duckdb") as store:
        stored = store.scalar("SELECT count(*) FROM events WHERE source = ?", [source])
        total = store.scalar("SELECT count(*) FROM events")
    with duckdb.connect(str(floor_db)) as db:
        floor_stored = db.execute("SELECT count(*) FROM events").fetchall()[0][0]
    print(f"stored {stored:,} events of {ours.acked:,} acknowledged (store of {total:,}); "
          f"floor {floor_stored:,} of {floor.acked:,}")  # fmt: skip
    if stored != ours.acked or ours.failures or floor_stored != floor.acked:
        raise SystemExit("FAILED: what was acknowledged is not what was stored")


if __name__ == "__main__":
    main()
