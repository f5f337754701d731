"""The unified profile: a customer's identifiers, traits and what they did across channels.

A profile is read from the identity graph (`identity_nodes`) and its precomputed row of
`profile_traits` (identity/traits.py: merged traits and cross-channel figures, recomputed by
identity build and update). An event belongs to the profile of its user id, anonymous id or
device id; a message whose identifiers lie in two profiles (the refused links of a shared
tablet) counts for each of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.identity.rules import TYPES, IdentityRules
from tsunagu.identity.traits import compute_traits, drop_temp
from tsunagu.store import Store


@dataclass(slots=True)
class Profile:
    profile_id: str
    identifiers: dict[str, list[str]]
    traits: dict[str, Any] = field(default_factory=dict)
    """Merged from the sources `IdentityRules.trait_sources` ranks (identity/traits.py)."""
    computed: dict[str, Any] = field(default_factory=dict)
    trait_sources: dict[str, str] = field(default_factory=dict)
    """Where each trait's value came from: `members` or an event channel."""
    records: list[dict[str, Any]] = field(default_factory=list)
    """Records of `identity match` files this profile holds (file, record id, probability)."""


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
        # Records `identity match` linked to no member hold their e-mail and phone themselves.
        for k, v in normalised:
            if k in ("email", "phone"):
                rows = cur.execute(
                    f"SELECT profile_id FROM identity_matches WHERE {k} = ? LIMIT 1", [v]
                ).fetchall()
                if rows:
                    break
    if not rows:
        where = f"{kind} {value!r}" if kind else repr(value)
        raise NotFound(f"no profile holds {where} (is the identity graph built?)", field="value")
    return str(rows[0][0])


def get_profile(*, store: Store, profile_id: str, rules: IdentityRules | None = None) -> Profile:
    """Identifiers, traits and computed traits of one profile: its row of `profile_traits`
    (identity/traits.py), one point query. A profile without a row (a graph built before
    traits were stored) has it computed from its events on the spot, with `rules` (default:
    the default rules)."""
    cur = store.prepared_cursor("SELECT 1")
    rows = cur.execute(_PROFILE, [profile_id]).fetchall()
    records, contacts = _records(cur, profile_id)
    if rows and rows[0][0] is not None:
        identifiers = _identifiers(rows[0][0])
        row: tuple[Any, ...] = rows[0][1:]
    elif records and not cur.execute(_IN_GRAPH, [profile_id]).fetchall():
        # Records `identity match` found no member for: their e-mails and phones are the
        # profile's identifiers; nothing happened in any channel yet.
        return Profile(profile_id, contacts, records=records)
    elif cur.execute(_ANY_TRAITS).fetchall():
        # Traits are stored for every profile of the graph: this id is none of them (and a
        # made-up id must not cost a pass over the events).
        raise NotFound(f"no profile {profile_id!r}", field="profile_id")
    else:
        identifiers, row = _computed_now(store, rules or IdentityRules(), profile_id)
    values = dict(zip(_COLUMNS, row, strict=True))
    traits = {k: v for k, v in json.loads(values.pop("traits")).items() if v is not None}
    sources = {k: v for k, v in json.loads(values.pop("trait_sources")).items() if k in traits}
    computed = {k: _plain(v) for k, v in values.items()}
    for key in ("spend_online", "spend_store"):
        computed[key] = _money(computed[key])
    computed["channels"] = list(computed["channels"])
    computed["favourite_categories"] = list(computed["favourite_categories"])
    return Profile(profile_id, identifiers, traits, computed, sources, records)


_IN_GRAPH = "SELECT 1 FROM identity_nodes WHERE profile_id = $1 LIMIT 1"
_ANY_TRAITS = "SELECT 1 FROM profile_traits LIMIT 1"
_RECORDS = (
    "SELECT file, record_id, match_probability, matched, email, phone FROM identity_matches "
    "WHERE profile_id = $1 ORDER BY file, record_id"
)


def _records(cur: Any, profile_id: str) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The profile's matched records, and the e-mails and phones they carry."""
    records: list[dict[str, Any]] = []
    contacts: dict[str, list[str]] = {}
    for file, record_id, p, matched, email, phone in cur.execute(_RECORDS, [profile_id]).fetchall():
        records.append(
            {"file": file, "record_id": record_id, "match_probability": p, "matched": matched}
        )
        for kind, value in (("email", email), ("phone", phone)):
            if value and value not in contacts.get(kind, []):
                contacts.setdefault(kind, []).append(value)
    return records, contacts


_COLUMNS = (
    "first_seen",
    "last_seen",
    "events",
    "channels",
    "orders_online",
    "spend_online",
    "orders_store",
    "spend_store",
    "home_store_id",
    "last_store_visit",
    "favourite_categories",
    "traits",
    "trait_sources",
)
# A point query: profile_traits is written sorted by profile id.
_PROFILE = f"SELECT identifiers, {', '.join(_COLUMNS)} FROM profile_traits WHERE profile_id = $1"


def _computed_now(
    store: Store, rules: IdentityRules, profile_id: str
) -> tuple[dict[str, list[str]], tuple[Any, ...]]:
    with store.transaction() as cur:
        cur.execute("CREATE OR REPLACE TEMP TABLE _t_scope AS SELECT ? AS profile_id", [profile_id])
        compute_traits(cur, rules, scope="_t_scope")
        rows = cur.execute(f"SELECT identifiers, {', '.join(_COLUMNS)} FROM _t_out").fetchall()
        drop_temp(cur)
        cur.execute("DROP TABLE _t_scope")
    if not rows:
        raise NotFound(f"no profile {profile_id!r}", field="profile_id")
    return _identifiers(rows[0][0]), rows[0][1:]


def _identifiers(stored: str) -> dict[str, list[str]]:
    """{type: values, first seen first} from the stored list of identifiers."""
    nodes = sorted(
        json.loads(stored),
        key=lambda n: (n["type"], n["first_seen"] is None, n["first_seen"] or 0, n["value"]),
    )
    identifiers: dict[str, list[str]] = {}
    for node in nodes:
        identifiers.setdefault(node["type"], []).append(node["value"])
    return identifiers


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
        # One scan per identifier type, then the page's rows by rowid: an OR of the three
        # scans the whole table, and its raw JSON, many times slower on a big store.
        keep = (
            "(? IS NULL OR channel = ?) "
            "AND (?::TIMESTAMP IS NULL OR (timestamp, message_id) < (?::TIMESTAMP, ?))"
        )
        hits = " UNION ".join(
            f"SELECT timestamp, message_id, rowid AS rid FROM events WHERE {column} = ANY(?) "
            f"AND {keep}"
            for column in ("user_id", "anonymous_id", "device_id")
        )
        rows = cur.execute(
            f"WITH hit AS (SELECT * FROM ({hits}) ORDER BY 1 DESC, 2 DESC LIMIT ?) "
            "SELECT timestamp, message_id, type, event, channel, store_id, "
            "json_extract(raw, '$.properties') FROM events WHERE rowid IN (SELECT rid FROM hit) "
            "ORDER BY timestamp DESC, message_id DESC",
            [
                *(
                    value
                    for ids_of in ("user_id", "anonymous_id", "device_id")
                    for value in (
                        ids.get(ids_of, []),
                        channel,
                        channel,
                        cursor_ts,
                        cursor_ts,
                        cursor_id,
                    )
                ),
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
