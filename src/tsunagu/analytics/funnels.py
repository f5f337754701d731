"""Funnels: how many customers go from step to step, across channels, and how long it takes.

Definitions (the tests hold a plain-Python reading of them to the same answers):

- A customer's events are ordered by time, events at the same instant by arrival
  (analytics/facts.py). An *attempt* starts at each step-1 event in [from, to), except (in
  ordered mode) one followed by another such event before its next step-2 event: the later
  one supersedes it (who looks at five products and then adds one to the cart converted from
  the fifth look; it can only reach as far).
- `ordered` (the default): each next step is the customer's first event matching it after the
  previous step's event (other events may come between); `strict`: each next step must be the
  customer's very next event; `any`: the steps may happen in any order, the attempt starting at
  any step's event, and step k counts once steps 1..k have each happened (one event may count
  for two identical steps).
- Every step of an attempt must happen within `window` of its start (later steps may fall after
  `to`). An attempt reaches step k when steps 1..k are done in time.
- Exclusions (ordered and strict): an exclusion event after the attempt's step-a event ends the
  attempt at the last step before it, among steps a+1..b (`between: [a, b]`, default the
  first and last step).
- Each customer counts once, with their deepest attempt (the earliest of equals): `customers`
  at step k are those whose best attempt reached k. `conversion_from_first` and
  `conversion_from_previous` are ratios of those counts; `drop_off` is the previous step's
  customers less this step's. `median_seconds_to_convert` / `p90_...` are over the customers who
  reached the step, of the time from their previous step's event (linear interpolation between
  ranks, as `quantile_cont`).
- A breakdown splits customers by a value of their attempt's first event (`channel`,
  `store_id`, `category`, `sku`, `name`, or any property) or of their profile
  (`profile.home_store_id`, `profile.gender`, any profile trait, `profile.fan_level`): a
  customer whose attempts start with different values counts in each group, with their best
  attempt there.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tsunagu.analytics import walk
from tsunagu.analytics.engine import Engine
from tsunagu.analytics.filters import (
    Step,
    check_property_name,
    ts_literal,
    utc_bounds,
    window_seconds,
)
from tsunagu.exceptions import InvalidInput
from tsunagu.store.sql import literal

Mode = Literal["strict", "ordered", "any"]
BREAKDOWN_COLUMNS = ("channel", "store_id", "category", "sku", "name", "event")
PROFILE_COLUMNS = ("home_store_id", "first_seen", "last_seen")
NONE_LABEL = "(none)"


class Exclusion(Step):
    between: tuple[int, int] | None = Field(
        default=None, description="step numbers [a, b] (1-based); default first and last"
    )


class FunnelQuery(BaseModel):
    """A funnel request (the HTTP body; the CLI builds the same)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    steps: list[Step] = Field(min_length=2, max_length=10)
    window: str | int = Field(default="7d", description="7d, 24h, 30m, 2w or seconds")
    mode: Mode = "ordered"
    from_: date | datetime | None = Field(default=None, alias="from")
    to: date | datetime | None = None
    breakdown: str | None = Field(default=None, min_length=1, max_length=200)
    breakdown_limit: int = Field(default=20, ge=1, le=200)
    exclusions: list[Exclusion] = Field(default_factory=list, max_length=10)

    @field_validator("breakdown")
    @classmethod
    def _breakdown_name(cls, value: str | None) -> str | None:
        if value is not None:
            check_property_name(value.removeprefix("profile."))
        return value

    @model_validator(mode="after")
    def _exclusions_fit(self) -> FunnelQuery:
        for i, ex in enumerate(self.exclusions):
            a, b = ex.between or (1, len(self.steps))
            if not 1 <= a < b <= len(self.steps):
                raise ValueError(
                    f"exclusions.{i}.between: steps a < b between 1 and {len(self.steps)}"
                )
        if self.exclusions and self.mode == "any":
            raise ValueError("exclusions: only in ordered or strict mode")
        return self


