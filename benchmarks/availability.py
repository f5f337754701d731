"""Stock near me: `GET /v1/inventory/availability` latency with 200 stores x 50,000 SKUs
(10M stock rows), in process and over HTTP on loopback, p50 / p99: the first queries after
loading (cold), then, after warming on other queries, the timed ones.

    .venv/bin/python benchmarks/availability.py [--stores 200] [--skus 50000] [--requests 1000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from timing import percentile

from tsunagu.api import create_app
from tsunagu.catalog.inventory import availability
from tsunagu.config import Settings
from tsunagu.keys import create_key
from tsunagu.server import serve_in_thread
from tsunagu.store import Store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=200)
    parser.add_argument("--skus", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        with Store(settings.database_path) as store:
            started = time.perf_counter()
            with store.transaction() as cur:
                # Stores over Japan (lat 31-43, lon 130-145); every store stocks ~70% of SKUs.
                cur.execute(
                    "INSERT INTO stores (store_id, name, prefecture, lat, lon, updated_at) "
                    "SELECT printf('S%04d', i), printf('店舗%d', i), '東京都', "
                    "31 + 12 * random(), 130 + 15 * random(), now() FROM range(?) t(i)",
                    [args.stores],
                )
                cur.execute(
                    "INSERT INTO inventory SELECT printf('S%04d', s), printf('SKU-%06d', k), "
                    "CASE WHEN random() < 0.3 THEN 0 ELSE (random() * 20)::BIGINT + 1 END, now() "
                    "FROM range(?) a(s), range(?) b(k)",
                    [args.stores, args.skus],
                )
            rows = store.scalar("SELECT count(*) FROM inventory")
            print(f"{rows:,} stock rows in {time.perf_counter() - started:.1f} s; 2 cores")
            # Three lists of their own: the first queries after loading (cold), the warm-up, and
            # the timed ones (warming on the queries then timed would time answers seen before).
            cold, warm_up, queries = (
                [
                    (f"SKU-{k:06d}", 31 + 12 * rng.random(), 130 + 15 * rng.random())
                    for k in rng.sample(range(args.skus), n)
                ]
                for n in (20, 50, args.requests)
            )

            def ask_here(sku: str, lat: float, lon: float) -> float:
                t = time.perf_counter()
                availability(store=store, sku=sku, lat=lat, lon=lon, radius_km=300)
                return time.perf_counter() - t

            took = [ask_here(*q) for q in cold]
            print(
                f"in process, cold (the first {len(cold)} after loading): p50 "
                f"{percentile(took, 0.5):.2f} ms, max {max(took) * 1000:.2f} ms"
            )
            for q in warm_up:
                ask_here(*q)
            took = [ask_here(*q) for q in queries]
            print(
                f"in process, warm: p50 {percentile(took, 0.5):.2f} ms, p99 "
                f"{percentile(took, 0.99):.2f} ms, mean {statistics.mean(took) * 1000:.2f} ms"
            )
            _, key = create_key(store=store, name="bench", scope="read")
            with (
                serve_in_thread(create_app(settings, store=store)) as url,
                httpx.Client() as client,
            ):
                headers = {"Authorization": f"Bearer {key}"}

                def ask(sku: str, lat: float, lon: float) -> None:
                    params = {"sku": sku, "lat": lat, "lon": lon, "radius_km": 300}
                    response = client.get(
                        f"{url}/v1/inventory/availability", params=params, headers=headers
                    )
                    assert response.status_code == 200, response.text

                for q in warm_up:
                    ask(*q)
                took = []
                for q in queries:
                    t = time.perf_counter()
                    ask(*q)
                    took.append(time.perf_counter() - t)
            print(
                f"over HTTP: p50 {percentile(took, 0.5):.2f} ms, p99 {percentile(took, 0.99):.2f} ms"
            )


if __name__ == "__main__":
    main()
