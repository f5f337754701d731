"""The deterministic identity graph: identifiers are nodes, appearing together is an edge, and a
connected component is one customer (a profile) — unless that would break a limit.

Build (`build_graph`): every identifier seen in events, member records, alias calls and the
records `identity match` linked to a member (their e-mail and phone) is
normalised and blocked values dropped (rules.py). Connected components come from scipy over
all edges at once. A component that breaks no limit (the vast majority) is a profile as it is;
since every part of it breaks no limit either, processing its records one by one would give the
same answer. Only components that break a limit (a family tablet, a shared demo device) are
replayed record by record in time order, each record joining the profile of its
highest-priority identifier and lower identifiers staying out where they would break a limit;
each refusal is written to `identity_audit` with its reason.

Update (`update_graph`): events received since the last build or update are replayed the same
way against the stored graph, so new events extend profiles without a rebuild and, for events
arriving in time order, give what a rebuild gives.

Both end by recomputing the profiles' traits (identity/traits.py) in the same transaction: a
build every profile's, an update only those of the profiles it touched.

A profile's id is derived from its anchor (highest-priority identifier, earliest seen), so it
is the same after every rebuild.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from tsunagu.identity.rules import IdentityRules
from tsunagu.identity.traits import refresh_traits
from tsunagu.store import Store, count, utcnow

# Identifier columns of a record, as sent, in events (one record per distinct combination)
# and in the member master.
_EVENT_IDS = """
SELECT min(timestamp) AS ts, user_id, anonymous_id, device_id, email, phone, line_user_id,
       member_card, previous_id
FROM events {where}
GROUP BY ALL
"""

_MEMBER_IDS = """
SELECT coalesce(registered_at, TIMESTAMP '1970-01-01') AS ts, member_id AS user_id,
       CAST(NULL AS VARCHAR) AS anonymous_id, CAST(NULL AS VARCHAR) AS device_id, email, phone,
       line_user_id, member_card, CAST(NULL AS VARCHAR) AS previous_id
FROM members
"""

# Records of `identity match` linked to a member: their e-mail and phone join that member.
_MATCH_IDS = """
SELECT matched_at AS ts, member_id AS user_id, CAST(NULL AS VARCHAR) AS anonymous_id,
       CAST(NULL AS VARCHAR) AS device_id, email, phone, CAST(NULL AS VARCHAR) AS line_user_id,
       CAST(NULL AS VARCHAR) AS member_card, CAST(NULL AS VARCHAR) AS previous_id
FROM identity_matches
WHERE matched = 'member' AND (email IS NOT NULL OR phone IS NOT NULL)
"""

# One row per (record, identifier), normalised: each distinct value is normalised once (far
# fewer than records), and an alias's previousId is an anonymous id.
_OCCURRENCES = """
CREATE OR REPLACE TEMP TABLE _raw AS
SELECT rec, ts, CASE WHEN t = 'previous_id' THEN 'anonymous_id' ELSE t END AS t, v AS raw
FROM (UNPIVOT _records
      ON user_id, anonymous_id, device_id, email, phone, line_user_id, member_card, previous_id
      INTO NAME t VALUE v);
CREATE OR REPLACE TEMP TABLE _clean AS
SELECT t, raw, tg_clean(t, raw) AS v FROM (SELECT DISTINCT t, raw FROM _raw);
DELETE FROM _clean WHERE v IS NULL OR tg_blocked(t, v);
CREATE OR REPLACE TEMP TABLE _occ AS
SELECT r.rec, r.ts, r.t, c.v FROM _raw r JOIN _clean c USING (t, raw);
DROP TABLE _raw;
DROP TABLE _clean;
"""


@dataclass(slots=True)
class BuildReport:
    identifiers: int = 0
    profiles: int = 0
    records: int = 0
    replayed_components: int = 0
    refused_links: int = 0
    seconds: float = 0.0
    by_type: dict[str, int] = field(default_factory=dict)
    traits_seconds: float = 0.0
    """Of `seconds`, the time spent recomputing every profile's traits."""


