"""A profile's traits, precomputed: one row per profile in `profile_traits`, so that reading a
profile (the POS, the store-staff screen) is a point query instead of a scan of its events.

One set-based pass over the events: each event is joined to the profiles of its user id,
anonymous id and device id (as the identity graph normalised them) and counts for each of
them, as `profiles.py` always counted it (a message from a shared tablet whose identifiers lie
in two profiles counts for both). From that pass come the computed traits: first and last
seen, events, channels used, orders and spend online and in store (`properties.revenue`, else
`properties.total`, of "Order Completed"), home store (most store events), last store visit
("Store Visited", or an order in store) and favourite categories (the top three by line items
bought, weighted `PURCHASE_WEIGHT`, plus products viewed; the category comes from the
products table, else from the event).

Traits (name, e-mail, birth date, ...) are merged from sources in the order
`IdentityRules.trait_sources` gives, most trusted first: the member master (`members`), then
event channels (`store` for the POS, ...). A key takes its value from the most trusted source
that has it; within one source (or one group of sources of equal rank) the latest value wins.
From the member master the latest-updated member record of the profile counts (a profile holds
one member id unless the limits say otherwise). From events: the `traits` and `context.traits`
of identify calls, and the identifiers other messages carry in `context.traits` (e-mail, phone,
LINE id, member card, which the events table holds as columns: reading every message's JSON
to look for other traits would cost more than the rest of the pass). A message's traits
belong to the profile of its highest-priority identifier only, the person it names.
`birthday` (the Segment spec's name) is read as `birth_date` (the member master's).

Cost on the 1M-customer sample (9.8M events, 2 cores): 27-30 s of a 46-50 s identity build;
an update recomputes only the profiles its new records touched (2,000 new events: 3 s).
"""

from __future__ import annotations

import time

import duckdb

from tsunagu.identity.rules import IdentityRules
from tsunagu.store import utcnow
from tsunagu.store.sql import literal

PURCHASE_WEIGHT = 3
"""A line item bought counts this many product views towards favourite categories."""
TOP_CATEGORIES = 3
TRAIT_ALIASES = {"birthday": "birth_date"}
"""Event trait names read as the member master's names."""

OWNING = ("user_id", "anonymous_id", "device_id")
"""An event belongs to the profiles of these identifiers of it."""
_TRAIT_CARRIERS = ("email", "phone", "line_user_id", "member_card")
_TEMP = (
    "_t_profiles",
    "_t_source",
    "_t_detail",
    "_t_events",
    "_t_figures",
    "_t_home",
    "_t_categories",
    "_t_said",
    "_t_tiers",
    "_t_out",
)


def refresh_traits(
    cur: duckdb.DuckDBPyConnection, rules: IdentityRules, *, scope: str | None = None
) -> float:
    """Recompute `profile_traits` (every profile, or those whose ids the temp table `scope`
    holds in its `profile_id` column; ids no longer in the graph lose their row). Runs in the
    caller's transaction; returns the seconds it took."""
    started = time.perf_counter()
    compute_traits(cur, rules, scope=scope)
    where = f" WHERE profile_id IN (SELECT profile_id FROM {scope})" if scope else ""
    cur.execute(f"DELETE FROM profile_traits{where}")
    cur.execute(
        "INSERT INTO profile_traits BY NAME SELECT *, ?::TIMESTAMP AS computed_at FROM _t_out "
        "ORDER BY profile_id",
        [utcnow()],
    )
    drop_temp(cur)
    return time.perf_counter() - started


def compute_traits(
    cur: duckdb.DuckDBPyConnection, rules: IdentityRules, *, scope: str | None = None
) -> None:
    """Compute the rows of `profile_traits` into the temp table `_t_out` (nothing stored)."""
    member_columns = cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'members' AND table_schema = 'main' AND column_name <> 'attributes' "
        "ORDER BY ordinal_position"
    ).fetchall()
    cur.execute(rules.macros())
    first, *rest = traits_sql(rules, scope=scope, member_columns=member_columns)
    cur.execute(first)
    if scope:
        # The events naming an identifier of a profile in scope: found on three narrow
        # columns, then fetched by row number as constants (a join would read every message).
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _t_scoped AS SELECT type, value FROM identity_nodes "
            f"WHERE profile_id IN (SELECT profile_id FROM {scope})"
        )
        rows = cur.execute(_SCOPED_ROWS).fetchall()
        cur.execute("DROP TABLE _t_scoped")
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _t_source AS SELECT rowid AS rid, * FROM events "
            "WHERE rowid IN (SELECT unnest(?::BIGINT[]))",
            [[r[0] for r in rows]],
        )
    for sql in rest:
        cur.execute(sql)


