"""The unified profile: a customer's identifiers, traits and what they did across channels.

A profile is read from the identity graph (`identity_nodes`), the member master and the
events of its identifiers. An event belongs to the profile of its user id, anonymous id or
device id; a message whose identifiers lie in two profiles (the refused links of a shared
tablet) counts for each of them here. First cut: traits come from the member master only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.identity.rules import TYPES, IdentityRules
from tsunagu.store import Store

ONLINE = ("web", "app")


@dataclass(slots=True)
class Profile:
    profile_id: str
    identifiers: dict[str, list[str]]
    traits: dict[str, Any] = field(default_factory=dict)
    computed: dict[str, Any] = field(default_factory=dict)


def lookup(*, store: Store, rules: IdentityRules, kind: str | None, value: str) -> str:
    """The profile id holding an identifier. Without `kind`, every type is tried."""
    if kind is not None and kind not in TYPES:
        raise InvalidInput(f"type: must be one of {', '.join(TYPES)}", field="type")
    if not value.strip():
        raise InvalidInput("value: required", field="value")
    kinds = [kind] if kind else sorted(TYPES, key=rules.rank)
    # Normalised in Python (rules.norm, held to the SQL macros by tests): a query per lookup
    # to normalise one value would cost more than the lookup.
    cur = store.prepared_cursor("SELECT 1")
    normalised = [(k, v) for k in kinds if (v := rules.norm(k, value))]
    rows: list[tuple[Any, ...]] = []
    for k, v in normalised:
        # Constants, not a join: DuckDB then skips every block whose min/max misses them
        # (identity_nodes is written sorted by type and value).
        rows = cur.execute(
            "SELECT profile_id FROM identity_nodes WHERE type = ? AND value = ?", [k, v]
        ).fetchall()
        if rows:
            break
    if not rows:
        where = f"{kind} {value!r}" if kind else repr(value)
        raise NotFound(f"no profile holds {where} (is the identity graph built?)", field="value")
    return str(rows[0][0])


def get_profile(*, store: Store, profile_id: str) -> Profile:
    """Identifiers, member traits and computed traits of one profile."""
    with store.transaction() as cur:
        rows = cur.execute(
            "SELECT type, list(value ORDER BY first_seen, value) FROM identity_nodes "
            "WHERE profile_id = ? GROUP BY type",
            [profile_id],
        ).fetchall()
        if not rows:
            raise NotFound(f"no profile {profile_id!r}", field="profile_id")
        identifiers = {t: list(v) for t, v in sorted(rows)}
        traits = _member_traits(cur, identifiers.get("user_id", []))
        computed = _computed(cur, identifiers)
    return Profile(profile_id, identifiers, traits, computed)


def _member_traits(cur: Any, member_ids: list[str]) -> dict[str, Any]:
    if not member_ids:
        return {}
    result = cur.execute(
        "SELECT * EXCLUDE (attributes) FROM members WHERE member_id IN (SELECT unnest(?::VARCHAR[])) "
        "ORDER BY updated_at DESC, registered_at DESC NULLS LAST LIMIT 1",
        [member_ids],
    )
    names = [d[0] for d in result.description]
    row = result.fetchall()
    if not row:
        return {}
    return {k: _plain(v) for k, v in zip(names, row[0], strict=True) if v is not None}


def _computed(cur: Any, identifiers: dict[str, list[str]]) -> dict[str, Any]:
    params = [
        identifiers.get("user_id", []),
        identifiers.get("anonymous_id", []),
        identifiers.get("device_id", []),
    ]
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _mine AS SELECT * FROM events WHERE "
        "user_id IN (SELECT unnest(?::VARCHAR[])) OR anonymous_id IN (SELECT unnest(?::VARCHAR[])) "
        "OR device_id IN (SELECT unnest(?::VARCHAR[]))",
        params,
    )
    (first, last, events, channels) = cur.execute(
        "SELECT min(timestamp), max(timestamp), count(*), list(DISTINCT channel ORDER BY channel) FROM _mine"
    ).fetchall()[0]
    orders = dict(
        (ch, (n, spend))
        for ch, n, spend in cur.execute(
            "SELECT CASE WHEN channel = 'store' THEN 'store' ELSE 'online' END, count(*), "
            "coalesce(sum(TRY_CAST(json_extract(raw, '$.properties.revenue') AS DOUBLE)), 0) "
            "FROM _mine WHERE event = 'Order Completed' GROUP BY 1"
        ).fetchall()
    )
    home = cur.execute(
        "SELECT store_id FROM _mine WHERE channel = 'store' AND store_id IS NOT NULL "
        "GROUP BY store_id ORDER BY count(*) DESC, store_id LIMIT 1"
    ).fetchall()
    last_visit = cur.execute(
        "SELECT max(timestamp) FROM _mine WHERE event = 'Store Visited' OR "
        "(channel = 'store' AND event = 'Order Completed')"
    ).fetchall()[0][0]
    cur.execute("DROP TABLE _mine")
    online_n, online_spend = orders.get("online", (0, 0))
    store_n, store_spend = orders.get("store", (0, 0))
    return {
        "first_seen": _plain(first),
        "last_seen": _plain(last),
        "events": events,
        "channels": list(channels or []),
        "orders_online": online_n,
        "spend_online": _money(online_spend),
        "orders_store": store_n,
        "spend_store": _money(store_spend),
        "home_store_id": home[0][0] if home else None,
        "last_store_visit": _plain(last_visit),
    }


def _money(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 2)


def _plain(value: Any) -> Any:
    """Times as ISO 8601 in UTC (`Z`); the rest as is."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@dataclass(slots=True)
