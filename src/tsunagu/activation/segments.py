"""Segments: who, as data. A definition is JSON, validated with errors naming the field, and
compiled to one SQL statement over the profiles (`profile_traits`), their fan level and LTV,
and their events (`analytics_events`).

A rule is one of:

- `{"all": [RULE, ...]}`, `{"any": [RULE, ...]}`, `{"not": RULE}`;
- a trait: `{"trait": "fan_level", "gte": 3}` with `eq ne gt gte lt lte in` (or `"exists": true`)
  on a profile's computed traits (`fan_level`, `ltv`, `expected_purchases`, `spend_online`,
  `spend_store`, `orders_online`, `orders_store`, `events`, `home_store_id`) or on any trait a
  profile holds (`gender`, `prefecture`, `birth_date`, ...); on a moment (`first_seen`,
  `last_seen`, `last_store_visit`) `"within": "30d"` or `"not_within": "90d"` of `as_of`;
- consent: `{"consent": "email" | "line" | "push" | "dm"}` (the member's opt-in);
- events: `{"event": "Product Viewed", "channel": "app", "where": {"category": "靴"},
  "store_id": "S001", "within": "30d", "at_least": 2}` (did it at least N times, default 1;
  `"at_most": 0` or `not` for "did not");
- location: `{"near_store": "S001", "km": 5, "by": "home_store" | "last_location" | "either"}`:
  the home store, or the last place an event was sent from (a beacon, the app's GPS), within
  `km` of the store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tsunagu.analytics.filters import Scalar, Step, check_property_name, ts_literal, window_seconds
from tsunagu.catalog.products import distance_sql
from tsunagu.exceptions import InvalidInput
from tsunagu.store import Store, utcnow
from tsunagu.store.sql import literal

COMPUTED = {
    "fan_level": "f.level",
    "ltv": "l.expected_value",
    "expected_purchases": "l.expected_purchases",
    "spend_online": "p.spend_online",
    "spend_store": "p.spend_store",
    "orders_online": "p.orders_online",
    "orders_store": "p.orders_store",
    "events": "p.events",
    "home_store_id": "coalesce(p.home_store_id, json_extract_string(p.traits, '$.home_store_id'))",
}
MOMENTS = {
    "first_seen": "p.first_seen",
    "last_seen": "p.last_seen",
    "last_store_visit": "p.last_store_visit",
}
CONSENTS = ("email", "line", "push", "dm")
_OPS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TraitRule(_Rule):
    trait: str = Field(min_length=1, max_length=200)
    eq: Scalar | None = None
    ne: Scalar | None = None
    gt: Scalar | None = None
    gte: Scalar | None = None
    lt: Scalar | None = None
    lte: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    exists: bool | None = None
    within: str | None = None
    not_within: str | None = None

    @model_validator(mode="after")
    def _one_test(self) -> TraitRule:
        check_property_name(self.trait)
        tests = [
            k
            for k in (*_OPS, "in_", "exists", "within", "not_within")
            if getattr(self, k) is not None
        ]
        if not tests:
            raise ValueError(
                f"trait {self.trait}: say what it must be (eq, ne, gt, gte, lt, lte, in, exists, "
                "within or not_within)"
            )
        if (self.within or self.not_within) and self.trait not in MOMENTS:
            raise ValueError(f"within: only for {', '.join(MOMENTS)}")
        return self


class ConsentRule(_Rule):
    consent: Literal["email", "line", "push", "dm"]


class EventRule(Step):
    store_id: str | None = Field(default=None, min_length=1, max_length=100)
    within: str | None = Field(default=None, description="30d, 12h, 2w ...")
    at_least: int = Field(default=1, ge=0, le=1_000_000)
    at_most: int | None = Field(default=None, ge=0, le=1_000_000)


class NearRule(_Rule):
    near_store: str = Field(min_length=1, max_length=100)
    km: float = Field(gt=0, le=1000)
    by: Literal["home_store", "last_location", "either"] = "either"


class AllRule(_Rule):
    all: list[Rule] = Field(min_length=1, max_length=50)


class AnyRule(_Rule):
    any: list[Rule] = Field(min_length=1, max_length=50)


class NotRule(_Rule):
    not_: Rule = Field(alias="not")


Rule = AllRule | AnyRule | NotRule | TraitRule | ConsentRule | EventRule | NearRule
for _model in (AllRule, AnyRule, NotRule):
    _model.model_rebuild()


class SegmentDefinition(BaseModel):
    """A segment as `POST /v1/segments` and `tsunagu segment create FILE.json` take it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    rule: Rule


