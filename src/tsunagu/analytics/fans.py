"""Fan level: how strong each customer's relationship is, across channels, as a level 1-5.

Every profile gets points from its events in the `window_days` days up to `as_of` (local days,
inclusive), by rules a retailer can change (`fan-rules.json` in the data dir):

- recency: days since the last purchase (any channel), `recency` = [[max_days, points], ...];
- frequency: orders, online and in store, `frequency` = [[at_least, points], ...];
- monetary: spend in JPY, online and in store, `monetary` = [[at_least, points], ...];
- omnichannel: `omnichannel_points` for buying both online (web, app) and in a store;
- engagement: days with an action of their own on the app or LINE (what the retailer sends
  does not count), `engagement` = [[at_least_days, points], ...].

A list gives the points of the first row that applies (rows are checked in order, so write
them strongest first). The score is the sum; the level is the highest of `levels` whose
`min_score` the score reaches. Customers with nothing in the window score 0, and so do profiles
with no action at all yet (a member who never came): every profile of the graph has a level.

`compute_fan_levels` stores the current levels (`fan_levels`, one row per profile, read by the
profile API and by breakdowns as `profile.fan_level`); `fan_report` gives the distribution as
of any day and the movement between two days, computed from the events, so it needs no stored
history.
"""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tsunagu.analytics.engine import Engine
from tsunagu.analytics.filters import parse
from tsunagu.analytics.kpis import SENT_BY_RETAILER
from tsunagu.store import Store, utcnow
from tsunagu.store.sql import literal


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: int = Field(ge=0, le=99)
    name: str = Field(min_length=1, max_length=50, description="the label, Japanese")
    name_en: str = Field(min_length=1, max_length=50)
    min_score: int = Field(ge=0)


def _rows(value: list[list[float]], what: str) -> list[list[float]]:
    for row in value:
        if len(row) != 2 or row[0] < 0 or row[1] < 0:
            raise ValueError(f"each row of {what} is [threshold, points], both >= 0")
    return value


class FanRules(BaseModel):
    """The points and levels; the defaults follow the usual 5-stage fan pyramid."""

    model_config = ConfigDict(extra="forbid")

    window_days: int = Field(default=365, ge=1, le=3650)
    recency: list[list[float]] = Field(
        default_factory=lambda: [[30.0, 4.0], [90.0, 3.0], [180.0, 2.0], [365.0, 1.0]],
        description="[max days since the last purchase, points], strongest first",
    )
    frequency: list[list[float]] = Field(
        default_factory=lambda: [[12.0, 4.0], [6.0, 3.0], [3.0, 2.0], [1.0, 1.0]],
        description="[at least orders, points], strongest first",
    )
    monetary: list[list[float]] = Field(
        default_factory=lambda: [[200_000.0, 4.0], [80_000.0, 3.0], [30_000.0, 2.0], [1.0, 1.0]],
        description="[at least JPY, points], strongest first",
    )
    omnichannel_points: int = Field(default=2, ge=0)
    engagement: list[list[float]] = Field(
        default_factory=lambda: [[20.0, 3.0], [8.0, 2.0], [2.0, 1.0]],
        description="[at least active days on the app or LINE, points], strongest first",
    )
    levels: list[Level] = Field(
        default_factory=lambda: [
            Level(level=1, name="ライト", name_en="Light", min_score=0),
            Level(level=2, name="ミドル", name_en="Regular", min_score=4),
            Level(level=3, name="ロイヤル", name_en="Loyal", min_score=8),
            Level(level=4, name="ファン", name_en="Fan", min_score=12),
            Level(level=5, name="コアファン", name_en="Core fan", min_score=15),
        ]
    )

    @field_validator("recency", "frequency", "monetary", "engagement")
    @classmethod
    def _pairs(cls, value: list[list[float]]) -> list[list[float]]:
        return _rows(value, "the list")

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: list[Level]) -> list[Level]:
        if not value:
            raise ValueError("at least one level")
        if min(level.min_score for level in value) != 0:
            raise ValueError("the lowest level starts at min_score 0, so every profile has one")
        if len({level.level for level in value}) != len(value):
            raise ValueError("each level once")
        return sorted(value, key=lambda level: level.min_score)


