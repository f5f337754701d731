"""Paths: what customers do next after an event (or did before it), channel by channel, as the
nodes and links of a Sankey chart.

Definitions (the tests hold a plain-Python reading to the same answers):

- Each customer is followed from their first anchor event in [from, to).
- Their steps are the events after it (`direction: after`; before it, nearest first, for
  `before`) within `within` of the anchor, less the `exclude`d event names; a step is the event
  name and its channel ("Product Viewed · app"), or the name alone with `channels: false`.
  Repeats of one step in a row (the anchor's included) count once (`collapse_repeats`, on by
  default).
- Level 0 is the anchor; level k is a customer's k-th step, up to `depth`. At each level the
  `top` most frequent steps are kept and the rest are "(other)"; a customer with no k-th step
  goes to "(end)" at level k and stops.
- A node is (level, step) with its customers; a link joins a node to one at the next level
  with the customers who went that way.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tsunagu.analytics.engine import Engine
from tsunagu.analytics.filters import Step, ts_literal, utc_bounds, window_seconds
from tsunagu.store.sql import literal

OTHER = "(other)"
END = "(end)"


class PathsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    event: Step = Field(description="the anchor event")
    direction: Literal["after", "before"] = "after"
    depth: int = Field(default=3, ge=1, le=8)
    top: int = Field(
        default=8, ge=1, le=50, description="steps kept per level; the rest are (other)"
    )
    within: str | int = Field(default="1d", description="how far from the anchor: 30m, 1d, 7d")
    channels: bool = Field(default=True, description="the channel is part of a step")
    collapse_repeats: bool = True
    exclude: list[str] = Field(
        default_factory=list, max_length=50, description="event names left out"
    )
    from_: date | datetime | None = Field(default=None, alias="from")
    to: date | datetime | None = None


class PathNode(BaseModel):
    id: str
    level: int
    step: str
    customers: int


class PathLink(BaseModel):
    source: str
    target: str
    customers: int


class PathsResult(BaseModel):
    customers: int
    """Customers who did the anchor event."""
    nodes: list[PathNode]
    links: list[PathLink]
    seconds: float


def node_id(level: int, step: str) -> str:
    return f"{level}:{step}"


def run_paths(*, engine: Engine, query: PathsQuery, timezone: str) -> PathsResult:
    started = time.perf_counter()
    rows = engine.rows(paths_sql(query, timezone=timezone))
    sign = -1 if query.direction == "before" else 1
    links: list[PathLink] = []
    into: dict[tuple[int, str], int] = {}
    out_of: dict[tuple[int, str], int] = {}
    for level, source, target, customers in rows:
        level = int(level)
        links.append(
            PathLink(
                source=node_id(sign * level, source),
                target=node_id(sign * (level + 1), target),
                customers=int(customers),
            )
        )
        out_of[(level, source)] = out_of.get((level, source), 0) + int(customers)
        into[(level + 1, target)] = into.get((level + 1, target), 0) + int(customers)
    nodes = [
        PathNode(id=node_id(sign * level, step), level=sign * level, step=step, customers=n)
        for (level, step), n in sorted({**out_of, **into}.items())
    ]
    anchors = sum(n for (level, _), n in out_of.items() if level == 0)
    links.sort(key=lambda link: (abs(int(link.source.split(":")[0])), -link.customers))
    return PathsResult(
        customers=anchors, nodes=nodes, links=links, seconds=round(time.perf_counter() - started, 4)
    )


def paths_sql(query: PathsQuery, *, timezone: str) -> str:
    """Rows (level, source step, target step, customers): the links, level 0 the anchor's."""
    within = window_seconds(query.within)
    lo, hi = utc_bounds(query.from_, query.to, timezone)
    in_range = [query.event.sql()]
    if lo is not None:
        in_range.append(f"ts >= {ts_literal(lo)}")
    if hi is not None:
        in_range.append(f"ts < {ts_literal(hi)}")
    step = "e.event || ' · ' || e.channel" if query.channels else "e.event"
    after = query.direction == "after"
    # The anchor is read too, so that a step repeating it collapses into it.
    near = (
        f"e.r >= a.r0 AND e.ts <= a.t0 + INTERVAL {within} SECOND"
        if after
        else f"e.r <= a.r0 AND e.ts >= a.t0 - INTERVAL {within} SECOND"
    )
    if query.exclude:
        near += f" AND e.event NOT IN ({', '.join(literal(x) for x in query.exclude)})"
    order = "r" if after else "r DESC"
    kept = "WHERE r <> r0" + (" AND prev IS DISTINCT FROM step" if query.collapse_repeats else "")
    anchor_step = "a.event || ' · ' || a.channel" if query.channels else "a.event"
    d, top = query.depth, query.top
    return (
        "WITH anchors AS ("
        "  SELECT pid, min(r) AS r0, arg_min(ts, r) AS t0, arg_min(event, r) AS event, "
        f" arg_min(channel, r) AS channel FROM analytics_events WHERE {' AND '.join(in_range)} "
        "  GROUP BY pid"
        "), near AS ("
        f" SELECT e.pid, e.r, a.r0, {step} AS step FROM analytics_events e JOIN anchors a USING (pid) "
        f" WHERE {near}"
        "), steps AS ("
        f" SELECT pid, step, row_number() OVER (PARTITION BY pid ORDER BY {order}) AS level FROM ("
        f"  SELECT pid, r, r0, step, lag(step) OVER (PARTITION BY pid ORDER BY {order}) AS prev "
        f"  FROM near) {kept}"
        "), shown AS ("
        f" SELECT * FROM steps WHERE level <= {d}"
        "), ranked AS ("
        "  SELECT level, step FROM (SELECT level, step, row_number() OVER "
        "  (PARTITION BY level ORDER BY count(*) DESC, step) AS rk FROM shown GROUP BY level, step) "
        f" WHERE rk <= {top}"
        "), named AS ("
        f" SELECT s.pid, s.level, CASE WHEN k.step IS NULL THEN {literal(OTHER)} ELSE s.step END "
        "  AS step FROM shown s LEFT JOIN ranked k USING (level, step) "
        f" UNION ALL SELECT pid, 0, {anchor_step} FROM anchors a"
        ") "
        f"SELECT f.level, f.step, coalesce(t.step, {literal(END)}) AS target, count(*) "
        "FROM named f LEFT JOIN named t ON t.pid = f.pid AND t.level = f.level + 1 "
        f"WHERE f.level < {d} GROUP BY ALL"
    )