def compile_rule(rule: Rule, *, store: Store, as_of: datetime, scope: str | None = None) -> str:
    """The condition a customer (`u`, with `p` their traits, `f` their fan level and `l` their
    LTV) meets. `scope`: a relation of the only profile ids asked about (the events read are
    theirs alone)."""
    match rule:
        case AllRule():
            return (
                "("
                + " AND ".join(
                    compile_rule(r, store=store, as_of=as_of, scope=scope) for r in rule.all
                )
                + ")"
            )
        case AnyRule():
            return (
                "("
                + " OR ".join(
                    compile_rule(r, store=store, as_of=as_of, scope=scope) for r in rule.any
                )
                + ")"
            )
        case NotRule():
            return f"(NOT coalesce({compile_rule(rule.not_, store=store, as_of=as_of, scope=scope)}, false))"
        case ConsentRule():
            return f"coalesce(json_extract(p.traits, '$.{rule.consent}_opt_in')::BOOLEAN, false)"
        case TraitRule():
            return _trait(rule, as_of)
        case EventRule():
            return _events(rule, as_of, scope)
        case NearRule():
            return _near(rule, store, scope)
    raise AssertionError(rule)


def _trait(rule: TraitRule, as_of: datetime) -> str:
    if rule.trait in MOMENTS:
        column = MOMENTS[rule.trait]
        parts = []
        if rule.within:
            parts.append(
                f"{column} >= {ts_literal(as_of)} - INTERVAL {window_seconds(rule.within)} SECOND"
            )
        if rule.not_within:
            seconds = window_seconds(rule.not_within)
            parts.append(
                f"({column} IS NULL OR {column} < {ts_literal(as_of)} - INTERVAL {seconds} SECOND)"
            )
        if rule.exists is not None:
            parts.append(f"{column} IS {'NOT ' if rule.exists else ''}NULL")
        for op, sql_op in _OPS.items():
            value = getattr(rule, op)
            if value is not None:  # a date or a time (UTC)
                parts.append(f"{column} {sql_op} TRY_CAST({literal(str(value))} AS TIMESTAMP)")
        if rule.in_ is not None:
            raise InvalidInput(f"rule.in: {rule.trait} is a moment: compare it", field="rule.in")
        return "coalesce(" + " AND ".join(parts) + ", false)"
    text = COMPUTED.get(rule.trait) or (
        "json_extract_string(p.traits, "
        + literal("$." + ".".join(f'"{k}"' for k in rule.trait.split(".")))
        + ")"
    )
    parts = []
    if rule.exists is not None:
        parts.append(f"{text} IS {'NOT ' if rule.exists else ''}NULL")
    for op, sql_op in _OPS.items():
        value = getattr(rule, op)
        if value is not None:
            parts.append(_compare(text, sql_op, value))
    if rule.in_ is not None:
        parts.append(
            "(" + " OR ".join(_compare(text, "=", v) for v in rule.in_ or ["__none__"]) + ")"
        )
    return "coalesce(" + " AND ".join(parts) + ", false)"


def _compare(column: str, op: str, value: Scalar) -> str:
    if isinstance(value, bool):
        return f"lower(CAST({column} AS VARCHAR)) {op} {literal(str(value).lower())}"
    if isinstance(value, int | float):
        return f"TRY_CAST({column} AS DOUBLE) {op} {float(value)!r}"
    return f"CAST({column} AS VARCHAR) {op} {literal(value)}"


def _events(rule: EventRule, as_of: datetime, scope: str | None = None) -> str:
    where = [rule.sql(), f"e.ts <= {ts_literal(as_of)}"]
    if scope is not None:
        where.append(f"ap.profile_id IN (SELECT profile_id FROM {scope})")
    if rule.store_id is not None:
        where.append(f"e.store_id = {literal(rule.store_id)}")
    if rule.within is not None:
        where.append(f"e.ts >= {ts_literal(as_of)} - INTERVAL {window_seconds(rule.within)} SECOND")
    having = [f"count(*) >= {rule.at_least}"]
    if rule.at_most is not None:
        having.append(f"count(*) <= {rule.at_most}")
    counted = (
        "SELECT ap.profile_id FROM analytics_events e JOIN analytics_profiles ap ON ap.pid = e.pid "
        f"WHERE {' AND '.join(where)} GROUP BY ap.profile_id"
    )
    if rule.at_least == 0 and rule.at_most is not None:
        # "At most N times" includes never: those are the profiles not above N.
        above = f"{counted} HAVING count(*) > {rule.at_most}"
        return f"(u.profile_id NOT IN ({above}))"
    return f"(u.profile_id IN ({counted} HAVING {' AND '.join(having)}))"