def profile_id_for(kind: str, value: str) -> str:
    """The id of the profile anchored at this identifier."""
    return "p_" + hashlib.md5(f"{kind}:{value}".encode()).hexdigest()[:16]


class _Replay:
    """Record-by-record union with limits, for components that break a limit as a whole."""

    def __init__(self, rules: IdentityRules, kinds: dict[int, str]) -> None:
        self.rules = rules
        self.kinds = kinds
        self.parent: dict[int, int] = {}
        self.counts: dict[int, Counter[str]] = {}
        self.refusals: list[tuple[int, int, int, str]] = []

    def find(self, node: int) -> int:
        parent = self.parent.setdefault(node, node)
        if parent == node:
            self.counts.setdefault(node, Counter({self.kinds[node]: 1}))
            return node
        root = self.find(parent)
        self.parent[node] = root
        return root

    def record(self, rec: int, nodes: Sequence[int]) -> None:
        """`nodes` in priority order: the first decides the profile."""
        root = self.find(nodes[0])
        for node in nodes[1:]:
            other = self.find(node)
            if other == root:
                continue
            joined = self.counts[root] + self.counts[other]
            broken = next(
                (k for k, n in joined.items() if n > self.rules.limit(k)),
                None,
            )
            if broken is not None:
                reason = (
                    f"would give one profile {joined[broken]} {broken} values "
                    f"(limit {self.rules.limit(broken)})"
                )
                self.refusals.append((rec, nodes[0], node, reason))
                continue
            self.parent[other] = root
            self.counts[root] = joined
            del self.counts[other]


def _limits_table(rules: IdentityRules) -> str:
    rows = ", ".join(f"('{k}', {rules.limit(k)})" for k in rules.priority)
    return f"(VALUES {rows}) AS lim(t, max_values)"


def build_graph(*, store: Store, rules: IdentityRules) -> BuildReport:
    """Rebuild the identity graph from scratch (see module doc)."""
    started = utcnow()
    report = BuildReport()
    with store.transaction() as cur:
        cur.execute(rules.macros())
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _records AS "
            f"SELECT row_number() OVER () AS rec, * FROM ({_EVENT_IDS.format(where='')} "
            f"UNION ALL {_MEMBER_IDS} UNION ALL {_MATCH_IDS})"
        )
        report.records = count(cur, "SELECT count(*) FROM _records")
        cur.execute(_OCCURRENCES)
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _nodes AS "
            "SELECT (row_number() OVER () - 1)::BIGINT AS node, t, v, first_seen "
            "FROM (SELECT t, v, min(ts) AS first_seen FROM _occ GROUP BY t, v)"
        )
        cur.execute(
            # Detached identifiers are nodes but link nothing.
            "CREATE OR REPLACE TEMP TABLE _occn AS "
            "SELECT o.rec, o.ts, n.node, n.t FROM _occ o JOIN _nodes n USING (t, v) "
            "WHERE (o.t, o.v) NOT IN (SELECT (type, value) FROM identity_detached)"
        )
        nodes = count(cur, "SELECT count(*) FROM _nodes")
        edges = cur.execute(
            "SELECT DISTINCT o.node AS a, f.first AS b FROM _occn o "
            "JOIN (SELECT rec, min(node) AS first FROM _occn GROUP BY rec) f USING (rec) "
            "WHERE o.node <> f.first"
        ).fetchnumpy()
        a = np.asarray(edges["a"], dtype=np.int64)
        b = np.asarray(edges["b"], dtype=np.int64)
        graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(nodes, nodes))
        _, labels = connected_components(graph, directed=False)
        label_table = pa.table(
            {"node": np.arange(nodes, dtype=np.int64), "comp": labels.astype(np.int64)}
        )
        cur.register("_labels", label_table)
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _comp AS "
            "SELECT n.node, n.t, n.v, n.first_seen, l.comp FROM _nodes n JOIN _labels l USING (node)"
        )
        cur.unregister("_labels")
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _bad AS SELECT DISTINCT c.comp FROM "
            f"(SELECT comp, t, count(*) AS n FROM _comp GROUP BY comp, t) c "
            f"JOIN {_limits_table(rules)} USING (t) WHERE c.n > lim.max_values"
        )
        refusals = _replay_components(cur, rules)
        report.replayed_components = count(cur, "SELECT count(*) FROM _bad")
        report.refused_links = len(refusals)
        _write_profiles(cur, rules)
        mark_changed(cur)
        cur.execute("DELETE FROM identity_audit WHERE kind = 'refused' AND at_build")
        _audit(cur, refusals, at_build=True)
        _set_state(cur, "built_at", started.isoformat())
        _set_watermarks(cur)
        report.identifiers = nodes
        report.profiles = count(cur, "SELECT count(DISTINCT profile_id) FROM identity_nodes")
        report.by_type = dict(
            cur.execute(
                "SELECT type, count(*) FROM identity_nodes GROUP BY type ORDER BY type"
            ).fetchall()
        )
        for table in ("_records", "_occ", "_nodes", "_occn", "_comp", "_bad"):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        report.traits_seconds = refresh_traits(cur, rules)
    report.seconds = (utcnow() - started).total_seconds()
    return report


