"""`message_row`'s rules in SQL, for many messages at once (the JSONL import).

DuckDB reads each line's JSON once per function (the types at the paths a rule reads, their
values, the keys of the objects they are in) and decides, for every line whose shape it can
decide exactly as `normalize.message_row` would, the row that function makes (a message
without a messageId gets its content's id, made in Python as there). Every other line is left
to `message_row` itself: an id or a time given as a number, a time in a form other than
`YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]`, text with white space at its ends (Python's strip),
a key given twice in an object a rule reads (DuckDB reads the first, msgspec the last), a
group or alias, a message over 32 KB or nested deeply, and every message a rule refuses (the
error is `message_row`'s). So the SQL never refuses a line and never makes a row `message_row`
would not make; tests/events/test_rules_sql.py holds the two to the same rows, rule by rule,
on generated messages and through a whole import.

The caller has checked that each line is UTF-8 and JSON as msgspec reads it (DuckDB's reader
also takes trailing commas and NaN).
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tsunagu.events.model import CHANNELS
from tsunagu.events.normalize import (
    DEPTH_LIMIT,
    EARLIEST,
    FUTURE_SLACK,
    ID_LIMIT,
    MAX_EVENT_BYTES,
    NAME_LIMIT,
    SEGMENT_CHANNELS,
    content_message_id,
)
from tsunagu.store.sql import literal

_PATHS = (
    "$",
    "$.type",
    "$.messageId",
    "$.userId",
    "$.anonymousId",
    "$.timestamp",
    "$.originalTimestamp",
    "$.sentAt",
    "$.context",
    "$.integrations",
    "$.event",
    "$.name",
    "$.category",
    "$.properties",
    "$.traits",
    "$.groupId",
    "$.previousId",
    "$.context.channel",
    "$.context.store_id",
    "$.context.device",
    "$.context.app",
    "$.context.traits",
    "$.properties.store_id",
    "$.context.device.id",
    *(f"$.traits.{k}" for k in ("email", "phone", "line_user_id", "member_card")),
    *(f"$.context.traits.{k}" for k in ("email", "phone", "line_user_id", "member_card")),
)
_OBJECTS = ("$", "$.context", "$.properties", "$.traits", "$.context.traits", "$.context.device")
"""Objects a rule reads a key of: a key given twice in one of them is left to Python."""
_VALUES = tuple(p for p in _PATHS if p not in (*_OBJECTS, "$.integrations", "$.context.app"))
"""Paths whose value a rule reads (of the rest only the type: their text would be copied)."""

WHITE_SPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
"""What Python's str.strip() takes off (str.isspace: none above U+3000)."""
_WS_TEXT = "chr(" + ") || chr(".join(str(ord(c)) for c in WHITE_SPACE) + ")"

TIME_FORM = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?$"
)
"""ISO 8601 times Python's datetime.fromisoformat and DuckDB read alike."""


def _t(path: str) -> str:
    return f"t[{_PATHS.index(path) + 1}]"


def _v(path: str) -> str:
    return f"v[{_VALUES.index(path) + 1}]"


def _absent(path: str, *kinds: str) -> str:
    """The key is missing, or its JSON type is one of `kinds`."""
    inside = ", ".join(map(literal, kinds))
    return f"({_t(path)} IS NULL OR {_t(path)} IN ({inside}))" if kinds else f"{_t(path)} IS NULL"


def _plain(value: str, limit: int) -> str:
    """Text that Python's strip leaves as it is, `limit` characters at most."""
    return (
        f"(length({value}) <= {limit} AND NOT contains({_WS_TEXT}, left({value}, 1)) "
        f"AND NOT contains({_WS_TEXT}, right({value}, 1)))"
    )


def _id_or_blank(path: str) -> str:
    """An id `_id` reads as itself or as absent: missing, null, "" or plain text."""
    v = _v(path)
    return f"({_absent(path, 'NULL')} OR ({_t(path)} = 'VARCHAR' AND ({v} = '' OR {_plain(v, ID_LIMIT)})))"


def _id_value(path: str) -> str:
    return f"CASE WHEN {_t(path)} = 'VARCHAR' AND {_v(path)} <> '' THEN {_v(path)} END"


def _name_ok(path: str) -> str:
    return f"({_absent(path, 'NULL')} OR ({_t(path)} = 'VARCHAR' AND length({_v(path)}) <= {NAME_LIMIT}))"


