"""The events as analytics reads them: one row per customer action, with its customer.

Every analysis counts customers (resolved profiles), not devices, and walks a customer's
events in order. Joining ten million events to the identity graph on every query would cost
seconds, so `analytics_events` keeps them joined: one row per track / page / screen message
(identify, alias and group calls are not actions), with

- `pid`, the customer: a number for the profile of the event's highest-priority identifier (the
  identity rules' order, user id first), or, for an identifier the graph has not seen yet (an
  event after the last identity build), a customer of its own until the next build;
- `analytics_profiles.identified`: false for a customer known only by a receipt (a till sale
  without a member card is a one-off, anonymous buyer: `identity` cannot tell who returns), so
  that models of returning customers (LTV) leave them out;
- `seq`, the order of arrival, and `r`, the event's position in its customer's history ordered
  by (`ts`, `seq`); `instant`, the place of its moment among the customer's moments (events at
  the same instant share it: funnels read them in any order, paths in the order they arrived);
- `day`, the local calendar day (settings' time zone) that retention and KPIs group by;
- the values analyses filter on as columns: `sku` and `category` of product events (the
  category from the products table, else the event's), `skus` and `categories` of the line items
  of orders, carts and refunds, `revenue` (`properties.revenue`, else `total`: JPY, or with
  cents in a file of another currency), `order_id`,
  the page or screen `name`, where the device was (`lat`, `lon` of `context.location`: a
  store's beacon or the app's GPS), and `properties` for any other filter.

Freshness: the table remembers the identity graph's change stamps and the last commit stamp of
the events it holds. `ensure_fresh` rebuilds it when the graph was rebuilt (a build or a split
can move an identifier out of a profile; erasure deletes events); follows merges when the graph
was only updated (each customer is known by one of its identifiers, `anchor_*`: where that
identifier's profile is now another, the customer's events move there, `merge_profiles`); and
appends new events, renumbering the histories of the customers they belong to. Identity build
and update bring it up to date themselves, so the first query after them does not pay for it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tsunagu.analytics.engine import Engine
from tsunagu.events.model import SYSTEM_EVENTS
from tsunagu.identity.rules import IdentityRules, load_rules
from tsunagu.store import Store, count
from tsunagu.store.sql import literal

ACTION_TYPES = ("track", "page", "screen")
PAGE_EVENTS = {"page": "Page Viewed", "screen": "Screen Viewed"}
"""Page and screen calls are analysed as events of these names (their `name` is a column)."""
LINE_ITEM_EVENTS = ("Order Completed", "Order Refunded", "Cart Viewed", "Checkout Started")

_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Refresh:
    kind: str
    """"rebuilt", "appended" or "fresh" (nothing to do)."""
    events: int
    seconds: float


def graph_stamps(cur: duckdb.DuckDBPyConnection) -> tuple[str | None, str | None]:
    """(last change of the graph, last change that was more than merges)."""
    state = dict(
        cur.execute(
            "SELECT key, value FROM identity_state WHERE key IN ('changed_at', 'reshaped_at')"
        ).fetchall()
    )
    return state.get("changed_at"), state.get("reshaped_at")


def ensure_fresh(*, store: Store, rules: IdentityRules, timezone: str) -> Refresh:
    """Bring `analytics_events` up to date with the events and the identity graph."""
    with _lock:
        cur = store.cursor()
        try:
            state = dict(cur.execute("SELECT key, value FROM analytics_state").fetchall())
            ((events_to,),) = cur.execute("SELECT max(stored_at)::VARCHAR FROM events").fetchall()
            changed, reshaped = graph_stamps(cur)
        finally:
            cur.close()
        started = time.perf_counter()
        if (
            "events_to" not in state
            or not state["events_to"]  # built before any event: nothing to append to
            or state.get("reshaped") != (reshaped or "")
            or state.get("timezone") != timezone
        ):
            with store.transaction() as tx:
                n = rebuild(tx, rules, timezone=timezone)
            return Refresh("rebuilt", n, time.perf_counter() - started)
        if state.get("graph") != (changed or ""):
            # Profiles merged since: their customers' histories are merged, not rebuilt.
            with store.transaction() as tx:
                merge_profiles(tx)
                n = append(tx, rules, timezone=timezone, since=state["events_to"])
            return Refresh("merged", n, time.perf_counter() - started)
        if events_to is not None and events_to != state["events_to"]:
            with store.transaction() as tx:
                n = append(tx, rules, timezone=timezone, since=state["events_to"])
            return Refresh("appended", n, time.perf_counter() - started)
        return Refresh("fresh", 0, 0.0)


def merge_profiles(cur: duckdb.DuckDBPyConnection) -> int:
    """Follow merges of the identity graph: each customer is known by one of its identifiers
    (`analytics_profiles.anchor_*`); where that identifier's profile is now another, the
    customer's events move to the customer of that profile (or the customer takes its name)
    and the histories are renumbered. Returns how many customers moved."""
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _remap AS SELECT ap.pid, n.profile_id AS new_key "
        "FROM analytics_profiles ap JOIN identity_nodes n "
        "ON n.type = ap.anchor_type AND n.value = ap.anchor_value WHERE n.profile_id <> ap.profile_id"
    )
    if not count(cur, "SELECT count(*) FROM _remap"):
        cur.execute("DROP TABLE _remap")
        return 0
    # Each new profile's customer: the one already named so, else the first that moves there.
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _target AS SELECT r.new_key, "
        "coalesce(any_value(ap.pid), min(r.pid)) AS target FROM _remap r "
        "LEFT JOIN analytics_profiles ap ON ap.profile_id = r.new_key GROUP BY r.new_key"
    )
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _moves AS SELECT r.pid AS source, t.target, t.new_key "
        "FROM _remap r JOIN _target t USING (new_key)"
    )
    moved = count(cur, "SELECT count(*) FROM _moves WHERE source <> target")
    cur.execute(
        "UPDATE analytics_profiles SET profile_id = t.new_key, identified = m.identified "
        "FROM _target t, (SELECT m.target, bool_or(ap.identified) AS identified FROM _moves m "
        " JOIN analytics_profiles ap ON ap.pid = m.source OR ap.pid = m.target GROUP BY m.target) m "
        "WHERE analytics_profiles.pid = t.target AND m.target = t.target"
    )
    cur.execute(
        "DELETE FROM analytics_profiles WHERE pid IN (SELECT source FROM _moves WHERE source <> target)"
    )
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _a_redo AS SELECT coalesce(m.target, e.pid) AS pid, "
        "e.* EXCLUDE (pid, r, instant) FROM analytics_events e LEFT JOIN _moves m ON m.source = e.pid "
        "WHERE e.pid IN (SELECT source FROM _moves UNION SELECT target FROM _moves)"
    )
    cur.execute(
        "DELETE FROM analytics_events WHERE pid IN (SELECT source FROM _moves UNION "
        "SELECT target FROM _moves)"
    )
    cur.execute(
        f"INSERT INTO analytics_events BY NAME SELECT {_numbered('pid')} FROM _a_redo "
        "ORDER BY pid, r"
    )
    for table in ("_remap", "_target", "_moves", "_a_redo"):
        cur.execute(f"DROP TABLE {table}")
    return moved


def rebuild(cur: duckdb.DuckDBPyConnection, rules: IdentityRules, *, timezone: str) -> int:
    """Replace `analytics_events` from every event; runs in the caller's transaction."""
    cur.execute(rules.macros())
    _rows(cur, rules, since=None, timezone=timezone)
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _a_keys AS "
        "SELECT key, (row_number() OVER (ORDER BY key))::BIGINT AS pid, identified, "
        "anchor[1] AS anchor_type, anchor[2] AS anchor_value FROM "
        "(SELECT key, NOT bool_and(walk_in) AS identified, min([id_type, id_value]) AS anchor "
        " FROM _a_rows GROUP BY key)"
    )
    cur.execute("DELETE FROM analytics_profiles")
    cur.execute(
        "INSERT INTO analytics_profiles (pid, profile_id, identified, anchor_type, anchor_value) "
        "SELECT pid, key, identified, anchor_type, anchor_value FROM _a_keys"
    )
    # Positions from the narrow columns alone, then joined to the rest (a window over every
    # event's JSON would cost more than the join). The table is replaced rather than emptied,
    # and written in (pid, r) order: a customer's events sit together, as the funnel walk reads
    # them (analytics/walk.py), and DuckDB's min/max per block skips the rest.
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _a_pos AS SELECT a.seq, k.pid, "
        "(row_number() OVER (PARTITION BY k.pid ORDER BY a.ts, a.seq))::BIGINT AS r, "
        "(dense_rank() OVER (PARTITION BY k.pid ORDER BY a.ts))::BIGINT AS instant "
        "FROM _a_rows a JOIN _a_keys k USING (key)"
    )
    cur.execute(
        f"CREATE OR REPLACE TABLE analytics_events AS SELECT {_COLUMNS} "
        "FROM _a_rows JOIN _a_pos USING (seq) ORDER BY pid, r"
    )
    cur.execute("DROP TABLE _a_pos")
    n = count(cur, "SELECT count(*) FROM analytics_events")
    _finish(cur, timezone=timezone)
    return n