def _replay_components(
    cur: duckdb.DuckDBPyConnection, rules: IdentityRules
) -> list[tuple[datetime, str, str, str, str, str]]:
    """Split the components in `_bad` record by record; rewrite their labels in `_comp`."""
    rows = cur.execute(
        # Node numbers are arbitrary; the order within a record is by priority, then value.
        "SELECT o.rec, min(o.ts) AS ts, list(o.node ORDER BY tg_rank(o.t), c.v) AS nodes "
        "FROM _occn o JOIN _comp c USING (node) WHERE c.comp IN (SELECT comp FROM _bad) "
        "GROUP BY o.rec ORDER BY ts, o.rec"
    ).fetchall()
    if not rows:
        return []
    kinds = dict(
        cur.execute("SELECT node, t FROM _comp WHERE comp IN (SELECT comp FROM _bad)").fetchall()
    )
    replay = _Replay(rules, kinds)
    for rec, _, nodes in rows:
        replay.record(rec, nodes)
    # New labels above every scipy label, one per replayed root.
    offset = count(cur, "SELECT max(comp) + 1 FROM _comp")
    relabel = pa.table(
        {
            "node": np.fromiter(kinds, dtype=np.int64),
            "comp": np.array([offset + replay.find(n) for n in kinds], dtype=np.int64),
        }
    )
    cur.register("_relabel", relabel)
    cur.execute("UPDATE _comp SET comp = r.comp FROM _relabel r WHERE _comp.node = r.node")
    cur.unregister("_relabel")
    at = {rec: ts for rec, ts, _ in rows}
    described = dict(
        (node, (t, v))
        for node, t, v in cur.execute(
            "SELECT node, t, v FROM _comp WHERE node IN (SELECT unnest(?::BIGINT[]))",
            [sorted({n for r in replay.refusals for n in r[1:3]})],
        ).fetchall()
    )
    return [
        (at[rec], *described[kept], *described[left], reason)
        for rec, kept, left, reason in replay.refusals
    ]


def _write_profiles(cur: duckdb.DuckDBPyConnection, rules: IdentityRules) -> None:
    """identity_nodes from `_comp`: each component's anchor names the profile.

    The table is replaced rather than emptied: deleting five million rows costs more than
    writing them.
    """
    cur.execute(
        """CREATE OR REPLACE TABLE identity_nodes AS
        WITH anchors AS (
            SELECT comp, arg_min(node, (tg_rank(t), first_seen, v)) AS node FROM _comp GROUP BY comp
        ), named AS (
            SELECT a.comp, 'p_' || left(md5(c.t || ':' || c.v), 16) AS profile_id
            FROM anchors a JOIN _comp c USING (node)
        )
        SELECT c.t AS type, c.v AS value, n.profile_id, c.first_seen
        FROM _comp c JOIN named n USING (comp)
        ORDER BY c.t, c.v"""
    )


