"""Funnels: how many customers go from step to step, across channels, and how long it takes.

Definitions, as Amplitude, Mixpanel and PostHog users read a funnel (the tests hold a
plain-Python reading of them to the same answers; docs/analytics.md has them with examples):

- A customer's events are ordered by time. Events at the same *instant* (one timestamp) have
  no order among them: they may fill consecutive steps in any order, and one event fills at
  most one step.
- An *attempt* starts at each step-1 event in [from, to); in ordered mode, a start whose
  instant fills no step 2 is superseded by a later start (at a later instant) before the next
  instant with a step-2 event (who looks at five products and then adds one to the cart
  converted from the fifth look; it can only reach as far).
- `ordered` (the default): the attempt reaches step k when there are k different events, its
  start first, matching steps 1..k at non-decreasing times (other events may come between);
  `strict`: no other moment of the customer's comes between two consecutive steps (an event
  at a step's instant never does). Each step is taken at the earliest instant it can be.
- `any`: an attempt at each step event in [from, to), over the events from its instant on;
  position k is reached when k different steps have had an event each (a different event
  each); anyone with a step event is at position 1.
- Every step of a counted attempt lies within `window` of its start (inclusive) and inside
  [from, to).
- Exclusions (`between: [a, b]`, default the first and last step; an any-order funnel only
  over all its steps): an attempt is spoiled by an excluded event at an instant after step
  a's and before step b's (or with step b never reached), within the window, not at an
  instant of one of its steps. With `exclusions_mode` "customer" (the default) the best
  attempt of a customer that is spoiled takes them out of the funnel, every step included;
  with "attempt" (tsunagu's earlier reading) it only ends that attempt before the event.
- Each customer counts once, with their best attempt: the deepest, a clean one before a
  spoiled one, the earliest of equals. `customers` at step k are those whose best attempt
  reached k. `conversion_from_first` and `conversion_from_previous` are ratios of those
  counts; `drop_off` is the previous step's customers less this step's.
  `median_seconds_to_convert` / `p90_...` are over the customers who reached the step, of the
  time from their previous step (linear interpolation between ranks, as `quantile_cont`).
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
from tsunagu.analytics.funnel_sql import statement as funnel_statement
from tsunagu.exceptions import InvalidInput
from tsunagu.store.sql import literal

Mode = Literal["strict", "ordered", "any"]
ExclusionsMode = Literal["customer", "attempt"]
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
    window: str | int = Field(
        default="7d", description="30m, 24h, 7d, 2w, 3months, 2y (or a number of window_unit)"
    )
    window_unit: str | None = Field(
        default=None, description="the unit of a numeric window: second ... month, year"
    )
    mode: Mode = "ordered"
    from_: date | datetime | None = Field(default=None, alias="from")
    to: date | datetime | None = None
    breakdown: str | None = Field(default=None, min_length=1, max_length=200)
    breakdown_limit: int = Field(default=20, ge=1, le=200)
    exclusions: list[Exclusion] = Field(default_factory=list, max_length=10)
    exclusions_mode: ExclusionsMode = Field(
        default="customer",
        description="customer: a spoiled best attempt takes its customer out of the funnel; "
        "attempt: it only ends that attempt before the excluded event",
    )

    @field_validator("breakdown")
    @classmethod
    def _breakdown_name(cls, value: str | None) -> str | None:
        if value is not None:
            check_property_name(value.removeprefix("profile."))
        return value

    @model_validator(mode="after")
    def _exclusions_fit(self) -> FunnelQuery:
        k = len(self.steps)
        for i, ex in enumerate(self.exclusions):
            a, b = ex.between or (1, k)
            if not 1 <= a < b <= k:
                raise ValueError(f"exclusions.{i}.between: steps a < b between 1 and {k}")
            if self.mode == "any" and (a, b) != (1, k):
                raise ValueError(
                    f"exclusions.{i}.between: an any-order funnel excludes over all its steps"
                )
        return self

    def seconds(self) -> int:
        """The window in seconds."""
        return window_seconds(self.window, self.window_unit)

    def spans(self) -> list[tuple[int, int]]:
        """Each exclusion's steps [a, b]."""
        return [x.between or (1, len(self.steps)) for x in self.exclusions]


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
    # A value whose customers were all taken out by exclusions is no group.
    ordered = sorted(
        ((value, figures) for value, figures in groups.items() if figures[0]),
        key=lambda kv: (-kv[1][0], kv[0]),
    )
    breakdown = [
        BreakdownGroup(value=value, steps=_steps(query, figures))
        for value, figures in ordered[: query.breakdown_limit]
    ]
    return FunnelResult(
        steps=total,
        breakdown=breakdown,
        mode=query.mode,
        window_seconds=query.seconds(),
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
        for name in ("pid", "r", "instant", "us", "bits")
        if name in table.column_names
    }
    order = walk.customer_order(rows["pid"], rows["r"])
    if order is not None:
        rows = {name: column[order] for name, column in rows.items()}
    del rows["r"]
    rows.setdefault("instant", None)  # type: ignore[arg-type]
    settings = {
        "events": [s.event for s in query.steps],
        "mode": query.mode,
        "window_us": query.seconds() * 1_000_000,
        "exclusions": query.spans(),
        "spoil_customer": query.exclusions_mode == "customer",
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
    """The events in [from, to) that match a step or an exclusion, with what each matches as
    bits (step i: bit i-1, exclusion j: bit 10+j-1)."""
    lo, hi = utc_bounds(query.from_, query.to, timezone)
    bits = [f"(CASE WHEN {s.sql()} THEN {1 << i} ELSE 0 END)" for i, s in enumerate(query.steps)]
    bits += [
        f"(CASE WHEN {x.sql()} THEN {1 << (walk.EXCLUSION_BIT + j)} ELSE 0 END)"
        for j, x in enumerate(query.exclusions)
    ]
    # No ORDER BY: the table is written in customer order and DuckDB keeps the order of a
    # table in a scan; walk.customer_order checks, and sorts only if it must.
    value, join = _breakdown(query.breakdown)
    instant = "e.instant::INTEGER AS instant, " if query.mode == "strict" else ""
    return (
        f"SELECT e.pid::INTEGER AS pid, e.r::INTEGER AS r, {instant}"
        f"epoch_us(e.ts) AS us, ({' + '.join(bits)})::INTEGER AS bits, {value} AS b "
        f"FROM analytics_events e {join}WHERE {' AND '.join(_scan(query, lo, hi))}"
    )


def _scan(query: FunnelQuery, lo: datetime | None, hi: datetime | None) -> list[str]:
    """The events a funnel reads: its steps' and exclusions', inside [from, to)."""
    scan = [
        "("
        + " OR ".join([s.sql() for s in query.steps] + [x.sql() for x in query.exclusions])
        + ")"
    ]
    if lo is not None:
        scan.append(f"ts >= {ts_literal(lo)}")
    if hi is not None:
        scan.append(f"ts < {ts_literal(hi)}")
    return scan


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
    """The portable statement answering `query` (analytics/funnel_sql.py): a row per breakdown
    value (and one with NULL for all customers) of counts, medians and p90s per step."""
    lo, hi = utc_bounds(query.from_, query.to, timezone)
    value, join = _breakdown(query.breakdown)
    return funnel_statement(query, scan=_scan(query, lo, hi), value=value, join=join)


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