def _near(rule: NearRule, store: Store, scope: str | None = None) -> str:
    found = store.query("SELECT lat, lon FROM stores WHERE store_id = ?", [rule.near_store])
    if not found or found[0][0] is None:
        raise InvalidInput(
            f"near_store: no store {rule.near_store!r} with a location", field="near_store"
        )
    lat, lon = found[0]
    within = f" AND profile_id IN (SELECT profile_id FROM {scope})" if scope is not None else ""
    # One set of profiles, looked up once (an OR of two IN tests is planned as two mark joins).
    sets = []
    if rule.by in ("home_store", "either"):
        home = COMPUTED["home_store_id"]
        near = f"SELECT store_id FROM stores WHERE {distance_sql('lat', 'lon', lat, lon)} <= {rule.km!r}"
        sets.append(f"SELECT p.profile_id FROM profile_traits p WHERE {home} IN ({near}){within}")
    if rule.by in ("last_location", "either"):
        sets.append(
            "SELECT ap.profile_id FROM (SELECT pid, arg_max(lat, ts) AS lat, arg_max(lon, ts) AS lon "
            "FROM analytics_events WHERE lat IS NOT NULL AND lon IS NOT NULL "
            + (
                f"AND pid IN (SELECT pid FROM analytics_profiles WHERE true{within}) "
                if scope is not None
                else ""
            )
            + "GROUP BY pid) x "
            "JOIN analytics_profiles ap ON ap.pid = x.pid "
            f"WHERE {distance_sql('x.lat', 'x.lon', lat, lon)} <= {rule.km!r}"
        )
    return f"coalesce(u.profile_id IN ({' UNION '.join(sets)}), false)"


def members_sql(rule: Rule, *, store: Store, as_of: datetime, scope: str | None = None) -> str:
    """The profile ids of the segment: among the profiles, and the customers whose events came
    after the last identity build (analytics knows them before the graph does). With `scope` (a
    relation of profile ids), among those only, reading only their events."""
    return (
        # (Analytics names a customer the graph has not seen yet by their identifier, TYPE:VALUE.)
        "SELECT u.profile_id FROM (SELECT profile_id FROM profile_traits UNION ALL "
        "SELECT profile_id FROM analytics_profiles WHERE contains(profile_id, ':')) u "
        "LEFT JOIN profile_traits p ON p.profile_id = u.profile_id "
        "LEFT JOIN fan_levels f ON f.profile_id = u.profile_id "
        "LEFT JOIN ltv_predictions l ON l.profile_id = u.profile_id "
        + "WHERE "
        + ("" if scope is None else f"u.profile_id IN (SELECT profile_id FROM {scope}) AND ")
        + compile_rule(rule, store=store, as_of=as_of, scope=scope)
    )


class Preview(BaseModel):
    customers: int
    sample: list[dict[str, Any]]
    as_of: datetime
    seconds: float


def preview(
    *, store: Store, rule: Rule, as_of: datetime | None = None, sample: int = 10
) -> Preview:
    """How many profiles the rule holds, and a few of them (with what identifies them)."""
    import time

    started = time.perf_counter()
    moment = (as_of or utcnow()).replace(tzinfo=None)
    sql = members_sql(rule, store=store, as_of=moment)
    cur = store.cursor()
    try:
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _segment AS {sql}")
        (count,) = cur.execute("SELECT count(*) FROM _segment").fetchone() or (0,)
        rows = cur.execute(
            "SELECT s.profile_id, json_extract_string(p.traits, '$.member_id'), "
            "json_extract_string(p.traits, '$.name'), f.level FROM "
            f"(SELECT profile_id FROM _segment ORDER BY hash(profile_id) LIMIT {int(sample)}) s "
            "JOIN profile_traits p USING (profile_id) LEFT JOIN fan_levels f USING (profile_id)"
        ).fetchall()
        cur.execute("DROP TABLE _segment")
    finally:
        cur.close()
    return Preview(
        customers=int(count),
        sample=[
            {"profile_id": pid, "member_id": member, "name": name, "fan_level": level}
            for pid, member, name, level in rows
        ],
        as_of=moment,
        seconds=round(time.perf_counter() - started, 4),
    )