class StepResult(BaseModel):
    event: str
    label: str
    customers: int
    conversion_from_first: float
    conversion_from_previous: float
    drop_off: int
    median_seconds_to_convert: float | None
    p90_seconds_to_convert: float | None


class BreakdownGroup(BaseModel):
    value: str
    steps: list[StepResult]


class FunnelResult(BaseModel):
    steps: list[StepResult]
    breakdown: list[BreakdownGroup]
    mode: Mode
    window_seconds: int
    seconds: float
    """How long the query took."""


def run_funnel(
    *, engine: Engine, query: FunnelQuery, timezone: str, portable: bool = False
) -> FunnelResult:
    """Answer `query`: walked in numpy where the engine allows it (analytics/walk.py), else
    (or with `portable`) by the one SQL statement of `funnel_sql`."""
    started = time.perf_counter()
    k = len(query.steps)
    overall: list[Any] = [0] * (3 * k)
    groups: dict[str, list[Any]] = {}
    if engine.walks_in_process and not portable:
        overall, groups = _walked(engine, query, timezone)
    else:
        for key, *figures in engine.rows(funnel_sql(query, timezone=timezone)):
            if key is None:
                overall = figures
            else:
                groups[key] = figures
    total = _steps(query, overall)
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1][0], kv[0]))
    breakdown = [
        BreakdownGroup(value=value, steps=_steps(query, figures))
        for value, figures in ordered[: query.breakdown_limit]
    ]
    return FunnelResult(
        steps=total,
        breakdown=breakdown,
        mode=query.mode,
        window_seconds=window_seconds(query.window),
        seconds=round(time.perf_counter() - started, 4),
    )


def _walked(
    engine: Engine, query: FunnelQuery, timezone: str
) -> tuple[list[Any], dict[str, list[Any]]]:
    k = len(query.steps)
    table = engine.table(step_rows_sql(query, timezone=timezone))
    values = table.column("b").combine_chunks().dictionary_encode()
    rows: dict[str, walk.Ints] = {
        name: np.asarray(table.column(name).to_numpy(), np.int64 if name == "us" else np.int32)
        for name in ("pid", "r", "us", "bits")
    }
    order = walk.customer_order(rows["pid"], rows["r"])
    if order is not None:
        rows = {name: column[order] for name, column in rows.items()}
    settings = {
        "steps": k,
        "mode": query.mode,
        "window_us": window_seconds(query.window) * 1_000_000,
        "exclusions": [x.between or (1, k) for x in query.exclusions],
    }
    groups = {}
    if query.breakdown:
        # A customer counts in each value their attempts start with, once overall.
        codes = values.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        codes = codes if order is None else codes[order]
        by_value = walk.walk(**rows, group=np.asarray(codes, np.int32) + 1, **settings)  # type: ignore[arg-type]
        labels = values.dictionary.to_pylist()
        for code in np.unique(by_value.group):
            groups[labels[code - 1]] = walk.figures(by_value, k, group=int(code))
        attempts = walk.overall(by_value)
    else:
        no_groups = np.zeros(table.num_rows, np.int32)
        attempts = walk.walk(**rows, group=no_groups, **settings)  # type: ignore[arg-type]
    return walk.figures(attempts, k), groups