def load_fan_rules(data_dir: Path) -> FanRules:
    """`fan-rules.json` in the data dir, or the defaults."""
    path = data_dir / "fan-rules.json"
    if not path.exists():
        return FanRules()
    return parse(FanRules, json.loads(path.read_text(encoding="utf-8")))  # type: ignore[no-any-return]


def _points(column: str, rows: list[list[float]], *, at_most: bool = False) -> str:
    if not rows:
        return "0"
    op = "<=" if at_most else ">="
    cases = " ".join(f"WHEN {column} {op} {t!r} THEN {int(p)}" for t, p in rows)
    return f"(CASE {cases} ELSE 0 END)"


def scores_sql(rules: FanRules, as_of: date) -> str:
    """(pid, recency, frequency, monetary, omnichannel, engagement, score, level) for every
    customer seen by `as_of`."""
    first = as_of - timedelta(days=rules.window_days - 1)
    sent = ", ".join(literal(e) for e in SENT_BY_RETAILER)
    order = "event = 'Order Completed'"
    level = (
        "CASE "
        + " ".join(
            f"WHEN score >= {lv.min_score} THEN {lv.level}"
            for lv in sorted(rules.levels, key=lambda lv: -lv.min_score)
        )
        + " END"
    )
    return (
        "WITH seen AS (SELECT DISTINCT pid FROM analytics_events "
        f" WHERE day <= DATE '{as_of.isoformat()}'), "
        "w AS (SELECT pid, "
        f" max(day) FILTER (WHERE {order}) AS last_purchase, "
        f" count(*) FILTER (WHERE {order}) AS orders, "
        f" coalesce(sum(revenue) FILTER (WHERE {order}), 0) AS spend, "
        f" bool_or({order} AND channel IN ('web', 'app')) AS online, "
        f" bool_or({order} AND channel = 'store') AS in_store, "
        f" count(DISTINCT day) FILTER (WHERE channel IN ('app', 'line') AND event NOT IN ({sent})) "
        "  AS engaged_days "
        f" FROM analytics_events WHERE day BETWEEN DATE '{first.isoformat()}' "
        f" AND DATE '{as_of.isoformat()}' GROUP BY pid), "
        "p AS (SELECT seen.pid, "
        + _points(
            f"date_diff('day', w.last_purchase, DATE '{as_of.isoformat()}')",
            rules.recency,
            at_most=True,
        )
        + " * (w.last_purchase IS NOT NULL)::INT AS recency, "
        + _points("coalesce(w.orders, 0)", rules.frequency)
        + " AS frequency, "
        + _points("coalesce(w.spend, 0)", rules.monetary)
        + " AS monetary, "
        f"CASE WHEN w.online AND w.in_store THEN {rules.omnichannel_points} ELSE 0 END "
        "AS omnichannel, "
        + _points("coalesce(w.engaged_days, 0)", rules.engagement)
        + " AS engagement FROM seen LEFT JOIN w USING (pid)) "
        f"SELECT *, {level} AS level FROM ("
        " SELECT *, recency + frequency + monetary + omnichannel + engagement AS score FROM p)"
    )


class FanComputation(BaseModel):
    as_of: date
    profiles: int
    seconds: float


def compute_fan_levels(
    *, store: Store, rules: FanRules, as_of: date | None = None
) -> FanComputation:
    """Store every profile's level as of `as_of` (default: the last day with events)."""
    started = time.perf_counter()
    day = as_of or _last_day(store)
    with store.transaction() as cur:
        cur.execute("DELETE FROM fan_levels")
        cur.execute(
            "INSERT INTO fan_levels SELECT ap.profile_id, s.level, s.score, s.recency, "
            "s.frequency, s.monetary, s.omnichannel, s.engagement, ?::DATE, ?::TIMESTAMP "
            f"FROM ({scores_sql(rules, day)}) s JOIN analytics_profiles ap USING (pid) "
            "ORDER BY ap.profile_id",
            [day, utcnow()],
        )
        # Profiles with no action of their own yet (a member who never came) score nothing.
        lowest = min(rules.levels, key=lambda lv: lv.min_score).level
        cur.execute(
            f"INSERT INTO fan_levels SELECT profile_id, {lowest}, 0, 0, 0, 0, 0, 0, ?::DATE, "
            "?::TIMESTAMP FROM (SELECT DISTINCT profile_id FROM identity_nodes) "
            "WHERE profile_id NOT IN (SELECT profile_id FROM fan_levels) ORDER BY profile_id",
            [day, utcnow()],
        )
        n = int(cur.execute("SELECT count(*) FROM fan_levels").fetchall()[0][0])
    return FanComputation(as_of=day, profiles=n, seconds=round(time.perf_counter() - started, 4))