def append(
    cur: duckdb.DuckDBPyConnection, rules: IdentityRules, *, timezone: str, since: str
) -> int:
    """Add events committed after `since`; the histories of their customers are renumbered."""
    cur.execute(rules.macros())
    _rows(cur, rules, since=since, timezone=timezone)
    n = count(cur, "SELECT count(*) FROM _a_rows")
    if n:
        cur.execute(
            "UPDATE analytics_profiles SET identified = true WHERE NOT identified AND "
            "profile_id IN (SELECT key FROM _a_rows WHERE NOT walk_in)"
        )
        cur.execute(
            "INSERT INTO analytics_profiles (pid, profile_id, identified, anchor_type, "
            "anchor_value) SELECT (SELECT coalesce(max(pid), 0) FROM analytics_profiles) + "
            "row_number() OVER (ORDER BY key), key, identified, anchor[1], anchor[2] FROM ("
            " SELECT key, NOT bool_and(walk_in) AS identified, min([id_type, id_value]) AS anchor "
            " FROM _a_rows WHERE key NOT IN (SELECT profile_id FROM analytics_profiles) "
            " GROUP BY key)"
        )
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _a_new AS SELECT p.pid, "
            "a.* EXCLUDE (key, walk_in, id_type, id_value) "
            "FROM _a_rows a JOIN analytics_profiles p ON p.profile_id = a.key"
        )
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _a_redo AS "
            "SELECT * EXCLUDE (r, instant) FROM analytics_events WHERE pid IN (SELECT pid FROM _a_new) "
            "UNION ALL BY NAME SELECT * FROM _a_new"
        )
        cur.execute("DELETE FROM analytics_events WHERE pid IN (SELECT pid FROM _a_new)")
        cur.execute(
            f"INSERT INTO analytics_events BY NAME SELECT {_numbered('pid')} FROM _a_redo "
            "ORDER BY pid, r"
        )
        for table in ("_a_new", "_a_redo"):
            cur.execute(f"DROP TABLE {table}")
    _finish(cur, timezone=timezone)
    return n


