"""A campaign report over every customer of an imported store, beside the floor: one plain
DuckDB query that counts each variant's converters and revenue in the window (no visits, no
split, no pre-period, no statistics), on the same tables in the same run.

    .venv/bin/python benchmarks/campaign_report.py --data-dir DIR [--runs 3]

Works on a copy (`DIR/bench-report.duckdb`), so the store itself is left as it was.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from datetime import timedelta
from pathlib import Path

from tsunagu.activation.assignments import assign
from tsunagu.activation.campaigns import CampaignCreate, create_campaign
from tsunagu.activation.report import report
from tsunagu.analytics.filters import parse
from tsunagu.store import Store

FLOOR = """
WITH a AS (SELECT profile_id, variant, assigned_at FROM campaign_assignments WHERE campaign_id = ?)
SELECT a.variant, count(DISTINCT a.profile_id), sum(x.revenue)
FROM a JOIN analytics_profiles p USING (profile_id)
JOIN analytics_events x ON x.pid = p.pid AND x.ts >= a.assigned_at
    AND x.ts < a.assigned_at + INTERVAL 14 DAY AND x.event = 'Order Completed'
GROUP BY a.variant
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    copy = args.data_dir / "bench-report.duckdb"
    shutil.copy(args.data_dir / "tsunagu.duckdb", copy)
    try:
        with Store(copy, memory_limit="4GB") as store:
            started = time.perf_counter()
            campaign = create_campaign(
                store=store, body=parse(CampaignCreate, {"name": "bench", "control_share": 0.2})
            )
            profiles = [r[0] for r in store.query("SELECT profile_id FROM analytics_profiles")]
            last = store.query("SELECT max(ts) FROM analytics_events")[0][0]
            assign(
                store=store,
                campaign=campaign,
                profile_ids=profiles,
                at=last - timedelta(days=28),
                origin="bench",
            )
            print(f"assigned {len(profiles):,} customers in {time.perf_counter() - started:.1f} s")
            ours, floor = [], []
            for _ in range(args.runs):
                t = time.perf_counter()
                answer = report(store=store, campaign_id=campaign.campaign_id)
                ours.append(time.perf_counter() - t)
                t = time.perf_counter()
                store.query(FLOOR, [campaign.campaign_id])
                floor.append(time.perf_counter() - t)
            a, b = statistics.median(ours), statistics.median(floor)
            print(
                f"report: {a:.2f} s (median of {args.runs}); plain DuckDB floor: {b:.2f} s; "
                f"ratio {a / b:.2f}"
            )
            for v in answer["variants"]:
                print(
                    f"  {v['variant']}: {v['customers']:,} customers, "
                    f"conversion {v['conversion_rate']:.2%}, ¥{v['revenue_per_customer']:,.0f}"
                )
    finally:
        copy.unlink(missing_ok=True)
        Path(str(copy) + ".wal").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
