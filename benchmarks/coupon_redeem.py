"""Coupon redemption at the till on a running server: `tsunagu serve` (its own process) takes
POST /v1/coupons/{code}/redeem at a steady rate (each a different coupon, with a POS key),
and GET /healthz at the same rate in the same run (the floor: a request that does nothing).
Prints p50 / p95 / p99 of both.

    .venv/bin/python benchmarks/coupon_redeem.py [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
from timing import cli, percentile, serving

from tsunagu.store import Store

TILLS = 32  # enough that the offered rate is kept while answers wait


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=200, help="redemptions a second")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    total = int(args.rate * args.seconds)
    work = Path(tempfile.mkdtemp(prefix="bench-coupon-"))
    data = work / "data"
    members = work / "members.csv"
    members.write_text(
        "member_id,name\n" + "".join(f"M{n:06d},会員{n}\n" for n in range(total)), encoding="utf-8"
    )
    cli(data, "import", "members", str(members))
    cli(data, "identity", "build")
    admin = cli(data, "keys", "create", "bench", "--scope", "admin")
    pos = cli(data, "keys", "create", "till", "--scope", "pos")
    with Store(data / "tsunagu.duckdb") as store:
        profiles = [r[0] for r in store.query("SELECT DISTINCT profile_id FROM identity_nodes")]
    port = 19000 + os.getpid() % 1000
    with serving(data, port) as url:
        auth = {"Authorization": f"Bearer {admin}"}
        today = date.today()
        made = httpx.post(f"{url}/v1/campaigns", headers=auth, json={
            "name": "bench", "control_share": 0, "coupon": {
                "value_yen": 500, "valid_from": str(today - timedelta(days=1)),
                "valid_to": str(today + timedelta(days=30))}})  # fmt: skip
        made.raise_for_status()
        campaign = made.json()["campaign_id"]
        issued = httpx.post(f"{url}/v1/campaigns/{campaign}/coupons", headers=auth,
                            json={"profile_ids": profiles}, timeout=300)  # fmt: skip
        issued.raise_for_status()
        codes = [c["code"] for c in issued.json()["coupons"]]
        redeem: list[float] = []
        floor: list[float] = []
        statuses: dict[int, int] = {}
        lock = threading.Lock()
        begin = time.perf_counter() + 0.3

        def till(first: int, step: int) -> None:
            # http.client, not httpx: the load generator shares the machine's cores with the
            # server, so it must cost as little as it can.
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            head = {"Authorization": f"Bearer {pos}", "Content-Type": "application/json"}
            for n in range(first, len(codes), step):
                wait = begin + n / args.rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                body = json.dumps({"store_id": "S001", "receipt_id": f"R{n}", "amount_yen": 5000})
                t = time.perf_counter()
                conn.request("POST", f"/v1/coupons/{codes[n]}/redeem", body, head)
                answer = conn.getresponse()
                answer.read()
                took = time.perf_counter() - t
                t = time.perf_counter()
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                base = time.perf_counter() - t
                with lock:
                    redeem.append(took)
                    floor.append(base)
                    statuses[answer.status] = statuses.get(answer.status, 0) + 1
            conn.close()

        threads = [threading.Thread(target=till, args=(w, TILLS)) for w in range(TILLS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - begin
    print(f"{len(redeem):,} redemptions in {took:.1f} s ({len(redeem) / took:,.0f}/s); "
          f"answers {statuses}")  # fmt: skip
    print(
        f"redeem: p50 {percentile(redeem, 0.5):.1f} ms, p95 {percentile(redeem, 0.95):.1f} ms, "
        f"p99 {percentile(redeem, 0.99):.1f} ms"
    )
    print(
        f"floor (GET /healthz): p50 {percentile(floor, 0.5):.1f} ms, "
        f"p99 {percentile(floor, 0.99):.1f} ms; ratio at p99 "
        f"{percentile(redeem, 0.99) / max(percentile(floor, 0.99), 1e-9):.1f}x"
    )


if __name__ == "__main__":
    main()