_COLUMNS = (
    "pid, r, instant, seq, ts, day, type, event, channel, store_id, sku, category, skus, categories, "
    "revenue, order_id, name, lat, lon, properties"
)


def _numbered(pid: str) -> str:
    return _COLUMNS.replace(
        "pid, r, instant,",
        f"{pid} AS pid, (row_number() OVER (PARTITION BY {pid} ORDER BY ts, seq))::BIGINT AS r, "
        f"(dense_rank() OVER (PARTITION BY {pid} ORDER BY ts))::BIGINT AS instant,",
    )


def _finish(cur: duckdb.DuckDBPyConnection, *, timezone: str) -> None:
    ((events_to,),) = cur.execute("SELECT max(stored_at)::VARCHAR FROM events").fetchall()
    changed, reshaped = graph_stamps(cur)
    for key, value in (
        ("events_to", events_to or ""),
        ("graph", changed or ""),
        ("reshaped", reshaped or ""),
        ("timezone", timezone),
    ):
        cur.execute("DELETE FROM analytics_state WHERE key = ?", [key])
        cur.execute("INSERT INTO analytics_state VALUES (?, ?)", [key, value])
    for table in ("_a_rows", "_a_keys"):
        cur.execute(f"DROP TABLE IF EXISTS {table}")


