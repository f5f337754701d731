"""Cross-channel analytics on an imported store, each timed on tsunagu and, in the same run,
on a pandas reference implementation (vectorised: merge_asof, groupby) over the same events,
each side timed the same way (best of --repeat), with the ratio and the answers compared both ways
(every funnel step, every retention cell zeros included, every paths node with (other) and
(end)):

- a 4-step cross-channel funnel with a 7-day window (app view -> store visit -> any view ->
  store purchase; and the plain 4-step online funnel);
- a weekly retention triangle (purchase -> purchase);
- paths after an app product view, 3 steps;

and the two funnels on ClickHouse's `windowFunnel` (chDB, in process) over the same events.

Also the analytics table's build time and peak memory (RSS).

    .venv/bin/python benchmarks/funnel.py --data-dir DIR [--repeat 3] [--rebuild]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsunagu.analytics.engine import Engine
from tsunagu.analytics.facts import ensure_fresh, rebuild
from tsunagu.analytics.filters import parse
from tsunagu.analytics.funnels import FunnelQuery, run_funnel
from tsunagu.analytics.paths import PathsQuery, run_paths
from tsunagu.analytics.retention import RetentionQuery, run_retention
from tsunagu.identity.rules import load_rules
from tsunagu.store import Store

TZ = "Asia/Tokyo"
WEEK_US = 7 * 86400 * 1_000_000

CROSS = [
    ("Product Viewed", "app"),
    ("Store Visited", None),
    ("Product Viewed", None),
    ("Order Completed", "store"),
]
ONLINE = [
    ("Product Viewed", None),
    ("Product Added", None),
    ("Checkout Started", None),
    ("Order Completed", None),
]


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def best_of(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    times, answer = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        answer = run()
        times.append(time.perf_counter() - started)
    return min(times), answer


# -- pandas reference -------------------------------------------------------------------------


def pandas_funnel(ev: pd.DataFrame, steps: list[tuple[str, str | None]]) -> list[int]:
    """Ordered funnel, 7-day window, each customer's best attempt (the same definitions, for
    steps that are different events: at one instant, events fill steps in any order)."""

    def rows(event: str, channel: str | None) -> pd.DataFrame:
        hit = ev["event"] == event
        if channel:
            hit &= ev["channel"] == channel
        return ev.loc[hit, ["pid", "us"]].drop_duplicates().astype({"us": "float64"})

    # A start whose instant has no step 2 is superseded by a later start before the next
    # instant with a step 2 (funnels.py).
    both = pd.concat([rows(*steps[0]).assign(k=1), rows(*steps[1]).assign(k=2)])
    inst = both.groupby(["pid", "us"])["k"].agg(["min", "max"]).reset_index()
    has1, has2 = inst["min"] == 1, inst["max"] == 2
    nxt_pid, nxt_has1, nxt_has2 = inst["pid"].shift(-1), has1.shift(-1), has2.shift(-1)
    superseded = has1 & ~has2 & (nxt_pid == inst["pid"]) & (nxt_has1 == True) & (nxt_has2 == False)  # noqa: E712
    chain = inst.loc[has1 & ~superseded, ["pid", "us"]].rename(columns={"us": "t1"})
    prev = "t1"
    for i, step in enumerate(steps[1:], start=2):
        right = rows(*step).rename(columns={"us": f"t{i}"}).sort_values(f"t{i}")
        chain = pd.merge_asof(
            chain.sort_values(prev),
            right,
            left_on=prev,
            right_on=f"t{i}",
            by="pid",
            direction="forward",
            allow_exact_matches=True,
        )
        alive = chain[f"t{i}"].notna() & (chain[f"t{i}"] <= chain["t1"] + WEEK_US)
        if i > 2:
            alive &= chain[f"ok{i - 1}"]
        chain[f"ok{i}"] = alive
        chain[f"t{i}"] = chain[f"t{i}"].where(alive, np.inf)
        prev = f"t{i}"
    depth = 1 + sum(chain[f"ok{i}"].astype(int) for i in range(2, len(steps) + 1))
    best = depth.groupby(chain["pid"]).max()
    return [int((best >= k).sum()) for k in range(1, len(steps) + 1)]


class ClickHouse:
    """The same events in chDB (ClickHouse in process), in a MergeTree table ordered by
    customer and time; funnels by `windowFunnel` with `strict_once` (an event fills one step)."""

    def __init__(self, store: Store, folder: Path) -> None:
        import chdb.session

        parquet = folder / "events.parquet"
        store.cursor().execute(
            "COPY (SELECT pid, epoch_us(ts)::UBIGINT AS us, event, channel FROM analytics_events) "
            f"TO '{parquet}' (FORMAT parquet)"
        )
        self.session = chdb.session.Session(str(folder / "chdb"))
        self.session.query("DROP TABLE IF EXISTS ev")
        self.session.query(
            "CREATE TABLE ev (pid Int64, us UInt64, event LowCardinality(String), "
            "channel LowCardinality(String)) ENGINE = MergeTree ORDER BY (pid, us)"
        )
        self.session.query(f"INSERT INTO ev SELECT * FROM file('{parquet}', Parquet)")

    def funnel(self, steps: list[tuple[str, str | None]]) -> list[int]:
        conds = ", ".join(
            f"event = '{e}'" + (f" AND channel = '{c}'" if c else "") for e, c in steps
        )
        names = ", ".join(f"'{e}'" for e in dict.fromkeys(e for e, _ in steps))
        out = self.session.query(
            f"SELECT level, count() FROM (SELECT pid, windowFunnel({WEEK_US}, 'strict_once')"
            f"(us, {conds}) AS level FROM ev WHERE event IN ({names}) GROUP BY pid) "
            "GROUP BY level ORDER BY level",
            "CSV",
        )
        per_level = dict(tuple(map(int, line.split(","))) for line in str(out).split())
        return [sum(n for lv, n in per_level.items() if lv >= k) for k in range(1, len(steps) + 1)]


def pandas_retention(ev: pd.DataFrame) -> dict[tuple[Any, int], int]:
    orders = ev.loc[ev["event"] == "Order Completed", ["pid", "day"]]
    weeks = orders["day"] - pd.to_timedelta(orders["day"].dt.day_of_week, unit="D")
    orders = orders.assign(week=weeks)
    cohort = orders.groupby("pid")["week"].min().rename("cohort")
    back = orders[["pid", "week"]].drop_duplicates().join(cohort, on="pid")
    back["n"] = (back["week"] - back["cohort"]).dt.days // 7
    cells = back[(back["n"] >= 1) & (back["n"] <= 12)].groupby(["cohort", "n"]).size()
    return {(c.date(), int(n)): int(v) for (c, n), v in cells.items()}


def pandas_paths(ev: pd.DataFrame, depth: int = 3, top: int = 50) -> dict[tuple[int, str], int]:
    """Customers per (level, step) at levels 1..depth, the `top` steps of a level by customers
    (ties by name) and the rest as "(other)", and "(end)" for those with no step at a level."""
    hit = (ev["event"] == "Product Viewed") & (ev["channel"] == "app")
    anchors = ev.loc[hit].groupby("pid").agg(r0=("r", "min"))
    anchors["t0"] = ev.loc[hit].groupby("pid")["us"].min()
    near = ev.join(anchors, on="pid", how="inner")
    near = near[(near["r"] >= near["r0"]) & (near["us"] <= near["t0"] + 86400 * 1_000_000)]
    near = near.sort_values(["pid", "r"], kind="stable")
    near["step"] = near["event"] + " · " + near["channel"]
    prev = near.groupby("pid")["step"].shift(1)
    kept = near[(near["r"] != near["r0"]) & (prev != near["step"])]
    level = kept.groupby("pid").cumcount() + 1
    shown = kept.assign(level=level)[level <= depth]
    counts = shown.groupby(["level", "step"]).size()
    nodes: dict[tuple[int, str], int] = {}
    reached = len(anchors)
    for lv in range(1, depth + 1):
        steps = sorted(
            ((s, int(n)) for (at, s), n in counts.items() if at == lv), key=lambda x: (-x[1], x[0])
        )
        nodes.update(((lv, s), n) for s, n in steps[:top])
        if rest := sum(n for _, n in steps[top:]):
            nodes[(lv, "(other)")] = rest
        here = sum(n for _, n in steps)
        if reached - here:
            nodes[(lv, "(end)")] = reached - here
        reached = here
    return nodes


# -- run ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="time a full analytics build")
    args = parser.parse_args()
    with Store(args.data_dir / "tsunagu.duckdb", memory_limit="4GB") as store:
        rules = load_rules(args.data_dir)
        if args.rebuild:
            started = time.perf_counter()
            with store.transaction() as cur:
                n = rebuild(cur, rules, timezone=TZ)
            print(f"analytics table rebuilt: {n:,} events in {time.perf_counter() - started:.1f} s")
        print(f"fresh: {ensure_fresh(store=store, rules=rules, timezone=TZ)}")
        engine = Engine(store)
        events = store.scalar("SELECT count(*) FROM analytics_events")
        customers = store.scalar("SELECT count(DISTINCT pid) FROM analytics_events")
        print(
            f"{events:,} events of {customers:,} customers; 2 cores; each side timed best of "
            f"{args.repeat}"
        )

        started = time.perf_counter()
        ev = (
            store.cursor()
            .sql("SELECT pid, r, epoch_us(ts) AS us, day, event, channel FROM analytics_events")
            .df()
        )
        ev["day"] = pd.to_datetime(ev["day"])
        load = time.perf_counter() - started
        print(f"pandas: events loaded into a DataFrame in {load:.1f} s (not counted below)")

        rows = []
        vs_clickhouse = []
        for name, steps in (
            ("funnel, 4 steps cross-channel", CROSS),
            ("funnel, 4 steps online", ONLINE),
        ):
            query = parse(
                FunnelQuery,
                {
                    "steps": [{"event": e, **({"channel": c} if c else {})} for e, c in steps],
                    "window": "7d",
                },
            )
            ours, answer = best_of(
                args.repeat, lambda q=query: run_funnel(engine=engine, query=q, timezone=TZ)
            )
            theirs, reference = best_of(args.repeat, lambda s=steps: pandas_funnel(ev, s))
            counts = [s.customers for s in answer.steps]
            rows.append((name, ours, theirs, counts == reference))
            vs_clickhouse.append((name, steps, ours, counts))

        query = parse(
            RetentionQuery,
            {
                "start": {"event": "Order Completed"},
                "return": {"event": "Order Completed"},
                "grain": "week",
            },
        )
        ours, answer = best_of(args.repeat, lambda: run_retention(engine=engine, query=query))
        theirs, reference = best_of(args.repeat, lambda: pandas_retention(ev))
        got = {
            (c.cohort, n): v
            for c in answer.cohorts
            for n, v in enumerate(c.retained)
            if 1 <= n <= 12 and v is not None  # None: a week not yet over
        }
        # Both ways, zeros included: every cell of tsunagu's triangle equals the reference's
        # (0 where it has none), and the reference has no cell the triangle lacks.
        same = set(reference) <= set(got) and all(reference.get(k, 0) == v for k, v in got.items())
        rows.append(("retention, weekly triangle", ours, theirs, same))

        query = parse(
            PathsQuery,
            {"event": {"event": "Product Viewed", "channel": "app"}, "depth": 3, "top": 50},
        )
        ours, answer = best_of(
            args.repeat, lambda: run_paths(engine=engine, query=query, timezone=TZ)
        )
        theirs, reference = best_of(args.repeat, lambda: pandas_paths(ev))
        got_nodes = {(n.level, n.step): n.customers for n in answer.nodes if n.level > 0}
        # Every node both ways, (other) and (end) included: nothing tsunagu missed or added.
        rows.append(("paths, 3 steps after an app view", ours, theirs, got_nodes == reference))

        print(
            f"{'analysis':36} {'tsunagu':>9} {'pandas':>9} {'ratio':>7} "
            f"{'+ load':>9} {'ratio':>7}  same answer"
        )
        for name, ours, theirs, same in rows:
            print(
                f"{name:36} {ours:8.3f}s {theirs:8.2f}s {theirs / ours:6.1f}x "
                f"{theirs + load:8.2f}s {(theirs + load) / ours:6.1f}x  {same}"
            )
        print("pandas: the frame already in memory; + load: reading the events into it counted")
        # ClickHouse last: its threads stay with the session and would slow what runs after.
        started = time.perf_counter()
        clickhouse = ClickHouse(store, Path(tempfile.mkdtemp(prefix="tsunagu-chdb-")))
        print(
            f"\nchDB: events loaded into a MergeTree table in {time.perf_counter() - started:.1f} s"
        )
        print(f"{'funnel':36} {'tsunagu':>9} {'chDB':>9} {'ratio':>7}  counts (tsunagu / chDB)")
        for name, steps, ours, counts in vs_clickhouse:
            ch, ch_counts = best_of(args.repeat, lambda s=steps: clickhouse.funnel(s))
            print(f"{name:36} {ours:8.3f}s {ch:8.3f}s {ch / ours:6.1f}x  {counts} / {ch_counts}")
        print(
            "chDB: windowFunnel(7 days, 'strict_once') over the same events, in a MergeTree table"
        )
        print(f"peak RSS {rss_gb():.1f} GB (the pandas frame included)")


if __name__ == "__main__":
    main()
