"""Event → triggered message on a running server: `tsunagu serve` (its own process) takes
events at a steady rate through the collector (in batches, 50 a second, as Segment's clients
send them), one in ten a "Product Added" that a journey
answers at once on LINE (the same text for everyone, so by multicast when several are due at
once); LINE's API is a server on loopback in this process. Prints the time from sending each
triggering event to LINE receiving its message (p50 / p95 / p99), beside the
collector's own acknowledgement time for the same batches (the floor: the event has to arrive
before anything can answer it), measured in the same run.

    .venv/bin/python benchmarks/journey_latency.py [--rate 1000] [--seconds 15] [--members 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from timing import line_members, percentile, serving

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.activation.servers import line_api  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=1000, help="events a second")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument(
        "--tick",
        type=float,
        default=0.5,
        help="journey_tick_seconds (the default; commits wake the journeys)",
    )
    args = parser.parse_args()
    data, write_key, admin = line_members("bench-journey-", args.members)
    received: dict[str, float] = {}
    with line_api() as api:

        def arrived(item: dict[str, Any]) -> None:  # a push names one, a multicast many
            now, to = time.perf_counter(), item["to"]
            received.update(dict.fromkeys([to] if isinstance(to, str) else to, now))

        api.on_receive = arrived
        port = 18000 + os.getpid() % 1000
        env = {"TSUNAGU_LINE_CHANNEL_ACCESS_TOKEN": "line-token",
               "TSUNAGU_LINE_API_BASE": api.url, "TSUNAGU_QUIET_HOURS": "",
               "TSUNAGU_CAP_CHANNEL_DAY": "0", "TSUNAGU_CAP_ALL_DAY": "0",
               "TSUNAGU_JOURNEY_TICK_SECONDS": str(args.tick)}  # fmt: skip
        with serving(data, port, env) as url:
            made = httpx.post(f"{url}/v1/journeys", headers={"Authorization": f"Bearer {admin}"},
                              json={"name": "bench", "control_share": 0, "channel": "line",
                                    "reentry": "always",
                                    "trigger": {"event": {"event": "Product Added"}},
                                    "steps": [{"send": {"message": {"text": "カートの商品"}}}]})  # fmt: skip
            made.raise_for_status()
            time.sleep(1.5)
            sent: dict[str, float] = {}
            acks: list[float] = []
            total = int(args.rate * args.seconds)
            lock = threading.Lock()

            per_batch = max(1, args.rate // 50)  # 50 batches a second, as Segment's clients batch

            def worker(first: int, step: int) -> None:
                with httpx.Client(base_url=url, auth=(write_key, ""), timeout=30) as client:
                    for b in range(first, total // per_batch, step):
                        due = begin + b * per_batch / args.rate
                        wait = due - time.perf_counter()
                        if wait > 0:
                            time.sleep(wait)
                        numbers = range(b * per_batch, (b + 1) * per_batch)
                        batch = [{"type": "track", "userId": f"M{(n // 10) % args.members:06d}",
                                  "event": "Product Added" if n % 10 == 0 else "Product Viewed",
                                  "properties": {"sku": f"SKU-{n % 300}"}} for n in numbers]  # fmt: skip
                        t = time.perf_counter()
                        client.post("/v1/batch", json={"batch": batch})
                        done = time.perf_counter()
                        with lock:
                            acks.append(done - t)
                            for n in numbers:
                                if n % 10 == 0:
                                    sent[f"U{(n // 10) % args.members:032x}"] = t

            workers = 8
            begin = time.perf_counter() + 0.2
            threads = [threading.Thread(target=worker, args=(w, workers)) for w in range(workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            took = time.perf_counter() - begin
            deadline = time.perf_counter() + 30
            while len(received) < len(sent) and time.perf_counter() < deadline:
                time.sleep(0.05)
            print(f"waited for the last pushes: {len(received):,} of {len(sent):,}")
    latency = [received[k] - v for k, v in sent.items() if k in received] or [float("nan")]
    print(f"{total:,} events in {took:.1f} s ({total / took:,.0f}/s), {len(sent):,} triggering; "
          f"{len(latency):,} pushes arrived")  # fmt: skip
    print(
        f"event -> LINE push: p50 {percentile(latency, 0.5):.0f} ms, "
        f"p95 {percentile(latency, 0.95):.0f} ms, p99 {percentile(latency, 0.99):.0f} ms"
    )
    print(
        f"floor (collector ack): p50 {percentile(acks, 0.5):.1f} ms, "
        f"p95 {percentile(acks, 0.95):.1f} ms; ratio at p95 "
        f"{percentile(latency, 0.95) / max(percentile(acks, 0.95), 1e-9):.0f}x"
    )


if __name__ == "__main__":
    main()