_SCOPED_ROWS = " UNION ".join(
    f"SELECT e.rowid FROM events e JOIN _t_scoped n "
    f"ON n.type = '{t}' AND n.value = tg_clean('{t}', e.{t})"
    for t in OWNING
)


def drop_temp(cur: duckdb.DuckDBPyConnection) -> None:
    for table in _TEMP:
        cur.execute(f"DROP TABLE IF EXISTS {table}")


def traits_sql(
    rules: IdentityRules, *, scope: str | None, member_columns: list[tuple[str, str]]
) -> list[str]:
    """The statements that fill `_t_out`; `member_columns` are (name, type) of the member
    master's columns that are traits."""
    return [
        # Profiles by number: joins and groups on a number are cheaper than on the id text.
        "CREATE OR REPLACE TEMP TABLE _t_profiles AS "
        "SELECT (row_number() OVER ())::BIGINT AS pid, profile_id, "
        + (f"profile_id IN (SELECT profile_id FROM {scope})" if scope else "true")
        + " AS wanted FROM (SELECT DISTINCT profile_id FROM identity_nodes)",
        _events_sql(scope),
        _figures_sql(),
        _home_sql(),
        _categories_sql(),
        _said_sql(rules),
        _tiers_sql(rules, member_columns),
        _out_sql(rules),
    ]


def _owned(columns: str) -> str:
    """(event, profile) pairs of profiles in scope: each event once for each distinct profile
    among its owners."""
    return (
        "(SELECT * FROM ("
        f"SELECT {columns}, p_user_id AS pid FROM _t_events WHERE p_user_id IS NOT NULL "
        f"UNION ALL SELECT {columns}, p_anonymous_id FROM _t_events "
        "WHERE p_anonymous_id IS NOT NULL AND p_anonymous_id IS DISTINCT FROM p_user_id "
        f"UNION ALL SELECT {columns}, p_device_id FROM _t_events WHERE p_device_id IS NOT NULL "
        "AND p_device_id IS DISTINCT FROM p_user_id AND p_device_id IS DISTINCT FROM p_anonymous_id"
        ") WHERE pid IN (SELECT pid FROM _t_profiles WHERE wanted))"
    )