class TimelinePage:
    profile_id: str
    items: list[dict[str, Any]]
    next_before: str | None
    """Pass as `before` for the next (older) page; None on the last page."""


def timeline(
    *,
    store: Store,
    profile_id: str,
    limit: int = 50,
    before: str | None = None,
    channel: str | None = None,
) -> TimelinePage:
    """The profile's events across channels, newest first, `limit` at a time.

    `before` is the cursor of the previous page (`TIMESTAMP|messageId`).
    """
    if not 1 <= limit <= 500:
        raise InvalidInput("limit: must be between 1 and 500", field="limit")
    cursor_ts, cursor_id = None, None
    if before:
        stamp, _, cursor_id = before.partition("|")
        try:
            cursor_ts = datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            raise InvalidInput(
                "before: not a cursor from a previous page", field="before"
            ) from None
    with store.transaction() as cur:
        ids = dict(
            cur.execute(
                "SELECT type, list(value) FROM identity_nodes WHERE profile_id = ? GROUP BY type",
                [profile_id],
            ).fetchall()
        )
        if not ids:
            raise NotFound(f"no profile {profile_id!r}", field="profile_id")
        rows = cur.execute(
            "SELECT timestamp, message_id, type, event, channel, store_id, "
            "json_extract(raw, '$.properties') FROM events WHERE "
            "(user_id IN (SELECT unnest(?::VARCHAR[])) OR anonymous_id IN (SELECT unnest(?::VARCHAR[])) "
            " OR device_id IN (SELECT unnest(?::VARCHAR[]))) "
            "AND (? IS NULL OR channel = ?) "
            "AND (?::TIMESTAMP IS NULL OR (timestamp, message_id) < (?::TIMESTAMP, ?)) "
            "ORDER BY timestamp DESC, message_id DESC LIMIT ?",
            [
                ids.get("user_id", []),
                ids.get("anonymous_id", []),
                ids.get("device_id", []),
                channel,
                channel,
                cursor_ts,
                cursor_ts,
                cursor_id,
                limit + 1,
            ],
        ).fetchall()
    items = [
        {
            "timestamp": _plain(ts),
            "message_id": mid,
            "type": kind,
            "event": event,
            "channel": ch,
            "store_id": store_id,
            "properties": json.loads(props) if props else {},
        }
        for ts, mid, kind, event, ch, store_id, props in rows[:limit]
    ]
    more = len(rows) > limit
    next_before = f"{items[-1]['timestamp']}|{items[-1]['message_id']}" if more and items else None
    return TimelinePage(profile_id, items, next_before)