def step_rows_sql(query: FunnelQuery, *, timezone: str) -> str:
    """The events that match a step or an exclusion, with what each matches as bits (step i:
    bit i-1, exclusion j: bit 10+j-1, may start an attempt: bit 30)."""
    window = window_seconds(query.window)
    lo, hi = utc_bounds(query.from_, query.to, timezone)
    bits = [f"(CASE WHEN {s.sql()} THEN {1 << i} ELSE 0 END)" for i, s in enumerate(query.steps)]
    bits += [
        f"(CASE WHEN {x.sql()} THEN {1 << (10 + j)} ELSE 0 END)"
        for j, x in enumerate(query.exclusions)
    ]
    starts = " OR ".join(s.sql() for s in (query.steps if query.mode == "any" else query.steps[:1]))
    in_range = [f"({starts})"]
    scan = [
        "("
        + " OR ".join([s.sql() for s in query.steps] + [x.sql() for x in query.exclusions])
        + ")"
    ]
    if lo is not None:
        in_range.append(f"ts >= {ts_literal(lo)}")
        scan.append(f"ts >= {ts_literal(lo)}")
    if hi is not None:
        in_range.append(f"ts < {ts_literal(hi)}")
        scan.append(f"ts < {ts_literal(hi)} + INTERVAL {window} SECOND")
    bits.append(f"(CASE WHEN {' AND '.join(in_range)} THEN {walk.START_BIT} ELSE 0 END)")
    value, join = _breakdown(query.breakdown)
    # No ORDER BY: the table is written in customer order and DuckDB keeps the order of a
    # table in a scan; walk.customer_order checks, and sorts only if it must.
    return (
        f"SELECT e.pid::INTEGER AS pid, e.r::INTEGER AS r, epoch_us(e.ts) AS us, "
        f"({' + '.join(bits)})::INTEGER AS bits, {value} AS b "
        f"FROM analytics_events e {join}WHERE {' AND '.join(scan)}"
    )


def _steps(query: FunnelQuery, figures: list[Any]) -> list[StepResult]:
    k = len(query.steps)
    counts = [int(c or 0) for c in figures[:k]]
    medians = figures[k : 2 * k]
    p90s = figures[2 * k : 3 * k]
    out = []
    for i, step in enumerate(query.steps):
        first, prev = counts[0], counts[i - 1] if i else counts[0]
        out.append(
            StepResult(
                event=step.event,
                label=step.label(),
                customers=counts[i],
                conversion_from_first=round(counts[i] / first, 6) if first else 0.0,
                conversion_from_previous=round(counts[i] / prev, 6) if prev else 0.0,
                drop_off=prev - counts[i] if i else 0,
                median_seconds_to_convert=_seconds(medians[i]) if i else None,
                p90_seconds_to_convert=_seconds(p90s[i]) if i else None,
            )
        )
    return out


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


# -- SQL ------------------------------------------------------------------------------------------


def funnel_sql(query: FunnelQuery, *, timezone: str) -> str:
    """One statement answering `query`: a row per breakdown value (and one with NULL for all
    customers) of counts, medians and p90s per step."""
    k = len(query.steps)
    window = window_seconds(query.window)
    lo, hi = utc_bounds(query.from_, query.to, timezone)
    marks = [f"{s.sql()} AS m{i}" for i, s in enumerate(query.steps, 1)]
    marks += [f"{x.sql()} AS x{j}" for j, x in enumerate(query.exclusions, 1)]
    any_mark = " OR ".join([s.sql() for s in query.steps] + [x.sql() for x in query.exclusions])
    scan = [f"({any_mark})"]
    if lo is not None:
        scan.append(f"ts >= {ts_literal(lo)}")
    if hi is not None:
        scan.append(f"ts < {ts_literal(hi)} + INTERVAL {window} SECOND")
    in_range = ["true"]
    if lo is not None:
        in_range.append(f"s1.ts >= {ts_literal(lo)}")
    if hi is not None:
        in_range.append(f"s1.ts < {ts_literal(hi)}")
    start_value, profile_join = _breakdown(query.breakdown)
    steps_cte = (
        f"s AS (SELECT e.pid, e.r, e.ts, {start_value} AS b, {', '.join(marks)} "
        f"FROM analytics_events e {profile_join}WHERE {' AND '.join(scan)})"
    )
    if query.mode == "any":
        attempts = _any_attempts(k, window, in_range)
    else:
        attempts = _ordered_attempts(query, window, in_range)
    group = "pid, b" if query.breakdown else "pid"
    figures = ", ".join(
        [f"count(CASE WHEN depth >= {i} THEN 1 END)" for i in range(1, k + 1)]
        + [_quantile(i, 0.5) for i in range(1, k + 1)]
        + [_quantile(i, 0.9) for i in range(1, k + 1)]
    )
    # Each customer's deepest attempt, the earliest of equals: an aggregate, not a sort.
    kept = ", ".join(["depth", *(f"d{i}" for i in range(2, k + 1))])
    pick = f"arg_max(struct_pack({kept}), depth * 1000000000000 - r1) AS x"
    unpacked = ", ".join(f"x.{c} AS {c}" for c in kept.split(", "))
    best = f"best AS (SELECT {unpacked} FROM (SELECT pid, {pick} FROM a GROUP BY pid))"
    parts = [f"SELECT CAST(NULL AS VARCHAR) AS b, {figures} FROM best"]
    ctes = [steps_cte, *attempts, best]
    if query.breakdown:
        ctes.append(
            f"best_b AS (SELECT b, {unpacked} FROM (SELECT {group}, {pick} FROM a GROUP BY {group}))"
        )
        parts.append(f"SELECT b, {figures} FROM best_b GROUP BY b")
    return "WITH " + ", ".join(ctes) + " " + " UNION ALL ".join(parts)


