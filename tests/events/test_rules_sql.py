"""The JSONL import's rules in SQL (events/rules_sql.py) against `message_row`, the one rules
path: whatever line the SQL decides, it makes the row `message_row` makes; whatever line
`message_row` refuses, the SQL leaves to it. Rule by rule, on generated messages, and through
a whole import."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tests.events.test_message_rules import RULES, messages

from tsunagu.events.bulk import import_events
from tsunagu.events.normalize import COLUMNS, EventRow, message_row
from tsunagu.events.rules_sql import WHITE_SPACE, decide
from tsunagu.exceptions import TsunaguError
from tsunagu.store import Store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_DUCKDB = duckdb.connect()


def decided(lines: list[bytes]) -> list[tuple[Any, ...] | None]:
    """The SQL's row of each line (its columns in `COLUMNS` order), or None where it leaves the
    line to `message_row`."""
    table = pa.table(
        {
            "n": pa.array(range(len(lines)), pa.int64()),
            "line": pa.array([line + b"\n" for line in lines], pa.binary()).view(pa.string()),
        }
    )
    out = decide(_DUCKDB, table, received_at=NOW, source="s").to_pylist()
    assert [r["n"] for r in out] == list(range(len(lines)))
    return [tuple(r[c] for c in COLUMNS) if r["fast"] else None for r in out]


def python(line: bytes) -> EventRow | None:
    try:
        return message_row(line, received_at=NOW, source="s")
    except TsunaguError:
        return None


def assert_alike(line: bytes, sql: tuple[Any, ...] | None) -> None:
    expected = python(line)
    if sql is None:
        return  # left to message_row: whatever it says is the answer
    assert expected is not None, f"the SQL accepted what message_row refuses: {line!r}"
    assert sql[:-1] == tuple(expected)[:-1], line
    assert sql[-1].rstrip("\n") == line.decode()


def line_of(message: dict[str, Any] | str) -> bytes:
    if isinstance(message, str):
        return message.encode()
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


BASE: dict[str, Any] = {
    "type": "track",
    "event": "Product Viewed",
    "messageId": "m-1",
    "anonymousId": "a-1",
    "timestamp": "2026-03-01T09:00:00.250+09:00",
    "context": {"library": {"name": "analytics.js"}, "page": {"url": "https://shop.example.jp/"}},
    "properties": {"sku": "P1", "price": 2990},
}


def with_(**changes: Any) -> dict[str, Any]:
    message = {**BASE, **changes}
    return {k: v for k, v in message.items() if v is not DROP}


DROP = object()
ws = "　"  # U+3000, an ideographic space

# (what the line tests, the message, whether the SQL decides it)
CASES: list[tuple[str, dict[str, Any] | str, bool]] = [
    ("a typical track", BASE, True),
    (
        "a page with a name and a category",
        with_(type="page", event=DROP, name="トップ", category="c"),
        True,
    ),
    ("a screen is an app's", with_(type="screen", event=DROP, name="ホーム"), True),
    (
        "an identify with traits",
        with_(type="identify", event=DROP, userId="M1", traits={"email": "a@b.jp"}),
        True,
    ),
    ("no messageId: its id is a hash of it", with_(messageId=DROP), True),
    ("a blank messageId", with_(messageId=""), True),
    (
        "a number of 70 bits without a messageId",
        with_(messageId=DROP, properties={"n": 2**70}),
        True,
    ),
    (
        "a number past a double's range with a messageId",
        '{"type":"track","messageId":"m","userId":"u","event":"e","timestamp":"2026-03-01T00:00:00Z","properties":{"n":1e400}}',
        True,
    ),
    (
        "and without one: orjson cannot hash it",
        '{"type":"track","userId":"u","event":"e","timestamp":"2026-03-01T00:00:00Z","properties":{"n":1e400}}',
        False,
    ),
    ("a messageId of white space", with_(messageId="  "), False),
    ("a numeric messageId", with_(messageId=12), False),
    ("a messageId with white space", with_(messageId=" m-1"), False),
    ("a messageId ending in an ideographic space", with_(messageId="m-1" + ws), False),
    ("a blank userId is absent", with_(userId=""), True),
    ("a numeric userId", with_(userId=7), False),
    ("neither userId nor anonymousId", with_(anonymousId=DROP), False),
    ("an anonymousId of 1,025 characters", with_(anonymousId="a" * 1025), False),
    ("a type that is not one", with_(type="Track"), False),
    ("no type", with_(type=DROP), False),
    ("a group", with_(type="group", groupId="g1", traits={}), False),
    ("an alias", with_(type="alias", userId="u", previousId="a-1"), False),
    ("a time in UTC", with_(timestamp="2026-03-01T00:00:00Z"), True),
    ("a time without an offset is UTC", with_(timestamp="2026-03-01 10:00:00"), True),
    ("a time with micro-seconds", with_(timestamp="2026-03-01T10:00:00.123456-05:00"), True),
    ("a time with seven fraction digits", with_(timestamp="2026-03-01T10:00:00.1234567Z"), False),
    ("a day that does not exist", with_(timestamp="2026-02-30T10:00:00Z"), False),
    ("a date alone", with_(timestamp="2026-02-28"), False),
    ("a time before 1990", with_(timestamp="1989-12-31T23:59:59Z"), False),
    ("a time more than a day ahead", with_(timestamp="2026-03-03T00:00:00Z"), False),
    ("a Unix time", with_(timestamp=1772323200), False),
    ("no time: sentAt decides", with_(timestamp=DROP, sentAt="2026-03-01T00:00:00Z"), False),
    ("a sentAt that is an object", with_(sentAt={}), False),
    ("a channel in capitals", with_(context={"channel": "App"}), False),
    ("Segment's browser channel", with_(context={"channel": "browser"}), True),
    ("Segment's mobile channel", with_(context={"channel": "mobile"}), True),
    (
        "a server channel is decided by the message",
        with_(context={"channel": "server", "device": {}}),
        True,
    ),
    ("an empty channel", with_(context={"channel": ""}), False),
    ("a numeric channel", with_(context={"channel": 3}), False),
    ("a channel that is not one", with_(context={"channel": "fax"}), False),
    ("a device makes it an app's", with_(context={"device": {"id": "d-1"}}), True),
    ("a device that is not an object", with_(context={"device": "iPhone"}), True),
    ("a numeric device id", with_(context={"device": {"id": 1234}}), True),
    ("a device id with white space", with_(context={"device": {"id": "d-1 "}}), False),
    ("a device id that is a float", with_(context={"device": {"id": 1.5}}), False),
    ("a store's id makes it the store's", with_(properties={"store_id": "S001"}), True),
    ("a numeric store id", with_(properties={"store_id": 12}), True),
    ("an empty store id", with_(properties={"store_id": ""}), True),
    ("a store id that is true", with_(properties={"store_id": True}), False),
    ("a store id that is an object", with_(properties={"store_id": {"id": 1}}), False),
    ("context.store_id: the store without the channel", with_(context={"store_id": "S2"}), True),
    (
        "properties' null store_id wins",
        with_(properties={"store_id": None}, context={"store_id": "S2"}),
        True,
    ),
    (
        "traits win over context.traits",
        with_(
            type="identify",
            event=DROP,
            traits={"email": "t@x.jp"},
            context={"traits": {"email": "c@x.jp", "phone": "090"}},
        ),
        True,
    ),
    (
        "a null trait does not fall back",
        with_(
            type="identify",
            event=DROP,
            traits={"email": None},
            context={"traits": {"email": "c@x.jp"}},
        ),
        True,
    ),
    (
        "context.traits of a track",
        with_(context={"traits": {"member_card": 2000000000001, "line_user_id": "U1"}}),
        True,
    ),
    ("a trait that is true is absent", with_(context={"traits": {"email": True}}), True),
    ("a trait with white space", with_(context={"traits": {"email": " a@b.jp "}}), False),
    ("a trait that is a float", with_(context={"traits": {"phone": 9.0}}), False),
    ("context.traits that is a number", with_(context={"traits": 1}), False),
    ("a null properties on a track", with_(properties=None), False),
    (
        "a null properties on an identify",
        with_(type="identify", event=DROP, userId="u", properties=None),
        True,
    ),
    (
        "a null traits on an identify",
        with_(type="identify", event=DROP, userId="u", traits=None),
        False,
    ),
    ("traits that are text on a track", with_(traits="x"), False),
    ("an empty event", with_(event=""), False),
    ("an event of 256 characters", with_(event="注" * 256), True),
    ("an event of 257 characters", with_(event="注" * 257), False),
    ("an event that is a number", with_(event=5), False),
    ("a page name of 257 characters", with_(type="page", event=DROP, name="n" * 257), False),
    ("a page's category that is a number", with_(type="page", event=DROP, category=5), False),
    ("a track's category is not read", with_(category=5), True),
    ("integrations that are null", with_(integrations=None), False),
    ("a context that is null", with_(context=None), False),
    ("a groupId that is an object on a track", with_(groupId={}), False),
    (
        "a key given twice",
        '{"type":"track","type":"page","messageId":"m","userId":"u","event":"e","timestamp":"2026-03-01T00:00:00Z"}',
        False,
    ),
    (
        "a key given twice in the context",
        '{"type":"track","messageId":"m","userId":"u","event":"e","timestamp":"2026-03-01T00:00:00Z","context":{"channel":"web","channel":"app"}}',
        False,
    ),
    (
        "a key written with an escape",
        '{"\\u0074ype":"track","messageId":"m","userId":"u","event":"e","timestamp":"2026-03-01T00:00:00Z"}',
        True,
    ),
    (
        "text with escapes",
        '{"type":"track","messageId":"m\\u00e9","userId":"u\\n2","event":"\\u6ce8\\u6587","timestamp":"2026-03-01T00:00:00Z"}',
        True,
    ),
    ("a message over 32 KB", with_(properties={"note": "x" * 33_000}), False),
    (
        "a message nested 300 deep",
        with_(properties={"deep": json.loads("[" * 300 + "]" * 300)}),
        False,
    ),
    ("an array, not an object", '[{"type":"track"}]', False),
]


@pytest.mark.parametrize(("what", "message", "fast"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_is_the_same_in_sql(what: str, message: dict[str, Any] | str, fast: bool) -> None:
    line = line_of(message)
    (sql,) = decided([line])
    assert (sql is not None) == fast, what
    assert_alike(line, sql)


def test_white_space_is_what_python_strips() -> None:
    assert all(("x" + c).strip() == "x" for c in WHITE_SPACE)
    assert {c for c in map(chr, range(0x110000)) if c.isspace()} == set(WHITE_SPACE)


@settings(
    parent=RULES,
    max_examples=100,
    suppress_health_check=[*RULES.suppress_health_check, HealthCheck.data_too_large],
)
@given(st.lists(messages, min_size=1, max_size=25))  # one query a list: a query costs ~30 ms
def test_the_sql_makes_message_rows_rows_on_generated_messages(batch: list[dict[str, Any]]) -> None:
    # Each message as generated, and with an id and a time the SQL reads (the rest as odd as
    # it came), so that it decides many of them.
    plain = {"messageId": "g", "timestamp": "2026-03-01T09:00:00.5+09:00"}
    lines = [orjson.dumps(m) for m in batch] + [orjson.dumps({**m, **plain}) for m in batch]
    rows = decided(lines)
    for line, sql in zip(lines, rows, strict=True):
        assert_alike(line, sql)
    event("decided by the SQL: " + ("none" if not any(rows) else "some"))


def test_a_jsonl_import_stores_what_message_row_makes_in_the_files_order(tmp_path: Path) -> None:
    lines = [  # each its own messageId: which of two stored is not the point here
        line_of(m).replace(b'"messageId":"m', b'"messageId":"case-%d-m' % i)
        for i, (_, m, _) in enumerate(CASES)
    ]
    lines += [b"", b"   ", b"{not json", b'{"type":"track","userId":"u","event":"e",}', b"\xff\xfe"]
    lines += [line_of(with_(messageId=f"m-{i}", anonymousId=f"a-{i % 7}")) for i in range(50)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\n")
    with (
        Store(tmp_path / "imported.duckdb") as imported,
        Store(tmp_path / "one-by-one.duckdb") as one,
    ):
        result = import_events(store=imported, path=path)
        received = imported.scalar("SELECT min(received_at) FROM events").replace(tzinfo=UTC)
        rows, reasons = [], {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rows.append(message_row(line, received_at=received, source=f"import:{path.name}"))
            except TsunaguError as exc:
                reasons[number] = exc.message
        stored = one.insert_events(rows)
        query = f"SELECT {', '.join(COLUMNS)} FROM events ORDER BY rowid"
        assert imported.query(query) == one.query(query)
    assert (result.read, result.imported, result.rejected) == (
        len(rows) + len(reasons),
        stored,
        len(reasons),
    )
    with open(result.rejects_file or "", encoding="utf-8") as f:
        assert {int(r["row"]): r["reason"] for r in csv.DictReader(f)} == reasons
