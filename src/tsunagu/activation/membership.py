"""Segments kept: their definitions, their members as of the last refresh, and every entry and
exit (`segment_changes`), so that who entered when can be asked later."""

from __future__ import annotations

import csv
import io
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import orjson
import pyarrow as pa

from tsunagu.activation import timeline
from tsunagu.activation.segments import SegmentDefinition, members_sql
from tsunagu.analytics.filters import parse
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store, utcnow


@dataclass(frozen=True, slots=True)
class Segment:
    segment_id: str
    name: str
    description: str | None
    definition: dict  # type: ignore[type-arg]
    created_at: datetime
    refreshed_at: datetime | None
    members: int


@dataclass(frozen=True, slots=True)
class Refresh:
    segment_id: str
    members: int
    entered: int
    exited: int
    seconds: float


def create_segment(
    *, store: Store, definition: SegmentDefinition, rules: IdentityRules | None = None
) -> tuple[Segment, Refresh]:
    """Keep the segment and fill it."""
    if store.scalar("SELECT count(*) FROM segments WHERE name = ?", [definition.name]):
        raise InvalidInput(
            f"name: a segment named {definition.name!r} exists already", field="name"
        )
    members_sql(definition.rule, store=store, as_of=utcnow())  # refuse a bad rule before keeping it
    segment_id = "seg_" + secrets.token_hex(6)
    body = definition.model_dump(mode="json", by_alias=True, exclude_none=True)
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO segments (segment_id, name, description, definition, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                segment_id,
                definition.name,
                definition.description,
                orjson.dumps(body).decode(),
                utcnow(),
            ],
        )
    done = refresh_segment(store=store, segment_id=segment_id, rules=rules)
    return get_segment(store=store, segment_id=segment_id), done


def refresh_segment(
    *,
    store: Store,
    segment_id: str,
    as_of: datetime | None = None,
    rules: IdentityRules | None = None,
    only: Sequence[str] | None = None,
    events_to: datetime | None = None,
) -> Refresh:
    """Members as the rule says now: those new entered, those gone exited (both kept).

    With `only`, just those customers are looked at again (the customers whose events arrived:
    the refresher's incremental pass); `events_to` records how far the events were read."""
    started = time.perf_counter()
    segment = get_segment(store=store, segment_id=segment_id)
    segment_id = segment.segment_id  # (it may have been asked for by name)
    rules = rules or IdentityRules()
    definition = parse(SegmentDefinition, segment.definition)
    now = utcnow()
    sql = members_sql(definition.rule, store=store, as_of=(as_of or now).replace(tzinfo=None),
                      scope=None if only is None else "_only")  # fmt: skip
    within = "" if only is None else " WHERE profile_id IN (SELECT profile_id FROM _only)"
    with store.transaction() as cur:
        if only is not None:
            cur.register("_only", pa.table({"profile_id": pa.array(list(only), pa.string())}))
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _now AS SELECT DISTINCT profile_id FROM ({sql}){within}"
        )
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _was AS SELECT profile_id FROM segment_members "
            "WHERE segment_id = ?" + within.replace(" WHERE ", " AND "),
            [segment_id],
        )
        # Who entered and who left, once; the changes, the members and the events follow.
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _moved AS "
            "SELECT 'entered' AS change, profile_id FROM "
            "(SELECT profile_id FROM _now EXCEPT SELECT profile_id FROM _was) "
            "UNION ALL SELECT 'exited', profile_id FROM "
            "(SELECT profile_id FROM _was EXCEPT SELECT profile_id FROM _now)"
        )
        cur.execute(
            "INSERT INTO segment_changes SELECT ?, profile_id, change, ? FROM _moved",
            [segment_id, now],
        )
        cur.execute(
            "DELETE FROM segment_members WHERE segment_id = ? AND profile_id IN "
            "(SELECT profile_id FROM _moved WHERE change = 'exited')",
            [segment_id],
        )
        cur.execute(
            "INSERT INTO segment_members SELECT ?, profile_id, ? FROM _moved "
            "WHERE change = 'entered'",
            [segment_id, now],
        )
        moved = cur.execute("SELECT change, profile_id FROM _moved").fetchall()
        (members,) = cur.execute(
            "SELECT count(*) FROM segment_members WHERE segment_id = ?", [segment_id]
        ).fetchone()  # type: ignore[misc]
        cur.execute(
            "UPDATE segments SET members = ?, events_to = coalesce(?, events_to), "
            "refreshed_at = CASE WHEN ? THEN refreshed_at ELSE ? END WHERE segment_id = ?",
            [members, events_to, only is not None, now, segment_id],
        )
        for table in ("_now", "_was", "_moved"):
            cur.execute(f"DROP TABLE {table}")
        if only is not None:
            cur.unregister("_only")
        _record(store, cur, segment, moved, now, rules)
    return Refresh(
        segment_id=segment_id,
        members=int(members),
        entered=sum(change == "entered" for change, _ in moved),
        exited=sum(change == "exited" for change, _ in moved),
        seconds=round(time.perf_counter() - started, 4),
    )


