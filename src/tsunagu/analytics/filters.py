"""What analyses are asked in: steps (an event with filters), periods, windows, breakdowns;
and their translation into conditions on `analytics_events` (analytics/facts.py).

A step is an event name plus, optionally, a channel (or several) and `where`: property
conditions, all of which must hold. A condition is a value (equality), a list (one of), or an
object of operators: `{"revenue": {"gte": 10000}}` with `eq ne gt gte lt lte in`. `sku` and
`category` match a product event's item or any line item of an order or cart (`category = 靴`
on "Order Completed": an order with shoes in it). `store_id`, `order_id`, `revenue` and `name`
(of a page or screen) are columns; any other key is read from the event's `properties` (a dotted
key reads a nested one).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tsunagu.exceptions import InvalidInput, invalid_from_errors
from tsunagu.store.sql import literal

Scalar = str | int | float | bool
Operator = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in"]
Condition = Scalar | list[Scalar] | dict[Operator, Scalar | list[Scalar]]

_ITEM_KEYS = {"sku": "skus", "category": "categories"}
"""Keys matched against a product event's value or an order's line items."""
_COLUMN_KEYS = {"store_id", "order_id", "name"}
_NUMBER_COLUMNS = {"revenue"}
_KEY = re.compile(r"[^\"\\\x00-\x1f]{1,200}")
_WINDOW = re.compile(r"\s*(\d+)\s*([^\d\s]+)\s*")
_DAY = 86400
UNIT_SECONDS = {
    **dict.fromkeys(("s", "sec", "second", "seconds", "秒"), 1),
    **dict.fromkeys(("m", "min", "minute", "minutes", "分"), 60),
    **dict.fromkeys(("h", "hour", "hours", "時間"), 3600),
    **dict.fromkeys(("d", "day", "days", "日"), _DAY),
    **dict.fromkeys(("w", "week", "weeks", "週", "週間"), 7 * _DAY),
    # A month is 31 days (as PostHog's funnels count it): never shorter than a calendar month.
    **dict.fromkeys(("mo", "month", "months", "ヶ月", "か月", "カ月", "ヵ月", "ケ月"), 31 * _DAY),
    **dict.fromkeys(("y", "year", "years", "年"), 365 * _DAY),
}
"""Units of a window, by the names and abbreviations people write (case-insensitive)."""
MAX_WINDOW_SECONDS = 100 * 365 * _DAY
"""A window of years is how people ask for "ever"; a century is the most one can say."""
_OPS = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def check_property_name(key: str) -> str:
    """A property name (dotted for a nested one) that can be put in a JSON path."""
    if not _KEY.fullmatch(key) or not all(part.strip() for part in key.split(".")):
        raise ValueError(f"{key!r} is not a property name (no quotes, backslashes or empty parts)")
    return key


class Step(BaseModel):
    """One event of an analysis, with optional filters."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(min_length=1, max_length=200, description="event name, e.g. Product Viewed")
    channel: str | list[str] | None = Field(
        default=None, description="web, app, line, store, call_center, catalog, email"
    )
    where: dict[str, Condition] = Field(
        default_factory=dict, description='property conditions, e.g. {"category": "靴"}'
    )

    @field_validator("where")
    @classmethod
    def _keys(cls, value: dict[str, Condition]) -> dict[str, Condition]:
        for key in value:
            check_property_name(key)
        return value

    def label(self) -> str:
        channels = self.channels()
        return self.event + (f" ({', '.join(channels)})" if channels else "")

    def channels(self) -> list[str]:
        if self.channel is None:
            return []
        return [self.channel] if isinstance(self.channel, str) else list(self.channel)

    def sql(self) -> str:
        """The condition an event of `analytics_events` meets to be this step."""
        parts = [f"event = {literal(self.event)}"]
        channels = self.channels()
        if channels:
            parts.append(f"channel IN ({', '.join(literal(c) for c in channels)})")
        parts += [condition_sql(key, cond) for key, cond in self.where.items()]
        return "(" + " AND ".join(parts) + ")"