def _audit(
    cur: duckdb.DuckDBPyConnection,
    rows: Iterable[tuple[datetime, str, str, str | None, str | None, str]],
    *,
    at_build: bool,
    kind: str = "refused",
) -> None:
    rows = list(rows)
    if not rows:
        return
    names = ("seen_at", "type", "value", "other_type", "other_value", "reason")
    table = pa.table(
        {name: [row[i] for row in rows] for i, name in enumerate(names)},
        schema=pa.schema(
            [("seen_at", pa.timestamp("us"))] + [(name, pa.string()) for name in names[1:]]
        ),
    )
    cur.register("_audit_rows", table)
    cur.execute(
        "INSERT INTO identity_audit (recorded_at, kind, seen_at, type, value, other_type, "
        "other_value, reason, at_build) "
        f"SELECT ?, ?, {', '.join(names)}, ? FROM _audit_rows",
        [utcnow(), kind, at_build],
    )
    cur.unregister("_audit_rows")


def _set_state(cur: duckdb.DuckDBPyConnection, key: str, value: str | None) -> None:
    cur.execute("DELETE FROM identity_state WHERE key = ?", [key])
    cur.execute("INSERT INTO identity_state VALUES (?, ?)", [key, value])


def mark_changed(cur: duckdb.DuckDBPyConnection, *, merges_only: bool = False) -> None:
    """Stamp a change of identity_nodes (or of the events erasure deletes): what was derived
    from the graph (analytics' customers) is stale from here on. `merges_only`: profiles only
    grew and merged (an update), so what was derived can follow without starting over."""
    stamp = utcnow().isoformat()
    _set_state(cur, "changed_at", stamp)
    if not merges_only:
        _set_state(cur, "reshaped_at", stamp)


def _set_watermarks(cur: duckdb.DuckDBPyConnection) -> None:
    """What the graph has seen: events up to this commit stamp, members up to this change,
    matched records up to this match."""
    ((events_to, members_to, matches_to),) = cur.execute(
        "SELECT (SELECT max(stored_at) FROM events), (SELECT max(updated_at) FROM members), "
        "(SELECT max(matched_at) FROM identity_matches)"
    ).fetchall()
    for key, value in (
        ("updated_to", events_to),
        ("members_to", members_to),
        ("matches_to", matches_to),
    ):
        _set_state(cur, key, value.isoformat() if value else None)


@dataclass(slots=True)
class UpdateReport:
    records: int = 0
    new_identifiers: int = 0
    merged_profiles: int = 0
    refused_links: int = 0
    rebuilt: bool = False
    profiles_refreshed: int = 0
    """Profiles whose traits were recomputed."""
    traits_seconds: float = 0.0


def update_graph(*, store: Store, rules: IdentityRules) -> UpdateReport:
    """Fold events received (and members changed) since the last build or update into the
    stored graph, record by record in time order (see module doc)."""
    with store.transaction() as cur:
        state = dict(cur.execute("SELECT key, value FROM identity_state").fetchall())
    if "updated_to" not in state:
        build_graph(store=store, rules=rules)
        return UpdateReport(rebuilt=True)
    since = state["updated_to"] or "1970-01-01"
    members_since = state.get("members_to") or "1970-01-01"
    matches_since = state.get("matches_to") or "1970-01-01"
    report = UpdateReport()
    with store.transaction() as cur:
        cur.execute(rules.macros())
        # stored_at is the commit stamp, increasing with every commit (store/db.py), so
        # nothing committed after the last update is missed and nothing is applied twice.
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _records AS "
            "SELECT row_number() OVER (ORDER BY ts) AS rec, * FROM ("
            + _EVENT_IDS.format(where="WHERE stored_at > CAST(? AS TIMESTAMP)")
            + " UNION ALL "
            + _MEMBER_IDS
            + " WHERE updated_at > CAST(? AS TIMESTAMP) UNION ALL "
            + _MATCH_IDS
            + " AND matched_at > CAST(? AS TIMESTAMP))",
            [since, members_since, matches_since],
        )
        cur.execute(_OCCURRENCES)
        cur.execute(
            "DELETE FROM _occ WHERE (t, v) IN (SELECT (type, value) FROM identity_detached)"
        )
        report.records = count(cur, "SELECT count(DISTINCT rec) FROM _occ")
        # Traits to recompute: those of the profiles the new records' identifiers belong to,
        # before (a merged profile's old id loses its row) and after.
        cur.execute("CREATE OR REPLACE TEMP TABLE _retrait_ids AS SELECT DISTINCT t, v FROM _occ")
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _retrait AS {_RETRAIT}")
        # Most new messages come from known customers with nothing new: every identifier is
        # already in one profile, so replaying them would change nothing. Leave them out.
        cur.execute(
            "DELETE FROM _occ WHERE rec IN (SELECT o.rec FROM _occ o LEFT JOIN identity_nodes n "
            "ON n.type = o.t AND n.value = o.v GROUP BY o.rec "
            "HAVING count(n.profile_id) = count(*) AND count(DISTINCT n.profile_id) = 1)"
        )
        rows = cur.execute(
            "SELECT rec, min(ts), list(struct_pack(t := t, v := v) ORDER BY tg_rank(t), v) "
            "FROM _occ GROUP BY rec ORDER BY min(ts), rec"
        ).fetchall()
        if rows:
            _apply_records(cur, rules, rows, report)
        cur.execute(f"INSERT INTO _retrait {_RETRAIT}")
        report.profiles_refreshed = count(cur, "SELECT count(DISTINCT profile_id) FROM _retrait")
        if report.profiles_refreshed:
            report.traits_seconds = refresh_traits(cur, rules, scope="_retrait")
        _set_watermarks(cur)
        for table in ("_records", "_occ", "_retrait_ids", "_retrait"):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
    return report