def _last_day(store: Store) -> date:
    day = store.scalar("SELECT max(day) FROM analytics_events")
    return day if day is not None else utcnow().date()


class LevelShare(BaseModel):
    level: int
    name: str
    name_en: str
    customers: int
    share: float
    revenue: int
    """Spend in the window of the level's customers."""
    share_of_revenue: float


class Move(BaseModel):
    from_level: int
    to_level: int
    customers: int


class FanReport(BaseModel):
    as_of: date
    compare_to: date | None
    window_days: int
    customers: int
    levels: list[LevelShare]
    movement: list[Move]
    """Customers by (level at compare_to, level at as_of); customers new since then are at
    level 0 in `from_level`."""
    moved_up: int
    moved_down: int
    stayed: int
    seconds: float


def fan_report(
    *, engine: Engine, rules: FanRules, as_of: date | None = None, compare_to: date | None = None
) -> FanReport:
    started = time.perf_counter()
    day = as_of or _last_day(engine.store)
    spend_first = day - timedelta(days=rules.window_days - 1)
    rows = engine.rows(
        f"SELECT s.level, count(*), coalesce(sum(w.spend), 0) FROM ({scores_sql(rules, day)}) s "
        "LEFT JOIN (SELECT pid, sum(revenue) AS spend FROM analytics_events "
        f" WHERE event = 'Order Completed' AND day BETWEEN DATE '{spend_first.isoformat()}' "
        f" AND DATE '{day.isoformat()}' GROUP BY pid) w USING (pid) GROUP BY s.level"
    )
    counts = {int(level): (int(n), round(spend)) for level, n, spend in rows}
    customers = sum(n for n, _ in counts.values())
    revenue = sum(s for _, s in counts.values())
    levels = [
        LevelShare(
            level=lv.level,
            name=lv.name,
            name_en=lv.name_en,
            customers=counts.get(lv.level, (0, 0))[0],
            share=round(counts.get(lv.level, (0, 0))[0] / customers, 6) if customers else 0.0,
            revenue=counts.get(lv.level, (0, 0))[1],
            share_of_revenue=round(counts.get(lv.level, (0, 0))[1] / revenue, 6)
            if revenue
            else 0.0,
        )
        for lv in rules.levels
    ]
    movement: list[Move] = []
    if compare_to is not None:
        moves = engine.rows(
            f"SELECT coalesce(b.level, 0), a.level, count(*) FROM ({scores_sql(rules, day)}) a "
            f"LEFT JOIN ({scores_sql(rules, compare_to)}) b USING (pid) GROUP BY ALL ORDER BY 1, 2"
        )
        movement = [Move(from_level=int(f), to_level=int(t), customers=int(n)) for f, t, n in moves]
    return FanReport(
        as_of=day,
        compare_to=compare_to,
        window_days=rules.window_days,
        customers=customers,
        levels=levels,
        movement=movement,
        moved_up=sum(m.customers for m in movement if m.from_level and m.to_level > m.from_level),
        moved_down=sum(m.customers for m in movement if m.to_level < m.from_level),
        stayed=sum(m.customers for m in movement if m.to_level == m.from_level),
        seconds=round(time.perf_counter() - started, 4),
    )


def level_of(store: Store, profile_id: str) -> dict[str, Any] | None:
    """The stored fan level of a profile (for the profile API), or None."""
    rows = store.query(
        "SELECT level, score, recency, frequency, monetary, omnichannel, engagement, as_of "
        "FROM fan_levels WHERE profile_id = ?",
        [profile_id],
    )
    if not rows:
        return None
    level, score, *points, as_of = rows[0]
    names = ("recency", "frequency", "monetary", "omnichannel", "engagement")
    return {
        "level": level,
        "score": score,
        "points": dict(zip(names, points, strict=True)),
        "as_of": str(as_of),
    }