def _record(
    store: Store,
    cur: duckdb.DuckDBPyConnection,
    segment: Segment,
    moved: list[tuple[str, str]],
    now: datetime,
    rules: IdentityRules,
) -> None:
    """ "Segment Entered" / "Segment Exited" events for those who moved, in the refresh's own
    commit (analytics leaves them out: they are tsunagu's doing, not the customer's)."""
    stamp = now.strftime("%Y%m%dT%H%M%S%f")
    properties = {"segment_id": segment.segment_id, "segment_name": segment.name}
    who = timeline.identifiers_of(store, [profile_id for _, profile_id in moved], rules)
    timeline.write(
        store,
        cur,
        [
            (
                profile_id,
                "Segment Entered" if change == "entered" else "Segment Exited",
                {
                    "messageId": f"segment-{segment.segment_id}-{profile_id}-{change}-{stamp}",
                    "properties": properties,
                },
            )
            for change, profile_id in moved
        ],
        now,
        who,
        fresh=True,  # the refresh's stamp makes each messageId new
    )


_COLUMNS = "segment_id, name, description, definition, created_at, refreshed_at, members"


def _segment(row: tuple) -> Segment:  # type: ignore[type-arg]
    segment_id, name, description, definition, created, refreshed, members = row
    return Segment(
        segment_id, name, description, orjson.loads(definition), created, refreshed, members
    )


def get_segment(*, store: Store, segment_id: str) -> Segment:
    rows = store.query(
        f"SELECT {_COLUMNS} FROM segments WHERE segment_id = ? OR name = ?",
        [segment_id, segment_id],
    )
    if not rows:
        raise NotFound(f"segment: no segment {segment_id!r}", field="segment_id")
    return _segment(rows[0])


def list_segments(*, store: Store) -> list[Segment]:
    return [_segment(r) for r in store.query(f"SELECT {_COLUMNS} FROM segments ORDER BY name")]


MEMBER_COLUMNS = ("profile_id", "member_id", "email", "line_user_id", "entered_at")


def segment_members(
    *, store: Store, segment_id: str, limit: int | None = None, offset: int = 0
) -> list[dict[str, object]]:
    """The members, with the identifiers a campaign tool needs and when each entered."""
    if limit is not None and limit < 1:
        raise InvalidInput("limit: must be at least 1", field="limit")
    if offset < 0:
        raise InvalidInput("offset: must not be negative", field="offset")
    segment = get_segment(store=store, segment_id=segment_id)
    page = (f" LIMIT {int(limit)}" if limit is not None else "") + f" OFFSET {int(offset)}"
    rows = store.query(
        "SELECT m.profile_id, json_extract_string(p.traits, '$.member_id'), "
        "json_extract_string(p.traits, '$.email'), json_extract_string(p.traits, '$.line_user_id'), "
        "m.entered_at FROM segment_members m LEFT JOIN profile_traits p USING (profile_id) "
        f"WHERE m.segment_id = ? ORDER BY m.profile_id{page}",
        [segment.segment_id],
    )
    return [dict(zip(MEMBER_COLUMNS, r, strict=True)) for r in rows]


def members_csv(rows: list[dict[str, object]]) -> str:
    """The members as CSV, for a campaign tool or a print house."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=MEMBER_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