def _events_sql(scope: str | None) -> str:
    """`_t_events`: every event of a profile in scope, with its owners and the few values of
    its JSON the traits need."""
    joins = " ".join(
        f"LEFT JOIN (SELECT n.value, p.pid FROM identity_nodes n JOIN _t_profiles p "
        f"USING (profile_id) WHERE n.type = '{t}') n_{t} ON n_{t}.value = tg_clean('{t}', e.{t})"
        for t in OWNING
    )
    source, rid = ("_t_source", "rid") if scope else ("events", "rowid")
    columns = (
        f"{rid} AS rid, timestamp AS ts, type, event, channel, store_id, user_id, anonymous_id, "
        "device_id, " + ", ".join(_TRAIT_CARRIERS)
    )
    names = (
        "rid, ts, type, event, channel, store_id, user_id, anonymous_id, device_id, "
        + ", ".join(_TRAIT_CARRIERS)
    )
    # The JSON of the messages that need it, read by one scan per kind (the event and type
    # columns are filtered first, so most messages never have their JSON read) and reduced to
    # a few small values before the join with the identity graph. A product's category comes
    # from the products table, else from the event.
    other = "coalesce(event, '') NOT IN ('Order Completed', 'Product Viewed')"
    category = "coalesce(p.category, x[3])"
    product = "p.sku = coalesce(x[1], x[2])"
    detail = (
        "CREATE OR REPLACE TEMP TABLE _t_detail AS "
        f"SELECT {names}, coalesce(TRY_CAST(money[1] AS DOUBLE), TRY_CAST(money[2] AS DOUBLE)) "
        "AS revenue, bought, NULL::VARCHAR AS viewed, NULL::JSON[] AS said FROM ("
        f"  SELECT {columns}, "
        "  json_extract_string(raw, ['$.properties.revenue', '$.properties.total']) AS money, "
        "  json_extract(raw, '$.properties.products[*]') AS items "
        f" FROM {source} WHERE event = 'Order Completed'"
        ") o LEFT JOIN ("
        f" SELECT rid, list({category}) FILTER (WHERE {category} IS NOT NULL) AS bought FROM ("
        "    SELECT rid, json_extract_string(item, ['$.sku', '$.product_id', '$.category']) AS x "
        f"   FROM (SELECT {rid} AS rid, unnest(json_extract(raw, '$.properties.products[*]')) "
        f"         AS item FROM {source} WHERE event = 'Order Completed')"
        f" ) LEFT JOIN products p ON {product} GROUP BY rid"
        ") USING (rid) "
        f"UNION ALL SELECT {names}, NULL, NULL, {category}, NULL FROM ("
        f"  SELECT {columns}, json_extract_string(raw, "
        "  ['$.properties.sku', '$.properties.product_id', '$.properties.category']) AS x "
        f" FROM {source} WHERE event = 'Product Viewed'"
        f") LEFT JOIN products p ON {product} "
        f"UNION ALL SELECT {columns}, NULL, NULL, NULL, json_extract(raw, ['$.traits', '$.context.traits']) "
        f"FROM {source} WHERE type = 'identify' AND {other}"
    )
    owners = ", ".join(f"n_{t}.pid AS p_{t}" for t in OWNING)
    any_owner = ", ".join(f"n_{t}.pid" for t in OWNING)
    return (
        detail + "; "
        "CREATE OR REPLACE TEMP TABLE _t_events AS "
        "SELECT e.rid, e.ts, e.type, e.event, e.channel, e.store_id, "
        + ", ".join(f"e.{c}" for c in _TRAIT_CARRIERS)
        + f", e.revenue, e.bought, e.viewed, e.said, {owners} FROM ("
        "  SELECT * FROM _t_detail UNION ALL "
        f" SELECT {columns}, NULL, NULL, NULL, NULL FROM {source} "
        f" WHERE type <> 'identify' AND {other}"
        f") e {joins} WHERE coalesce({any_owner}) IS NOT NULL; "
        "DROP TABLE _t_detail; DROP TABLE IF EXISTS _t_source"
    )


def _figures_sql() -> str:
    order = "o.event = 'Order Completed'"
    # By profile and channel first, then by profile: no ordered or distinct aggregate over
    # every event.
    return (
        "CREATE OR REPLACE TEMP TABLE _t_figures AS "
        "SELECT pid, min(first_seen) AS first_seen, max(last_seen) AS last_seen, "
        "sum(events)::BIGINT AS events, list(channel ORDER BY channel) AS channels, "
        "coalesce(sum(orders) FILTER (WHERE channel <> 'store'), 0)::BIGINT AS orders_online, "
        "coalesce(sum(spend) FILTER (WHERE channel <> 'store'), 0) AS spend_online, "
        "coalesce(sum(orders) FILTER (WHERE channel = 'store'), 0)::BIGINT AS orders_store, "
        "coalesce(sum(spend) FILTER (WHERE channel = 'store'), 0) AS spend_store, "
        "max(last_visit) AS last_store_visit FROM ("
        "  SELECT o.pid, o.channel, min(o.ts) AS first_seen, max(o.ts) AS last_seen, "
        f" count(*) AS events, count(*) FILTER (WHERE {order}) AS orders, "
        f" coalesce(sum(o.revenue) FILTER (WHERE {order}), 0) AS spend, "
        "  max(o.ts) FILTER (WHERE o.event = 'Store Visited' "
        f"                  OR (o.channel = 'store' AND {order})) AS last_visit "
        f" FROM {_owned('ts, event, channel, revenue')} o GROUP BY o.pid, o.channel"
        ") GROUP BY pid"
    )


