"""Retention: of the customers who first did the start event in a period, how many came back.

Definitions (the tests hold a plain-Python reading to the same answers):

- A customer's cohort is the day / week (Monday to Sunday) / month, local time, of their first
  start event ever; cohorts from `from` to `to` (local dates) are shown. With a breakdown by
  channel, the channel of that first start event splits the cohorts.
- Period n of a cohort is the n-th day / week / month after the cohort's own. A customer is
  retained in period n (n >= 1) if they did the return event in it (so after their first start
  event). Period 0 is the cohort itself: every member.
- Periods after the last day of data are `null` (not yet observed); the last observed period
  may be partial.
- `average` weighs each period's rate by the cohorts that have observed it.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tsunagu.analytics.engine import Engine
from tsunagu.analytics.filters import Step
from tsunagu.store.sql import literal

Grain = Literal["day", "week", "month"]
DEFAULT_PERIODS = {"day": 30, "week": 12, "month": 12}


class RetentionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: Step = Field(description="the event that puts a customer in a cohort")
    return_: Step = Field(alias="return", description="the event that counts as coming back")
    grain: Grain = "week"
    periods: int | None = Field(
        default=None, ge=1, le=366, description="periods after the cohort's"
    )
    from_: date | None = Field(default=None, alias="from", description="first cohort day (local)")
    to: date | None = Field(default=None, description="last cohort day (local)")
    breakdown: Literal["channel"] | None = Field(
        default=None, description="split cohorts by the channel of the first start event"
    )


class Cohort(BaseModel):
    cohort: date
    channel: str | None = None
    customers: int
    retained: list[int | None]
    """Customers retained in period 0, 1, ...; null where not yet observed."""
    rates: list[float | None]


class RetentionResult(BaseModel):
    grain: Grain
    periods: int
    cohorts: list[Cohort]
    average: list[float | None]
    last_day: date | None
    seconds: float


def run_retention(*, engine: Engine, query: RetentionQuery) -> RetentionResult:
    started = time.perf_counter()
    periods = query.periods or DEFAULT_PERIODS[query.grain]
    rows = engine.rows(retention_sql(query, periods=periods))
    last_day = engine.rows("SELECT max(day) FROM analytics_events")[0][0]
    cells: dict[tuple[date, str | None], dict[int, int]] = {}
    for cohort, channel, n, customers in rows:
        cells.setdefault((cohort, channel), {})[int(n)] = int(customers)
    cohorts = []
    for (cohort, channel), by_period in sorted(
        cells.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
    ):
        size = by_period.get(-1, 0)
        observed = _observed(cohort, query.grain, last_day, periods)
        retained: list[int | None] = [size]
        retained += [by_period.get(n, 0) if n <= observed else None for n in range(1, periods + 1)]
        rates = [None if r is None else round(r / size, 6) if size else 0.0 for r in retained]
        cohorts.append(
            Cohort(cohort=cohort, channel=channel, customers=size, retained=retained, rates=rates)
        )
    average: list[float | None] = []
    for n in range(periods + 1):
        seen = [(c.retained[n], c.customers) for c in cohorts if c.retained[n] is not None]
        total = sum(size for _, size in seen)
        average.append(round(sum(r or 0 for r, _ in seen) / total, 6) if total else None)
    return RetentionResult(
        grain=query.grain,
        periods=periods,
        cohorts=cohorts,
        average=average,
        last_day=last_day,
        seconds=round(time.perf_counter() - started, 4),
    )


def _observed(cohort: date, grain: Grain, last_day: date | None, periods: int) -> int:
    """The last period of `cohort` that has begun by `last_day`."""
    if last_day is None:
        return 0
    if grain == "day":
        n = (last_day - cohort).days
    elif grain == "week":
        n = (last_day - cohort).days // 7
    else:
        n = (last_day.year - cohort.year) * 12 + last_day.month - cohort.month
    return max(0, min(n, periods))


def retention_sql(query: RetentionQuery, *, periods: int) -> str:
    """Rows (cohort, channel, period, customers); period -1 holds the cohort's size."""
    grain = literal(query.grain)
    window = []
    if query.from_ is not None:
        window.append(f"first_day >= DATE '{query.from_.isoformat()}'")
    if query.to is not None:
        window.append(f"first_day <= DATE '{query.to.isoformat()}'")
    cohort_filter = " AND ".join(window) or "true"
    channel = "b" if query.breakdown == "channel" else "CAST(NULL AS VARCHAR)"
    return (
        "WITH firsts AS ("
        "  SELECT pid, arg_min(day, r) AS first_day, arg_min(channel, r) AS b "
        f" FROM analytics_events WHERE {query.start.sql()} GROUP BY pid"
        "), cohorts AS ("
        f" SELECT pid, CAST(date_trunc({grain}, first_day) AS DATE) AS cohort, {channel} AS channel "
        f" FROM firsts WHERE {cohort_filter}"
        "), returns AS ("
        f" SELECT DISTINCT pid, CAST(date_trunc({grain}, day) AS DATE) AS period "
        f" FROM analytics_events WHERE {query.return_.sql()} "
        "  AND pid IN (SELECT pid FROM cohorts)"
        ") "
        "SELECT cohort, channel, -1 AS n, count(*) AS customers FROM cohorts GROUP BY ALL "
        "UNION ALL "
        f"SELECT c.cohort, c.channel, date_diff({grain}, c.cohort, r.period) AS n, count(*) "
        "FROM cohorts c JOIN returns r ON r.pid = c.pid "
        f"WHERE date_diff({grain}, c.cohort, r.period) BETWEEN 1 AND {periods} GROUP BY ALL"
    )
