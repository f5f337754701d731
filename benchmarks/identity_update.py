"""Incremental identity update throughput: new activity of known and new customers folded into a
built graph, against a full rebuild of the same store.

Takes N events from the retailer's `events.jsonl` spread over the file (returning customers,
anonymous visitors, logins, POS), gives them new message ids and moves them 20 days later (the sample ends a few weeks before today), imports
them into a store whose graph is built, and times `update_graph`. Run it on a copy of the store:
it adds events.

    .venv/bin/python benchmarks/identity_update.py --data-dir STORE_COPY \
        --events RETAILER/events.jsonl [--count 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from tsunagu.identity.graph import build_graph, update_graph
from tsunagu.identity.rules import IdentityRules
from tsunagu.imports import run_import
from tsunagu.store import Store


def later(line: str, n: int) -> str:
    event = json.loads(line)
    event["messageId"] = f"update-bench-{n}"
    stamp = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
    event["timestamp"] = (stamp + timedelta(days=20)).isoformat().replace("+00:00", "Z")
    return json.dumps(event, ensure_ascii=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True, help="a copy: events are added")
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--count", type=int, default=200_000)
    args = parser.parse_args()
    with args.events.open("rb") as fh:
        total = sum(1 for _ in fh)
    step = max(1, total // args.count)
    with args.events.open(encoding="utf-8") as fh:
        picked = [line for i, line in enumerate(fh) if i % step == 0][: args.count]
    rules = IdentityRules()
    with tempfile.TemporaryDirectory() as tmp, Store(args.data_dir / "tsunagu.duckdb") as store:
        if not store.scalar("SELECT count(*) FROM identity_state WHERE key = 'updated_to'"):
            build_graph(store=store, rules=rules)
        path = Path(tmp) / "new.jsonl"
        path.write_text("\n".join(later(x, i) for i, x in enumerate(picked)) + "\n", "utf-8")
        imported = run_import(store=store, kind="events", path=path).imported
        start = time.perf_counter()
        report = update_graph(store=store, rules=rules)
        seconds = time.perf_counter() - start
        print(
            f"update: {imported:,} new events ({report.records:,} identifier records, "
            f"{report.new_identifiers:,} new identifiers, {report.merged_profiles:,} merges, "
            f"{report.refused_links:,} refused) in {seconds:.1f} s = "
            f"{imported / seconds:,.0f} events/s on {os.cpu_count()} cores"
        )
        start = time.perf_counter()
        build_graph(store=store, rules=rules)
        print(f"full rebuild of the same store: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
