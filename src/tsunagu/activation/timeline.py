"""Events tsunagu writes on profiles' timelines (a segment entered, a coupon issued), each by
one identifier the profile holds, so that the timeline and analytics find them as they find the
customer's own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from tsunagu.events.normalize import EventRow, normalize
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store

_FIELDS = {"user_id": "userId", "anonymous_id": "anonymousId"}
_COLUMNS = ("user_id", "anonymous_id", "device_id")


def identifiers_of(
    store: Store, profile_ids: Sequence[str], rules: IdentityRules
) -> dict[str, tuple[str, str]]:
    """Each profile's first identifier by the rules' priority, one the event's own columns hold
    (user, anonymous or device id: what timelines read) before any other:
    {profile_id: (type, value)}."""
    if not profile_ids:
        return {}
    order = sorted(rules.priority, key=lambda t: t not in _COLUMNS)
    rank = " ".join(f"WHEN '{t}' THEN {n}" for n, t in enumerate(order))
    few = len(profile_ids) <= 100  # a till's one customer: no Arrow table to register
    who = "SELECT unnest(?::VARCHAR[])" if few else "SELECT profile_id FROM _who"
    cur = store.cursor()
    try:
        if not few:
            cur.register("_who", pa.table({"profile_id": pa.array(list(profile_ids), pa.string())}))
        rows = cur.execute(
            f"SELECT profile_id, arg_min([type, value], CASE type {rank} END) FROM identity_nodes "
            f"WHERE profile_id IN ({who}) GROUP BY profile_id",
            [list(profile_ids)] if few else None,
        ).fetchall()
    finally:
        cur.close()
    return {pid: (kind, value) for pid, (kind, value) in rows}


def message(
    profile_id: str, identifier: tuple[str, str] | None, event: str, **fields: Any
) -> dict[str, Any]:
    """A track message of `event` for the profile (Segment's spec wants a user or anonymous
    id: a profile known by another identifier gets one of its own as well)."""
    msg: dict[str, Any] = {"type": "track", "event": event, **fields}
    kind, value = identifier or ("anonymous_id", f"tsunagu:{profile_id}")
    if kind in _FIELDS:
        msg[_FIELDS[kind]] = value
        return msg
    msg["anonymousId"] = f"tsunagu:{profile_id}"
    context = dict(msg.get("context") or {})
    if kind == "device_id":
        context["device"] = {"id": value}
    else:
        context["traits"] = {kind: value}
    msg["context"] = context
    return msg


def record(
    store: Store,
    entries: Sequence[tuple[str, str, dict[str, Any]]],
    at: datetime,
    rules: IdentityRules,
) -> int:
    """Store an event at `at` for each (profile id, event, message fields), by the profile's
    first identifier (source `tsunagu`); how many were new."""
    if not entries:
        return 0
    return store.insert_events(rows(store, entries, at, rules))


def rows(
    store: Store,
    entries: Sequence[tuple[str, str, dict[str, Any]]],
    at: datetime,
    rules: IdentityRules,
) -> list[EventRow]:
    """The events `record` stores, for a caller that writes them in its own transaction."""
    return events(entries, at, identifiers_of(store, [p for p, _, _ in entries], rules))


def write(
    store: Store,
    cur: duckdb.DuckDBPyConnection,
    entries: Sequence[tuple[str, str, dict[str, Any]]],
    at: datetime,
    who: dict[str, tuple[str, str]],
    *,
    fresh: bool = False,
) -> int:
    """`record`, inside the caller's write transaction `cur`, given the profiles' identifiers
    (`identifiers_of`); `fresh` as for `Store.add_events`."""
    return store.add_events(cur, events(entries, at, who), fresh=fresh)


def events(
    entries: Sequence[tuple[str, str, dict[str, Any]]],
    at: datetime,
    who: dict[str, tuple[str, str]],
) -> list[EventRow]:
    """`rows`, given the profiles' identifiers (`identifiers_of`)."""
    stamp = at.isoformat() + "Z"
    return [
        normalize(
            message(profile_id, who.get(profile_id), event, timestamp=stamp, **fields),
            received_at=at,
            source="tsunagu",
        )
        for profile_id, event, fields in entries
    ]
