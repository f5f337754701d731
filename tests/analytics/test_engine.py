"""The engine seam: every query an analysis sends can be said in Spark SQL.

A checking engine transpiles each statement to Spark (SQLGlot raises on what Spark lacks) and
then runs the original on DuckDB, so each analysis runs end to end through the seam, the
funnel by its portable SQL (an engine on a cluster does not walk rows in process).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import sqlglot

from tests.analytics.conftest import TZ
from tsunagu.analytics.channels import ChannelsQuery, run_channels
from tsunagu.analytics.engine import Engine, transpile
from tsunagu.analytics.fans import FanRules, fan_report
from tsunagu.analytics.filters import parse
from tsunagu.analytics.funnels import FunnelQuery, run_funnel
from tsunagu.analytics.kpis import KpiQuery, run_kpis
from tsunagu.analytics.paths import PathsQuery, run_paths
from tsunagu.analytics.retention import RetentionQuery, run_retention
from tsunagu.store import Store


class SparkChecked(Engine):
    walks_in_process = False

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.statements: list[str] = []

    def compile(self, sql: str) -> str:
        spark = transpile(sql, "spark")
        sqlglot.parse_one(spark, read="spark")
        self.statements.append(spark)
        return sql

    def table(self, sql: str) -> pa.Table:
        self.compile(sql)
        return super().table(sql)


def test_every_analysis_runs_through_a_spark_checked_seam(sample: tuple[Path, Store]) -> None:
    _, store = sample
    engine = SparkChecked(store)
    direct = Engine(store)
    funnel = parse(
        FunnelQuery,
        {
            "steps": [
                {"event": "Product Viewed", "channel": "app"},
                {"event": "Store Visited"},
                {
                    "event": "Order Completed",
                    "channel": "store",
                    "where": {"revenue": {"gte": 1000}},
                },
            ],
            "window": "14d",
            "breakdown": "profile.home_store_id",
            "exclusions": [{"event": "Order Completed", "channel": "web"}],
        },
    )
    assert (
        run_funnel(engine=engine, query=funnel, timezone=TZ).steps
        == run_funnel(engine=direct, query=funnel, timezone=TZ).steps
    )
    retention = parse(
        RetentionQuery,
        {
            "start": {"event": "Order Completed"},
            "return": {"event": "Store Visited"},
            "breakdown": "channel",
        },
    )
    assert run_retention(engine=engine, query=retention).cohorts
    paths = parse(PathsQuery, {"event": {"event": "Store Visited"}, "direction": "before"})
    assert run_paths(engine=engine, query=paths, timezone=TZ).links
    assert run_channels(engine=engine, query=parse(ChannelsQuery, {}), timezone=TZ).buyers
    assert run_kpis(
        engine=engine, query=parse(KpiQuery, {"grain": "week", "by_store": True})
    ).totals
    last = store.scalar("SELECT max(day) FROM analytics_events")
    report = fan_report(engine=engine, rules=FanRules(), compare_to=last - timedelta(days=30))
    assert report.movement
    assert len(engine.statements) >= 10