def _quantile(i: int, q: float) -> str:
    if i == 1:
        return "CAST(NULL AS DOUBLE)"
    return f"quantile_cont(CASE WHEN depth >= {i} THEN d{i} END, {q})"


def _breakdown(breakdown: str | None) -> tuple[str, str]:
    """(the SQL of a start event's breakdown value, a join it needs)."""
    if breakdown is None:
        return "CAST(NULL AS VARCHAR)", ""
    none = literal(NONE_LABEL)
    if breakdown.startswith("profile."):
        key = breakdown.removeprefix("profile.")
        if not key:
            raise InvalidInput("breakdown: name a profile trait after profile.", field="breakdown")
        join = "LEFT JOIN analytics_profiles ap ON ap.pid = e.pid "
        if key == "fan_level":
            join += "LEFT JOIN fan_levels f ON f.profile_id = ap.profile_id "
            return f"coalesce(CAST(f.level AS VARCHAR), {none})", join
        value = (
            f"CAST(t.{key} AS VARCHAR)"
            if key in PROFILE_COLUMNS
            else f"json_extract_string(t.traits, {literal('$.' + _quoted(key))})"
        )
        join += "LEFT JOIN profile_traits t ON t.profile_id = ap.profile_id "
        return f"coalesce({value}, {none})", join
    if breakdown in BREAKDOWN_COLUMNS:
        column = (
            "coalesce(e.category, e.categories[1])" if breakdown == "category" else f"e.{breakdown}"
        )
        if breakdown == "sku":
            column = "coalesce(e.sku, e.skus[1])"
        return f"coalesce({column}, {none})", ""
    path = literal("$." + _quoted(breakdown))
    return f"coalesce(json_extract_string(e.properties, {path}), {none})", ""


def _quoted(key: str) -> str:
    if '"' in key or "\\" in key:
        raise InvalidInput(f"breakdown: {key!r} is not a property name", field="breakdown")
    return ".".join(f'"{part}"' for part in key.split("."))