def condition_sql(key: str, cond: Condition) -> str:
    """One `where` entry as SQL."""
    if isinstance(cond, dict):
        if not cond:
            raise InvalidInput(f"where.{key}: no operator given", field=f"where.{key}")
        return "(" + " AND ".join(_op_sql(key, op, v) for op, v in cond.items()) + ")"
    if isinstance(cond, list):
        return _op_sql(key, "in", cond)
    return _op_sql(key, "eq", cond)


def _op_sql(key: str, op: str, value: Scalar | list[Scalar]) -> str:
    if op == "in":
        values = value if isinstance(value, list) else [value]
        if not values:
            return "false"
        return "(" + " OR ".join(_op_sql(key, "eq", v) for v in values) + ")"
    if isinstance(value, list):
        raise InvalidInput(f"where.{key}.{op}: expects one value, not a list", field=f"where.{key}")
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if key in _ITEM_KEYS:
        if numeric or op not in ("eq", "ne"):
            raise InvalidInput(
                f"where.{key}: compare {key} with a text value (eq, ne or a list)",
                field=f"where.{key}",
            )
        hit = f"({key} = {literal(str(value))} OR list_contains({_ITEM_KEYS[key]}, {literal(str(value))}))"
        return hit if op == "eq" else f"NOT coalesce({hit}, false)"
    if key in _NUMBER_COLUMNS or key in _COLUMN_KEYS:
        column = key
    else:
        path = literal("$." + ".".join(f'"{part}"' for part in key.split(".")))
        column = f"json_extract_string(properties, {path})"
    if numeric:
        column = f"TRY_CAST({column} AS DOUBLE)"
        rendered = repr(float(value))
    elif isinstance(value, bool):
        rendered = literal("true" if value else "false")
    else:
        if key in _NUMBER_COLUMNS:
            raise InvalidInput(f"where.{key}: expects a number", field=f"where.{key}")
        rendered = literal(str(value))
    if op == "ne":
        return f"({column} IS NULL OR {column} <> {rendered})"
    return f"{column} {_OPS[op]} {rendered}"


def window_seconds(text: str | int, unit: str | None = None) -> int:
    """'7d', '24h', '30m', '90s', '2w', '3mo', '2 years', '30日' (or a number of `unit`s,
    seconds by default) as seconds."""
    if isinstance(text, int) and not isinstance(text, bool):
        count, name = text, unit or "s"
    else:
        m = _WINDOW.fullmatch(str(text))
        if not m or unit is not None:
            raise InvalidInput(
                f"window: {text!r} is not a duration such as 30m, 24h, 7d, 2w or 3months "
                "(or a number with window_unit)",
                field="window",
            )
        count, name = int(m.group(1)), m.group(2)
    seconds = UNIT_SECONDS.get(name.lower())
    if seconds is None:
        units = "seconds, minutes, hours, days, weeks, months or years"
        raise InvalidInput(f"window: {name!r} is not a unit ({units})", field="window")
    if not 0 < count * seconds <= MAX_WINDOW_SECONDS:
        raise InvalidInput("window: must be more than 0 and at most 100 years", field="window")
    return count * seconds


DateOrTime = Annotated[date | datetime, Field(description="a date (local) or a time")]


def utc_bounds(
    start: date | datetime | None, end: date | datetime | None, timezone: str
) -> tuple[datetime | None, datetime | None]:
    """[from, to) in the store's naive UTC. A date is a local calendar day; `to` includes its
    whole day. A time without an offset is local."""
    zone = ZoneInfo(timezone)

    def utc(moment: datetime) -> datetime:
        aware = moment if moment.tzinfo else moment.replace(tzinfo=zone)
        return aware.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    def as_time(value: date | datetime, *, end: bool) -> datetime:
        if isinstance(value, datetime):
            return utc(value)
        return utc(datetime.combine(value + timedelta(days=1 if end else 0), time()))

    lo = as_time(start, end=False) if start is not None else None
    hi = as_time(end, end=True) if end is not None else None
    if lo is not None and hi is not None and hi <= lo:
        raise InvalidInput("to: must be after from", field="to")
    return lo, hi


def ts_literal(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.isoformat(sep=' ')}'"


def parse(model: type[BaseModel], data: Any) -> Any:
    """`model` validated from `data`, its first error as an InvalidInput naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_from_errors(exc.errors()) from None
