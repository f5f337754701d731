"""Identity figures on an imported store: full build time (and the profile traits' share of
it), profile lookup latency (in-process and over HTTP on loopback: `GET /v1/profiles/lookup`
and `GET /v1/profiles/{id}`), and probabilistic matching wall time.

    .venv/bin/python benchmarks/identity.py --data-dir DIR [--lookups 500] [--warmup 100]
        [--match FILE.csv]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from timing import percentile

from tsunagu.identity.graph import build_graph
from tsunagu.identity.profiles import get_profile, lookup
from tsunagu.identity.rules import IdentityRules
from tsunagu.keys import create_key
from tsunagu.store import Store

BIN = Path(sys.executable).parent / "tsunagu"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--lookups", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=100, help="untimed HTTP requests first")
    parser.add_argument("--match", type=Path, help="a CSV for identity match, timed")
    args = parser.parse_args()
    rules = IdentityRules()
    with Store(args.data_dir / "tsunagu.duckdb") as store:
        t0 = time.perf_counter()
        report = build_graph(store=store, rules=rules)
        print(
            f"build: {report.identifiers:,} identifiers, {report.profiles:,} profiles, "
            f"{report.records:,} records in {time.perf_counter() - t0:.1f} s, of which "
            f"profile traits {report.traits_seconds:.1f} s"
        )
        cards = [
            r[0]
            for r in store.query(
                "SELECT value FROM identity_nodes WHERE type = 'member_card' USING SAMPLE 2000 ROWS"
            )
        ]
        _, key = create_key(store=store, name=f"bench-{random.randint(0, 10**6)}", scope="read")
        rng = random.Random(1)
        times = []
        for card in rng.choices(cards, k=args.lookups):
            t = time.perf_counter()
            lookup(store=store, rules=rules, kind="member_card", value=card)
            times.append(time.perf_counter() - t)
        print(
            f"lookup in process: p50 {percentile(times, 0.5):.1f} ms, p99 {percentile(times, 0.99):.1f} ms"
        )
        times = []
        profile_ids = []
        for card in rng.choices(cards, k=args.lookups):
            t = time.perf_counter()
            profile_ids.append(
                get_profile(
                    store=store,
                    profile_id=lookup(store=store, rules=rules, kind="member_card", value=card),
                ).profile_id
            )
            times.append(time.perf_counter() - t)
        print(
            f"lookup + whole profile in process: p50 {percentile(times, 0.5):.1f} ms, p99 {percentile(times, 0.99):.1f} ms"
        )
        if args.match:
            t = time.perf_counter()
            from tsunagu.identity.matching import match_records

            result = match_records(store=store, path=args.match, rules=rules)
            print(f"match {result.records:,} records: {time.perf_counter() - t:.1f} s")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [str(BIN), "--data-dir", str(args.data_dir), "serve", "--port", str(port)],
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        times = []
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
            # Untimed: the server's first requests read the tables' pages from disk and open
            # a cursor per worker thread.
            for card in rng.choices(cards, k=args.warmup):
                http.get("/v1/profiles/lookup", params={"type": "member_card", "value": card})
            for card in rng.choices(cards, k=args.lookups):
                t = time.perf_counter()
                response = http.get(
                    "/v1/profiles/lookup", params={"type": "member_card", "value": card}
                )
                times.append(time.perf_counter() - t)
                assert response.status_code == 200, response.text
            print(
                f"GET /v1/profiles/lookup over HTTP: p50 {percentile(times, 0.5):.1f} ms, "
                f"p99 {percentile(times, 0.99):.1f} ms"
            )
            times = []
            for profile_id in rng.choices(profile_ids, k=args.lookups):
                t = time.perf_counter()
                response = http.get(f"/v1/profiles/{profile_id}")
                times.append(time.perf_counter() - t)
                assert response.status_code == 200, response.text
            print(
                f"GET /v1/profiles/{{id}} over HTTP: p50 {percentile(times, 0.5):.1f} ms, "
                f"p99 {percentile(times, 0.99):.1f} ms"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
