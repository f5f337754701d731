"""Segment refresh on an imported store: a segment created and filled whole, then kept current
under live ingestion by the server's refresher, which looks again only at the customers whose
events arrived; beside the whole recomputation of the same segment in the same run (rounds take
turns, each with its own arrivals, so both move the same number of customers).

    .venv/bin/python benchmarks/segment_refresh.py --data-dir DIR [--events 1000] [--rounds 6]

Works on a copy (`DIR/bench-segments.duckdb`).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from tsunagu.activation.membership import create_segment, refresh_segment
from tsunagu.activation.refresher import SegmentRefresher
from tsunagu.activation.segments import SegmentDefinition, preview
from tsunagu.analytics.facts import ensure_fresh
from tsunagu.analytics.filters import parse
from tsunagu.events.normalize import normalize
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store, utcnow

PREVIEWS = {
    "app viewers (the segment below)": {"event": "Product Viewed", "channel": "app",
                                        "within": "400d"},
    "spent ¥10,000 or more in store": {"trait": "spend_store", "gte": 10000},
    "added to cart, never bought": {"all": [
        {"event": "Product Added", "within": "400d"},
        {"not": {"event": "Order Completed", "within": "400d"}}]},
    "within 3 km of store S001 (home store or last location)": {"near_store": "S001", "km": 3},
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--events", type=int, default=1000, help="arriving per round")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    copy = args.data_dir / "bench-segments.duckdb"
    shutil.copy(args.data_dir / "tsunagu.duckdb", copy)
    try:
        with Store(copy, memory_limit="4GB") as store:
            rules = IdentityRules()
            ensure_fresh(store=store, rules=rules, timezone="Asia/Tokyo")
            rule = {"event": "Product Viewed", "channel": "app", "within": "400d"}
            for name, previewed in PREVIEWS.items():
                rule_of = parse(SegmentDefinition, {"name": "p", "rule": previewed}).rule
                times: list[float] = []
                for _ in range(2):  # the first reads from disk, the second as a marketer's next
                    t = time.perf_counter()
                    seen = preview(store=store, rule=rule_of)
                    times.append(time.perf_counter() - t)
                print(f"preview {name}: {seen.customers:,} in {times[0]:.2f} s, "
                      f"again {times[1]:.2f} s")  # fmt: skip
            t = time.perf_counter()
            floor = store.scalar(
                "SELECT count(DISTINCT pid) FROM analytics_events "
                "WHERE event = 'Product Viewed' AND channel = 'app'"
            )
            print(f"floor: the app viewers by hand-written SQL, {floor:,} in "
                  f"{time.perf_counter() - t:.2f} s")  # fmt: skip
            definition = parse(SegmentDefinition, {"name": "bench", "rule": rule})
            t = time.perf_counter()
            segment, first = create_segment(store=store, definition=definition, rules=rules)
            print(f"created and filled: {first.members:,} members, {time.perf_counter() - t:.2f} s")
            members = [r[0] for r in store.query(
                "SELECT value FROM identity_nodes WHERE type = 'user_id' LIMIT ?",
                [args.events * args.rounds],
            )]  # fmt: skip
            refresher = SegmentRefresher(store, data_dir=args.data_dir, timezone="Asia/Tokyo",
                                         interval=1, every=86400)  # fmt: skip
            took: dict[str, list[float]] = {"incremental": [], "whole": []}
            for n in range(args.rounds):
                # Rounds take turns, each with new customers' events: both kinds do the same
                # work (the same number enter, with their timeline events).
                kind = "incremental" if n % 2 == 0 else "whole"
                now = utcnow()
                batch = members[n * args.events : (n + 1) * args.events]
                store.insert_events([normalize(
                    {"type": "track", "event": "Product Viewed", "userId": user,
                     "context": {"channel": "app"}, "timestamp": now.isoformat() + "Z"},
                    received_at=now, source="bench") for user in batch])  # fmt: skip
                t = time.perf_counter()
                ensure_fresh(store=store, rules=rules, timezone="Asia/Tokyo")
                append = time.perf_counter() - t
                t = time.perf_counter()
                if kind == "incremental":
                    entered = sum(d.entered for d in refresher.tick())
                else:
                    entered = refresh_segment(
                        store=store, segment_id=segment.segment_id, rules=rules
                    ).entered
                took[kind].append(time.perf_counter() - t)
                print(
                    f"round {n + 1}: {len(batch):,} customers' events arrived; {kind} "
                    f"{took[kind][-1]:.2f} s, entered {entered:,} (the analytics table's append "
                    f"before it {append:.2f} s)"
                )
            if took["incremental"] and took["whole"]:
                inc, whole = (sum(v) / len(v) for v in (took["incremental"], took["whole"]))
                print(f"mean: incremental {inc:.2f} s, whole {whole:.2f} s; "
                      f"the incremental pass takes {inc / whole:.2f}x the whole's time")  # fmt: skip
    finally:
        copy.unlink(missing_ok=True)
        Path(str(copy) + ".wal").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