def _rows(
    cur: duckdb.DuckDBPyConnection, rules: IdentityRules, *, since: str | None, timezone: str
) -> None:
    """`_a_rows`: the actions among the events (all, or those committed after `since`), each
    with its customer's key and the columns analyses filter on."""
    # The highest-priority identifier the message carries, normalised once (the regular
    # expressions of tg_norm are most of the cost). A message whose first identifier is blocked
    # (a "test" e-mail) tries the rest, in order, afterwards: there are few of those.
    first = "CASE " + " ".join(f"WHEN {k} IS NOT NULL THEN '{k}'" for k in rules.priority) + " END"
    raw_value = "CASE id_type " + " ".join(f"WHEN '{k}' THEN {k}" for k in rules.priority) + " END"
    where = "type IN (" + ", ".join(literal(t) for t in ACTION_TYPES) + ")"
    where += " AND (event IS NULL OR event NOT IN (" + ", ".join(map(literal, SYSTEM_EVENTS)) + "))"
    if since is not None:
        where += f" AND stored_at > CAST({literal(since)} AS TIMESTAMP)"
        seq = "(SELECT coalesce(max(seq), 0) FROM analytics_events) + rid + 1"
    else:
        seq = "rid"
    page_names = " ".join(f"WHEN {literal(t)} THEN {literal(n)}" for t, n in PAGE_EVENTS.items())
    items = "event IN (" + ", ".join(literal(e) for e in LINE_ITEM_EVENTS) + ")"
    # `seq`: rowid grows with every insert, so it is the order of arrival.
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _a_src AS "
        f"SELECT *, tg_norm(id_type, {raw_value}) AS id_value FROM ("
        f" SELECT {seq} AS seq, timestamp AS ts, type, "
        f" CASE type {page_names} ELSE event END AS event, channel, "
        " coalesce(store_id, json_extract_string(properties, '$.store_id')) AS store_id, "
        f" {first} AS id_type, {', '.join(rules.priority)}, "
        " CASE WHEN type <> 'track' THEN coalesce(top[1], event) END AS name, "
        " TRY_CAST(top[2] AS DOUBLE) AS lat, TRY_CAST(top[3] AS DOUBLE) AS lon, properties FROM ("
        f"  SELECT *, rowid AS rid, json_extract(raw, '$.properties') AS properties, "
        "   json_extract_string(raw, ['$.name', '$.context.location.latitude', "
        "   '$.context.location.longitude']) AS top FROM events "
        f"  WHERE {where}))"
    )
    blocked = "id_value IS NULL AND id_type IS NOT NULL"
    if count(cur, f"SELECT count(*) FROM _a_src WHERE {blocked}"):
        normalised = [(k, f"tg_norm('{k}', {k})") for k in rules.priority]
        cur.execute(
            "UPDATE _a_src SET id_type = CASE "
            + " ".join(f"WHEN {v} IS NOT NULL THEN {literal(k)}" for k, v in normalised)
            + f" END, id_value = coalesce({', '.join(v for _, v in normalised)}) WHERE {blocked}"
        )
    cur.execute(f"ALTER TABLE _a_src DROP COLUMN {rules.priority[0]}")
    for kind in rules.priority[1:]:
        cur.execute(f"ALTER TABLE _a_src DROP COLUMN {kind}")
    local_day = f"CAST(timezone({literal(timezone)}, ts::TIMESTAMP AT TIME ZONE 'UTC') AS DATE)"
    # A line item's category: the products table's, else the one the event names.
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _a_items AS "
        "SELECT seq, list(item_sku ORDER BY i) FILTER (WHERE item_sku IS NOT NULL) AS skus, "
        "list_sort(list(DISTINCT coalesce(p.category, item_category)) "
        "FILTER (WHERE coalesce(p.category, item_category) IS NOT NULL)) AS categories FROM ("
        "  SELECT seq, i, coalesce(json_extract_string(item, '$.sku'), "
        "    json_extract_string(item, '$.product_id')) AS item_sku, "
        "    json_extract_string(item, '$.category') AS item_category FROM ("
        "    SELECT seq, unnest(items) AS item, generate_subscripts(items, 1) AS i FROM ("
        "     SELECT seq, json_extract(properties, '$.products[*]') AS items "
        f"    FROM _a_src WHERE {items}))"
        ") LEFT JOIN products p ON p.sku = item_sku GROUP BY seq"
    )
    # The properties' values read by one parse of each message's JSON: x[1] sku, x[2]
    # product_id, x[3] category, x[4] revenue, x[5] total, x[6] order_id.
    paths = "['$.sku', '$.product_id', '$.category', '$.revenue', '$.total', '$.order_id']"
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _a_rows AS SELECT "
        "coalesce(n.profile_id, a.id_type || ':' || a.id_value) AS key, "
        "(a.id_type = 'anonymous_id' AND starts_with(a.id_value, 'receipt:')) AS walk_in, "
        "a.id_type, a.id_value, "
        "a.seq, a.ts, "
        f"{local_day} AS day, a.type, a.event, a.channel, a.store_id, a.sku, "
        "coalesce(p.category, a.x[3]) AS category, i.skus, i.categories, "
        "coalesce(TRY_CAST(a.x[4] AS DOUBLE), TRY_CAST(a.x[5] AS DOUBLE)) "
        "AS revenue, a.x[6] AS order_id, a.name, a.lat, a.lon, a.properties "
        "FROM (SELECT *, coalesce(x[1], x[2]) AS sku FROM ("
        f"      SELECT *, json_extract_string(properties, {paths}) AS x FROM _a_src)) a "
        "LEFT JOIN identity_nodes n ON n.type = a.id_type AND n.value = a.id_value "
        "LEFT JOIN products p ON p.sku = a.sku "
        "LEFT JOIN _a_items i ON i.seq = a.seq "
        "WHERE a.id_value IS NOT NULL"
    )
    for table in ("_a_src", "_a_items"):
        cur.execute(f"DROP TABLE {table}")


def fresh_engine(*, store: Store, data_dir: Path, timezone: str) -> Engine:
    """An engine over `store` whose analytics table is up to date (what every shell calls)."""
    ensure_fresh(store=store, rules=load_rules(data_dir), timezone=timezone)
    return Engine(store)
