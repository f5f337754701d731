"""Events/s through POST /v1/batch with durable acknowledgement, from a concurrent client.

Starts `tsunagu serve` in a subprocess on a free loopback port with a fresh data dir, sends
pre-built batches from several client threads, and prints events/s counted from 200 answers
(every 200 means the events are committed). Then checks the store holds exactly what was sent.

    .venv/bin/python benchmarks/ingest_http.py [--events 300000] [--batch 500] [--clients 8]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import orjson

BIN = Path(sys.executable).parent / "tsunagu"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_bodies(events: int, batch: int) -> list[bytes]:
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
        bodies.append(orjson.dumps({"batch": messages, "sentAt": "2026-10-01T03:04:06Z"}))
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--data-dir", type=Path, help="an existing store to ingest into (default: a new one)"
    )
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="tsunagu-bench-"))
    env = {**os.environ, "TSUNAGU_DATA_DIR": str(data_dir)}
    source = f"bench-{uuid.uuid4().hex[:6]}"
    key = subprocess.run(
        [str(BIN), "sources", "create", source],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    server = subprocess.Popen(
        [str(BIN), "serve", "--port", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.1)

        bodies = build_bodies(args.events, args.batch)
        print(f"{len(bodies)} batches of {args.batch} events, {args.clients} client threads")
        next_body = iter(range(len(bodies)))
        lock = threading.Lock()
        acked = 0
        failures = 0
        latencies: list[float] = []

        def client() -> None:
            nonlocal acked, failures
            with httpx.Client(base_url=url, auth=(key, ""), timeout=60) as http:
                while True:
                    with lock:
                        index = next(next_body, None)
                    if index is None:
                        return
                    t0 = time.perf_counter()
                    response = http.post(
                        "/v1/batch",
                        content=bodies[index],
                        headers={"Content-Type": "application/json"},
                    )
                    elapsed = time.perf_counter() - t0
                    with lock:
                        latencies.append(elapsed)
                        if response.status_code == 200:
                            acked += args.batch
                        else:
                            failures += 1

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        latencies.sort()
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[int(len(latencies) * 0.99)] * 1000
        print(f"acknowledged {acked:,} events in {wall:.2f} s: {acked / wall:,.0f} events/s")
        print(f"request latency p50 {p50:.0f} ms, p99 {p99:.0f} ms; failed requests {failures}")
    finally:
        server.terminate()
        server.wait(timeout=30)

    from tsunagu.store import Store

    with Store(data_dir / "tsunagu.duckdb") as store:
        stored = store.scalar("SELECT count(*) FROM events WHERE source = ?", [source])
        total = store.scalar("SELECT count(*) FROM events")
    print(
        f"stored {stored:,} events (expected {args.events:,}) in a store of {total:,}; "
        f"cores: {os.cpu_count()}"
    )


if __name__ == "__main__":
    main()