_RETRAIT = (
    "SELECT DISTINCT n.profile_id FROM identity_nodes n "
    "JOIN _retrait_ids o ON n.type = o.t AND n.value = o.v"
)


def _apply_records(
    cur: duckdb.DuckDBPyConnection,
    rules: IdentityRules,
    rows: list[tuple[int, datetime, list[dict[str, str]]]],
    report: UpdateReport,
) -> None:
    """Replay `rows` (rec, ts, identifiers in priority order) against the stored graph."""
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _touched AS "
        "SELECT n.type, n.value, n.profile_id, n.first_seen FROM identity_nodes n "
        "WHERE n.profile_id IN (SELECT DISTINCT i.profile_id FROM identity_nodes i "
        "JOIN (SELECT DISTINCT t, v FROM _occ) o ON i.type = o.t AND i.value = o.v)"
    )
    stored = cur.execute("SELECT type, value, profile_id, first_seen FROM _touched").fetchall()
    # Node keys: existing identifiers hang under a root per existing profile.
    keys: dict[tuple[str, str], int] = {}
    kinds: dict[int, str] = {}
    first_seen: dict[int, datetime | None] = {}
    profile_root: dict[str, int] = {}
    replay = _Replay(rules, kinds)

    def key_of(kind: str, value: str, seen: datetime | None) -> int:
        node = keys.get((kind, value))
        if node is None:
            node = keys[(kind, value)] = len(keys)
            kinds[node] = kind
            first_seen[node] = seen
        return node

    for kind, value, profile_id, seen in stored:
        node = key_of(kind, value, seen)
        root = profile_root.setdefault(profile_id, node)
        if root != node:
            replay.find(root)
            replay.find(node)
            replay.parent[node] = root
            replay.counts[root] = replay.counts[root] + replay.counts.pop(node)
    known = len(keys)
    at: dict[int, datetime] = {}
    merges: list[tuple[datetime, str, str, str, str, str]] = []
    for rec, ts, identifiers in rows:
        seen_before = len(keys)  # identifiers first met in this very message join, not merge
        nodes = [key_of(i["t"], i["v"], ts) for i in identifiers]
        at[rec] = ts
        before = {replay.find(n) for n in nodes if n < seen_before}
        replay.record(rec, nodes)
        after = {replay.find(n) for n in nodes if n < seen_before}
        if len(after) < len(before):
            report.merged_profiles += len(before) - len(after)
            first, last = identifiers[0], identifiers[-1]
            merges.append(
                (
                    ts,
                    first["t"],
                    first["v"],
                    last["t"],
                    last["v"],
                    f"{len(before)} profiles met in one message",
                )
            )
    report.new_identifiers = len(keys) - known
    report.refused_links = len(replay.refusals)
    by_node = {node: key for key, node in keys.items()}
    old_profile = {keys[(k, v)]: p for k, v, p, _ in stored}
    groups: dict[int, list[int]] = {}
    for node in by_node:
        groups.setdefault(replay.find(node), []).append(node)
    changes: list[tuple[str, str, str, datetime | None]] = []
    for members in groups.values():
        anchor = min(
            members,
            key=lambda n: (rules.rank(kinds[n]), first_seen[n] or datetime.max, by_node[n][1]),
        )
        profile = profile_id_for(kinds[anchor], by_node[anchor][1])
        for node in members:
            if old_profile.get(node) != profile:
                kind, value = by_node[node]
                changes.append((kind, value, profile, first_seen[node]))
    if changes:
        cur.register(
            "_changes",
            pa.table(
                {
                    "type": [c[0] for c in changes],
                    "value": [c[1] for c in changes],
                    "profile_id": [c[2] for c in changes],
                    "first_seen": pa.array([c[3] for c in changes], pa.timestamp("us")),
                }
            ),
        )
        cur.execute(
            "DELETE FROM identity_nodes n USING _changes c "
            "WHERE n.type = c.type AND n.value = c.value"
        )
        cur.execute(
            "INSERT INTO identity_nodes SELECT type, value, profile_id, first_seen FROM _changes"
        )
        # An update joins new identifiers to profiles and merges profiles; it never takes an
        # identifier out of the profile it was in (detaching one rebuilds the graph).
        mark_changed(cur, merges_only=True)
        cur.unregister("_changes")
    _audit(
        cur,
        [
            (at[rec], *by_node[kept], *by_node[left], reason)
            for rec, kept, left, reason in replay.refusals
        ],
        at_build=False,
    )
    _audit(cur, merges, at_build=False, kind="merged")
    cur.execute("DROP TABLE _touched")


