"""Recommendations on an imported store: training time, the offline test (recall@10 and
NDCG@10 against popularity) and the latency of one request in process (web, app and in-store
contexts mixed; customers with and without history).

    .venv/bin/python benchmarks/recommend.py --data-dir DIR [--requests 500] [--skip-evaluate]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from timing import percentile

from tsunagu.recommend.service import current, evaluate, recommend, train_and_save
from tsunagu.store import Store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--skip-evaluate", action="store_true")
    args = parser.parse_args()
    with Store(args.data_dir / "tsunagu.duckdb", memory_limit="4GB") as store:
        if not args.skip_evaluate:
            print(evaluate(store=store, max_customers=10_000))
        report = train_and_save(store=store, data_dir=args.data_dir)
        print(f"trained: {report}")
        model = current(args.data_dir)
        rng = random.Random(1)
        profiles = [r[0] for r in store.query("SELECT profile_id FROM analytics_profiles")]
        stores = [r[0] for r in store.query("SELECT store_id FROM stores")]
        asks = [
            (rng.choice(profiles), rng.choice(["web", "app", "store"]))
            for _ in range(args.requests)
        ]
        recommend(store=store, recommender=model, profile_id=asks[0][0])  # caches
        took, reasons = [], {"history": 0, "popular_in_region": 0, "popular": 0}
        for profile_id, context in asks:
            started = time.perf_counter()
            answer = recommend(
                store=store,
                recommender=model,
                profile_id=profile_id,
                context=context,  # type: ignore[arg-type]
                store_id=rng.choice(stores) if context == "store" else None,
            )
            took.append(time.perf_counter() - started)
            if answer.items:
                reasons[answer.items[0].reason] += 1
        print(
            f"{len(asks)} requests: p50 {percentile(took, 0.5):.1f} ms, p99 "
            f"{percentile(took, 0.99):.1f} ms; first item from {reasons}"
        )


if __name__ == "__main__":
    main()