def _text_ok(path: str) -> str:
    """`_text` reads it exactly: absent, null, not a scalar, an integer, "" or plain text."""
    t, v = _t(path), _v(path)
    return (
        f"({t} IS NULL OR {t} IN ('NULL', 'BOOLEAN', 'OBJECT', 'ARRAY') "
        f"OR ({t} IN ('BIGINT', 'UBIGINT') AND regexp_matches({v}, '^-?[0-9]+$')) "
        f"OR ({t} = 'VARCHAR' AND ({v} = '' OR {_plain(v, ID_LIMIT)})))"
    )


def _text_value(path: str) -> str:
    t, v = _t(path), _v(path)
    return f"CASE WHEN {t} IN ('VARCHAR', 'BIGINT', 'UBIGINT') AND {v} <> '' THEN {v} END"


def _identifier(name: str) -> tuple[str, str]:
    """(ok, value) of an identifier of the traits, else of context.traits."""
    own, context = f"$.traits.{name}", f"$.context.traits.{name}"
    from_own = f"{_t('$.traits')} = 'OBJECT' AND {_t(own)} IS NOT NULL"
    from_context = f"{_t('$.context.traits')} = 'OBJECT'"
    ok = f"(CASE WHEN {from_own} THEN {_text_ok(own)} WHEN {from_context} THEN {_text_ok(context)} ELSE true END)"
    value = f"CASE WHEN {from_own} THEN {_text_value(own)} WHEN {from_context} THEN {_text_value(context)} END"
    return ok, value


def _sql() -> str:
    kind = _v("$.type")
    given_store = f"({_t('$.properties')} = 'OBJECT' AND {_t('$.properties.store_id')} IS NOT NULL)"
    store_source = f"CASE WHEN {given_store} THEN {_v('$.properties.store_id')} ELSE {_v('$.context.store_id')} END"
    store_types = ("NULL", "VARCHAR", "BIGINT", "UBIGINT")
    channels = sorted(CHANNELS | set(SEGMENT_CHANNELS) | {"server"})
    channel = _v("$.context.channel")
    derived = (
        f"CASE WHEN {given_store} AND coalesce({_v('$.properties.store_id')}, '') <> '' THEN 'store' "
        f"WHEN {kind} = 'screen' OR {_t('$.context.device')} IS NOT NULL "
        f"OR {_t('$.context.app')} IS NOT NULL THEN 'app' ELSE 'web' END"
    )
    mapped = " ".join(f"WHEN {literal(k)} THEN {literal(c)}" for k, c in SEGMENT_CHANNELS.items())
    given = " ".join(f"WHEN {literal(c)} THEN {literal(c)}" for c in sorted(CHANNELS))
    time_text = _v("$.timestamp")
    timestamp = (
        f"make_timestamp(epoch_us(try_cast(CASE WHEN right({time_text}, 1) = 'Z' "
        f"OR substr({time_text}, -6, 1) IN ('+', '-') THEN {time_text} ELSE {time_text} || 'Z' END "
        "AS TIMESTAMPTZ)))"
    )
    identifiers = [_identifier(k) for k in ("email", "phone", "line_user_id", "member_card")]
    device_id = f"CASE WHEN {_t('$.context.device')} = 'OBJECT' THEN {_text_value('$.context.device.id')} END"
    with_properties = f"{kind} IN ('track', 'page', 'screen')"
    checks = [
        f"strlen(line) <= {MAX_EVENT_BYTES}",
        f"strlen(line) <= {DEPTH_LIMIT} OR strlen(line) - strlen(replace(replace(line, '{{', ''), "
        f"'[', '')) <= {DEPTH_LIMIT}",
        f"{_t('$')} = 'OBJECT'",
        f"{_t('$.type')} = 'VARCHAR' AND {kind} IN ('track', 'page', 'screen', 'identify')",
        "list_bool_and(list_transform(k, lambda keys: keys IS NULL OR len(keys) = list_unique(keys)))",
        _id_or_blank("$.messageId"),
        _id_or_blank("$.userId"),
        _id_or_blank("$.anonymousId"),
        f"coalesce({_id_value('$.userId')}, {_id_value('$.anonymousId')}) IS NOT NULL",
        f"{_t('$.timestamp')} = 'VARCHAR' AND regexp_matches({time_text}, {literal(TIME_FORM)})",
        "ts IS NOT NULL AND ts >= $earliest AND ts <= $latest",
        _absent("$.originalTimestamp", "NULL", "VARCHAR"),
        _absent("$.sentAt", "NULL", "VARCHAR"),
        _absent("$.groupId", "NULL", "VARCHAR"),
        _absent("$.previousId", "NULL", "VARCHAR"),
        _absent("$.context", "OBJECT"),
        _absent("$.integrations", "OBJECT"),
        _absent("$.context.traits", "NULL", "OBJECT"),
        f"CASE WHEN {with_properties} THEN {_absent('$.properties', 'OBJECT')} "
        f"ELSE {_absent('$.properties', 'NULL', 'OBJECT')} END",
        f"CASE WHEN {kind} = 'identify' THEN {_absent('$.traits', 'OBJECT')} "
        f"ELSE {_absent('$.traits', 'NULL', 'OBJECT')} END",
        f"CASE WHEN {kind} = 'track' THEN {_t('$.event')} = 'VARCHAR' AND {_v('$.event')} <> '' "
        f"AND length({_v('$.event')}) <= {NAME_LIMIT} ELSE true END",
        f"CASE WHEN {kind} IN ('page', 'screen') THEN {_name_ok('$.name')} ELSE true END",
        f"CASE WHEN {kind} = 'page' THEN {_name_ok('$.category')} ELSE true END",
        f"{_absent('$.context.channel', 'NULL')} OR ({_t('$.context.channel')} = 'VARCHAR' "
        f"AND {channel} IN ({', '.join(map(literal, channels))}))",
        f"CASE WHEN {given_store} THEN {_absent('$.properties.store_id', *store_types)} "
        f"ELSE {_absent('$.context.store_id', *store_types)} END",
        f"CASE WHEN {_t('$.context.device')} = 'OBJECT' THEN {_text_ok('$.context.device.id')} ELSE true END",
        *(ok for ok, _ in identifiers),
    ]
    fast = " AND ".join(f"({c})" for c in checks)
    return f"""
SELECT n, coalesce({fast}, false) AS fast,
       {_id_value("$.messageId")} AS message_id, {kind} AS type,
       CASE {kind} WHEN 'track' THEN {_v("$.event")} WHEN 'identify' THEN NULL ELSE {_v("$.name")} END AS event,
       {_id_value("$.userId")} AS user_id, {_id_value("$.anonymousId")} AS anonymous_id,
       CASE {channel} {given} {mapped} ELSE {derived} END AS channel,
       nullif({store_source}, '') AS store_id, ts AS timestamp, $received::TIMESTAMP AS received_at,
       $source AS source, {device_id} AS device_id,
       {", ".join(f"{value} AS {k}" for (_, value), k in zip(identifiers, ("email", "phone", "line_user_id", "member_card"), strict=True))},
       NULL::VARCHAR AS previous_id, line AS raw
FROM (
    SELECT *, {timestamp} AS ts FROM (
        SELECT n, line,
               json_type(line, [{", ".join(map(literal, _PATHS))}]) AS t,
               json_extract_string(line, [{", ".join(map(literal, _VALUES))}]) AS v,
               json_keys(line, [{", ".join(map(literal, _OBJECTS))}]) AS k
        FROM {{lines}}
    )
)
"""