def _home_sql() -> str:
    return (
        "CREATE OR REPLACE TEMP TABLE _t_home AS "
        "SELECT pid, first(store_id ORDER BY n DESC, store_id) AS home_store_id FROM ("
        f"  SELECT o.pid, o.store_id, count(*) AS n FROM {_owned('channel, store_id')} o "
        "   WHERE o.channel = 'store' AND o.store_id IS NOT NULL GROUP BY ALL"
        ") GROUP BY pid"
    )


def _categories_sql() -> str:
    interest = (
        f"SELECT pid, viewed AS category, 1 AS weight FROM {_owned('viewed')} "
        "WHERE viewed IS NOT NULL UNION ALL "
        f"SELECT pid, unnest(bought), {PURCHASE_WEIGHT} FROM {_owned('bought')} "
        "WHERE bought IS NOT NULL"
    )
    return (
        "CREATE OR REPLACE TEMP TABLE _t_categories AS "
        f"SELECT pid, list(category ORDER BY score DESC, category)[1:{TOP_CATEGORIES}] "
        "AS favourite_categories FROM ("
        f"  SELECT pid, category, sum(weight) AS score FROM ({interest}) GROUP BY ALL"
        ") GROUP BY pid"
    )


def _rank(rules: IdentityRules, source: str) -> str:
    ranks = rules.trait_ranks()
    cases = " ".join(f"WHEN {literal(s)} THEN {r}" for s, r in ranks.items() if s != "members")
    return f"CASE {source} {cases} ELSE {rules.unlisted_trait_rank()} END"


def _said_sql(rules: IdentityRules) -> str:
    """`_t_said`: what events said about a person: per (profile, key) the value of the most
    trusted source, the latest within a rank."""
    # The profile of the message's highest-priority identifier: the person it names.
    primary = "coalesce(" + ", ".join(f"p_{o}" for o in sorted(OWNING, key=rules.rank)) + ")"
    aliases = " ".join(f"WHEN {literal(a)} THEN {literal(b)}" for a, b in TRAIT_ALIASES.items())
    # Part 1: an identify call's own traits; part 2 its context's; part 3 the identifiers other
    # messages carry in their context (as columns, so their JSON is not read).
    said = " UNION ALL ".join(
        [
            *(
                f"SELECT rid, {part} AS part, k.key, k.value FROM _t_events o, "
                f"json_each(o.said[{part}]) k WHERE o.said IS NOT NULL "
                f"AND json_type(o.said[{part}]) = 'OBJECT' AND k.type <> 'NULL'"
                for part in (1, 2)
            ),
            "SELECT rid, 3, key, to_json(value) FROM (UNPIVOT (SELECT rid, "
            + ", ".join(_TRAIT_CARRIERS)
            + " FROM _t_events WHERE said IS NULL AND ("
            + " OR ".join(f"{c} IS NOT NULL" for c in _TRAIT_CARRIERS)
            + ")) ON "
            + ", ".join(_TRAIT_CARRIERS)
            + " INTO NAME key VALUE value)",
        ]
    )
    return (
        "CREATE OR REPLACE TEMP TABLE _t_said AS "
        "SELECT pid, key, first(value ORDER BY rank, ts DESC, rid DESC, part) AS value, "
        "       first(source ORDER BY rank, ts DESC, rid DESC, part) AS source, "
        "       min(rank) AS rank FROM ("
        f"  SELECT {primary} AS pid, t.ts, t.rid, s.part, t.channel AS source, "
        f"         {_rank(rules, 't.channel')} AS rank, CASE s.key {aliases} ELSE s.key END AS key, "
        "          s.value "
        f"  FROM ({said}) s JOIN _t_events t USING (rid)"
        ") WHERE pid IN (SELECT pid FROM _t_profiles WHERE wanted) GROUP BY pid, key"
    )


def _iso(column: str) -> str:
    """A timestamp as ISO 8601 in UTC, as `profiles._plain` writes one."""
    return f"replace(strftime({column}, '%Y-%m-%dT%H:%M:%S.%fZ'), '.000000Z', 'Z')"