def _ordered_attempts(query: FunnelQuery, window: int, in_range: list[str]) -> list[str]:
    """CTEs ending in `a`: one row per attempt with its depth, start and step times."""
    k = len(query.steps)
    strict = query.mode == "strict"
    # For each event: the position of the next event matching each step (and each exclusion)
    # after it. Joining an attempt's step-i event to the next step's position walks the chain.
    nexts = []
    superseded = "false"
    if not strict:
        nexts += [f"min(CASE WHEN m{i} THEN r END) OVER f AS n{i}" for i in range(2, k + 1)]
        # A start with a later start before its step 2 is superseded by it.
        starts_here = " AND ".join(["m1", *(c.replace("s1.ts", "ts") for c in in_range)])
        nexts.append(f"min(CASE WHEN {starts_here} THEN r END) OVER f AS n1")
        superseded = "(s1.n1 IS NOT NULL AND (s1.n2 IS NULL OR s1.n1 < s1.n2))"
    nexts += [
        f"min(CASE WHEN x{j} THEN r END) OVER f AS e{j}"
        for j in range(1, len(query.exclusions) + 1)
    ]
    marks = ", ".join(f"m{i}" for i in range(1, k + 1))
    window_clause = (
        "WINDOW f AS (PARTITION BY pid ORDER BY r ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)"
    )
    nx = f"nx AS (SELECT pid, r, ts, b, {marks}" + (
        ", " + ", ".join(nexts) + f" FROM s {window_clause})" if nexts else " FROM s)"
    )
    joins = []
    for i in range(2, k + 1):
        if strict:
            on = f"s{i}.pid = s{i - 1}.pid AND s{i}.r = s{i - 1}.r + 1 AND s{i}.m{i}"
        else:
            on = f"s{i}.pid = s{i - 1}.pid AND s{i}.r = s{i - 1}.n{i}"
        joins.append(f"LEFT JOIN nx s{i} ON {on}")
    deadline = f"s1.ts + INTERVAL {window} SECOND"
    reached = " + ".join(
        ["1"] + [f"(CASE WHEN s{i}.ts <= {deadline} THEN 1 ELSE 0 END)" for i in range(2, k + 1)]
    )
    columns = [f"s{i}.r AS r{i}, s{i}.ts AS t{i}" for i in range(1, k + 1)]
    columns += [
        f"s{(ex.between or (1, k))[0]}.e{j} AS ex{j}" for j, ex in enumerate(query.exclusions, 1)
    ]
    chain = (
        f"c AS (SELECT s1.pid, s1.b, {reached} AS depth0, {', '.join(columns)} FROM nx s1 "
        + " ".join(joins)
        + f" WHERE s1.m1 AND {' AND '.join(in_range)} AND NOT {superseded})"
    )
    depth = "depth0"
    for j, ex in enumerate(query.exclusions, 1):
        a, b = ex.between or (1, k)
        cases = " ".join(
            f"WHEN depth0 >= {i} AND r{i} > ex{j} THEN {i - 1}" for i in range(a + 1, b + 1)
        )
        depth = f"least({depth}, CASE {cases} ELSE depth0 END)"
    return [nx, chain, _attempts(depth, k)]


def _any_attempts(k: int, window: int, in_range: list[str]) -> list[str]:
    """`a` for any-order funnels: an attempt per event matching any step; step i's time is
    when the first i steps have all happened (the latest of their first occurrences)."""
    firsts = ", ".join(f"min(CASE WHEN m{i} THEN ts END) OVER g AS f{i}" for i in range(1, k + 1))
    nx = (
        f"nx AS (SELECT pid, r, ts, b, {firsts} FROM s WINDOW g AS "
        "(PARTITION BY pid ORDER BY r ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING))"
    )
    # greatest() skips NULLs: a step never done must leave the time NULL.
    times = ", ".join(
        f"CASE WHEN {' AND '.join(f's1.f{j} IS NOT NULL' for j in range(1, i + 1))} "
        f"THEN greatest({', '.join(f's1.f{j}' for j in range(1, i + 1))}) END AS t{i}"
        for i in range(1, k + 1)
    )
    chain = f"c AS (SELECT s1.pid, s1.b, s1.r AS r1, s1.ts AS start, {times} FROM nx s1 WHERE {' AND '.join(in_range)})"
    deadline = f"start + INTERVAL {window} SECOND"
    depth = " + ".join(f"(CASE WHEN t{i} <= {deadline} THEN 1 ELSE 0 END)" for i in range(1, k + 1))
    # depth counts steps done in time; t_i only grows with i, so they are always steps 1..depth.
    return [nx, chain, _attempts(depth, k)]


def _attempts(depth: str, k: int) -> str:
    """`a`: an attempt's customer, breakdown value, start, depth and times between steps."""
    durations = ", ".join(
        f"date_diff('millisecond', t{i - 1}, t{i}) / 1000.0 AS d{i}" for i in range(2, k + 1)
    )
    return f"a AS (SELECT pid, b, r1, CAST({depth} AS BIGINT) AS depth, {durations} FROM c)"