_RULES = _sql()


def decide(
    cur: duckdb.DuckDBPyConnection, lines: pa.Table, *, received_at: datetime, source: str
) -> pa.Table:
    """For each of `lines` (n BIGINT, line VARCHAR: UTF-8 JSON as msgspec reads it), in their
    order: `n`, `fast` (decided here) and, where it is true, the row's columns
    (`normalize.COLUMNS`, `raw` the line). A message without a messageId gets
    `content_message_id`'s, made here."""
    received = received_at.astimezone(UTC).replace(tzinfo=None)
    cur.register("_jsonl_lines", lines)
    try:
        ruled = cur.sql(
            _RULES.replace("{lines}", "_jsonl_lines"),
            params={
                "received": received,
                "source": source,
                "earliest": EARLIEST.replace(tzinfo=None),
                "latest": received + FUTURE_SLACK,
            },
        ).to_arrow_table()
    finally:
        cur.unregister("_jsonl_lines")
    fast = ruled.column("fast").to_numpy(zero_copy_only=False)
    missing = np.flatnonzero(
        fast & ruled.column("message_id").is_null().to_numpy(zero_copy_only=False)
    )
    if not len(missing):
        return ruled
    ids: list[str | None] = []
    for line in ruled.column("raw").take(missing).to_pylist():
        try:
            ids.append(content_message_id(orjson.loads(line)))
        except orjson.JSONDecodeError:  # a number orjson cannot read: message_row refuses it
            ids.append(None)
    made = np.array([i is not None for i in ids])
    fast[missing[~made]] = False
    mask = np.zeros(len(fast), dtype=bool)
    mask[missing[made]] = True
    message_ids = pc.replace_with_mask(
        ruled.column("message_id").combine_chunks(),
        pa.array(mask),
        pa.array([i for i in ids if i is not None], pa.string()),
    )
    ruled = ruled.set_column(ruled.schema.get_field_index("message_id"), "message_id", message_ids)
    return ruled.set_column(ruled.schema.get_field_index("fast"), "fast", pa.array(fast))