def _tiers_sql(rules: IdentityRules, member_columns: list[tuple[str, str]]) -> str:
    """`_t_tiers`: per profile, the member master's traits and the events' traits from sources
    ranked above it and below it, each an object (and one of where each key came from)."""
    values = ", ".join(
        f"{literal(name)}, {_iso('m.' + name) if kind.startswith('TIMESTAMP') else 'm.' + name}"
        for name, kind in member_columns
    )
    sources = ", ".join(
        f"{literal(name)}, CASE WHEN m.{name} IS NOT NULL THEN 'members' END"
        for name, _ in member_columns
    )
    rank = rules.trait_ranks().get("members", rules.unlisted_trait_rank())
    members = (
        # The latest-updated member record of each profile; merge_patch drops the nulls.
        "SELECT p.pid, json_merge_patch('{}', json_object(" + values + ")) AS obj, "
        "json_merge_patch('{}', json_object(" + sources + ")) AS src "
        "FROM members m JOIN (SELECT n.value, p.pid FROM identity_nodes n "
        "  JOIN _t_profiles p USING (profile_id) WHERE n.type = 'user_id' AND p.wanted) p "
        "ON p.value = tg_clean('user_id', m.member_id) "
        "QUALIFY row_number() OVER (PARTITION BY p.pid "
        "ORDER BY m.updated_at DESC, m.registered_at DESC NULLS LAST, m.member_id) = 1"
    )

    def obj(column: str, where: str = "true") -> str:
        return (
            f"to_json(map(list(key) FILTER (WHERE {where}), list({column}) FILTER (WHERE {where})))"
        )

    above, below = f"rank < {rank}", f"rank >= {rank}"
    said = (
        f"SELECT pid, {obj('value')} AS said, {obj('source')} AS said_src, "
        f"count(*) FILTER (WHERE {above}) AS above, "
        f"{obj('value', above)} AS above_obj, {obj('source', above)} AS above_src, "
        f"{obj('value', below)} AS below_obj, {obj('source', below)} AS below_src "
        "FROM _t_said GROUP BY pid"
    )
    return (
        "CREATE OR REPLACE TEMP TABLE _t_tiers AS "
        "SELECT pid, m.obj, m.src, s.* EXCLUDE (pid) FROM (" + members + ") m "
        "FULL JOIN (" + said + ") s USING (pid)"
    )


def _merged(obj: str) -> str:
    """The member master's traits patched over what less trusted sources said, and what more
    trusted sources said patched over both; most profiles need no patching."""
    below = f"json_merge_patch(coalesce(below_{obj}, '{{}}'), {obj})"
    return (
        f"CASE WHEN {obj} IS NULL THEN said{'_src' if obj == 'src' else ''} "
        f"WHEN said IS NULL THEN {obj} "
        f"WHEN above = 0 THEN {below} "
        f"ELSE json_merge_patch({below}, above_{obj}) END"
    )


def _out_sql(rules: IdentityRules) -> str:
    return (
        "CREATE OR REPLACE TEMP TABLE _t_out AS "
        "SELECT p.profile_id, f.first_seen, f.last_seen, coalesce(f.events, 0) AS events, "
        "coalesce(f.channels, []::VARCHAR[]) AS channels, "
        "coalesce(f.orders_online, 0) AS orders_online, coalesce(f.spend_online, 0) AS spend_online, "
        "coalesce(f.orders_store, 0) AS orders_store, coalesce(f.spend_store, 0) AS spend_store, "
        "h.home_store_id, f.last_store_visit, "
        "coalesce(c.favourite_categories, []::VARCHAR[]) AS favourite_categories, "
        f"coalesce({_merged('obj')}, '{{}}') AS traits, "
        f"coalesce({_merged('src')}, '{{}}') AS trait_sources, i.identifiers "
        "FROM _t_profiles p "
        "LEFT JOIN _t_figures f USING (pid) "
        "LEFT JOIN _t_home h USING (pid) "
        "LEFT JOIN _t_categories c USING (pid) "
        "LEFT JOIN _t_tiers t USING (pid) "
        "LEFT JOIN ("
        # Unordered here (an ordered aggregate over every identifier costs seconds); the
        # reader orders a profile's few.
        "  SELECT profile_id, to_json(list(struct_pack(type := type, value := value, "
        "  first_seen := epoch_us(first_seen)))) AS identifiers FROM identity_nodes "
        "  WHERE profile_id IN (SELECT profile_id FROM _t_profiles WHERE wanted) "
        "  GROUP BY profile_id"
        ") i USING (profile_id) "
        "WHERE p.wanted"
    )