@dataclass(slots=True)
class SplitReport:
    type: str
    value: str
    profile_before: str
    profile_after: str
    profiles_after: list[str]
    """The profiles the identifiers of the old profile belong to now."""


def split_identifier(
    *, store: Store, rules: IdentityRules, kind: str, value: str, reason: str
) -> SplitReport:
    """Detach an identifier (a shared tablet, a till's demo card) so that it links nothing, and
    re-derive the profiles from the graph; the reason is kept in the audit."""
    from tsunagu.exceptions import InvalidInput, NotFound

    if not reason.strip():
        raise InvalidInput("reason: say why (it is kept in the audit)", field="reason")
    with store.transaction() as cur:
        cur.execute(rules.macros())
        rows = cur.execute(
            "SELECT n.type, n.value, n.profile_id FROM identity_nodes n "
            "WHERE n.type = ? AND n.value = tg_norm(?, ?)",
            [kind, kind, value],
        ).fetchall()
        if not rows:
            raise NotFound(f"no identifier {kind} {value!r} in the graph", field="value")
        kind, value, before = rows[0]
        old_members = cur.execute(
            "SELECT type || ':' || value FROM identity_nodes WHERE profile_id = ?", [before]
        ).fetchall()
        cur.execute(
            "INSERT INTO identity_detached VALUES (?, ?, ?, ?)", [kind, value, reason, utcnow()]
        )
        _audit(
            cur,
            [(utcnow(), kind, value, None, None, f"detached: {reason}")],
            at_build=False,
            kind="split",
        )
    build_graph(store=store, rules=rules)
    with store.transaction() as cur:
        after = cur.execute(
            "SELECT profile_id FROM identity_nodes WHERE type = ? AND value = ?", [kind, value]
        ).fetchall()[0][0]
        profiles = [
            r[0]
            for r in cur.execute(
                "SELECT DISTINCT profile_id FROM identity_nodes "
                "WHERE type || ':' || value IN (SELECT unnest(?::VARCHAR[])) ORDER BY 1",
                [[m[0] for m in old_members]],
            ).fetchall()
        ]
    return SplitReport(kind, value, before, after, profiles)
