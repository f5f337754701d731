"""A funnel in one portable SQL statement (`statement`): what an engine without the numpy
walk (analytics/walk.py) runs, with the same definitions (analytics/funnels.py).

The statement works on *instants* as the walk does: the step events are grouped by customer
and moment (`g`: which steps and exclusions have an event there, and for steps sharing an
event name how many events match each set of them); each instant knows how many steps from
step b its events can take (`f{b}`) and the next instant with an event of each step (`n{j}`).
An attempt is then at most k - 1 hops from instant to instant, each a join.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tsunagu.analytics.walk import same_event_groups, subsets

if TYPE_CHECKING:
    from tsunagu.analytics.funnels import FunnelQuery


def statement(query: FunnelQuery, *, scan: list[str], value: str, join: str) -> str:
    """One statement answering `query` over the events `scan` selects: a row per breakdown
    value (and one with NULL for all customers) of counts, medians and p90s per step. `value`
    is a start event's breakdown value, `join` what it needs."""
    k = len(query.steps)
    marks = [f"coalesce({s.sql()}, false) AS m{i}" for i, s in enumerate(query.steps, 1)]
    marks += [f"coalesce({x.sql()}, false) AS x{j}" for j, x in enumerate(query.exclusions, 1)]
    events = (
        f"s AS (SELECT e.pid, e.r, e.instant AS i, e.ts, {value} AS b, {', '.join(marks)} "
        f"FROM analytics_events e {join}WHERE {' AND '.join(scan)})"
    )
    if query.mode == "any":
        attempts = _any_attempts(query)
    else:
        attempts = _ordered_attempts(query)
    figures = ", ".join(
        [f"count(CASE WHEN clean AND depth >= {i} THEN 1 END)" for i in range(1, k + 1)]
        + [_quantile(i, 0.5) for i in range(1, k + 1)]
        + [_quantile(i, 0.9) for i in range(1, k + 1)]
    )
    # Each customer's best attempt (deepest, clean before spoiled, the earliest of equals): an
    # aggregate, not a sort.
    kept = ", ".join(["depth", "clean", *(f"d{i}" for i in range(2, k + 1))])
    rank = "(depth * 2 + CASE WHEN clean THEN 1 ELSE 0 END) * 1000000000000 - r1"
    pick = f"arg_max(struct_pack({kept}), {rank}) AS x"
    unpacked = ", ".join(f"x.{c} AS {c}" for c in kept.split(", "))
    best = f"best AS (SELECT {unpacked} FROM (SELECT pid, {pick} FROM a GROUP BY pid))"
    parts = [f"SELECT CAST(NULL AS VARCHAR) AS b, {figures} FROM best"]
    ctes = [events, *attempts, best]
    if query.breakdown:
        ctes.append(
            f"best_b AS (SELECT b, {unpacked} FROM (SELECT pid, b, {pick} FROM a GROUP BY pid, b))"
        )
        parts.append(f"SELECT b, {figures} FROM best_b GROUP BY b")
    return "WITH " + ", ".join(ctes) + " " + " UNION ALL ".join(parts)


def _quantile(i: int, q: float) -> str:
    if i == 1:
        return "CAST(NULL AS DOUBLE)"
    return f"quantile_cont(CASE WHEN clean AND depth >= {i} THEN d{i} END, {q})"


def _any_step(steps: list[int]) -> str:
    return "(" + " OR ".join(f"m{j}" for j in steps) + ")"


def _steps_of(mask: int) -> list[int]:
    return [j for j in range(1, mask.bit_length() + 1) if mask >> (j - 1) & 1]


def _fill(query: FunnelQuery, b: int, *, start: str | None = None) -> str:
    """The last step that the events of an instant (its columns unqualified) can take from
    step b on, each a different event (less the start event `start.*`); b - 1 if none."""
    k = len(query.steps)
    groups = same_event_groups([s.event for s in query.steps])
    group_of = {j: g for g in groups for j in g}
    cases = []
    for j in range(b, k + 1):
        if len(group_of[j]) == 1:
            ok = f"h{j}"
        else:
            needs = []
            for mask in subsets(group_of[j]):
                if mask.bit_length() != j or (mask & -mask).bit_length() < b:
                    continue
                have = f"c{mask}"
                if start is not None:
                    hit = " OR ".join(f"{start}.m{s}" for s in _steps_of(mask))
                    have += f" - (CASE WHEN {hit} THEN 1 ELSE 0 END)"
                needs.append(f"{have} >= {mask.bit_count()}")
            ok = " AND ".join(needs)
        cases.append(f"WHEN NOT ({ok}) THEN {j - 1}")
    return f"(CASE {' '.join(cases)} ELSE {k} END)"


def _instants(query: FunnelQuery) -> list[str]:
    """`g`: the step events by customer and instant; `gf`: with each instant's fills and the
    next instants with an event of each step and each exclusion."""
    k = len(query.steps)
    n_x = len(query.exclusions)
    groups = same_event_groups([s.event for s in query.steps])
    counts = [
        f"count(CASE WHEN {' OR '.join(f'm{s}' for s in _steps_of(mask))} THEN 1 END) AS c{mask}"
        for g in groups
        if len(g) > 1
        for mask in subsets(g)
    ]
    has = [f"bool_or(m{j}) AS h{j}" for j in range(1, k + 1)]
    has += [f"bool_or(x{j}) AS y{j}" for j in range(1, n_x + 1)]
    g = f"g AS (SELECT pid, i, min(ts) AS ts, {', '.join(has + counts)} FROM s GROUP BY pid, i)"
    following = "(PARTITION BY pid ORDER BY i ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)"
    columns = [f"{_fill(query, b)} AS f{b}" for b in range(2, k + 1)]
    columns += [f"min(CASE WHEN h{j} THEN i END) OVER w AS n{j}" for j in range(1, k + 1)]
    for j in range(1, n_x + 1):
        columns += [
            f"min(CASE WHEN y{j} THEN i END) OVER w AS ny{j}",
            f"min(CASE WHEN y{j} THEN ts END) OVER w AS ty{j}",
        ]
    gf = f"gf AS (SELECT *, {', '.join(columns)} FROM g WINDOW w AS {following})"
    return [g, gf]


def _by_depth(depth: str, column: str, k: int, offset: int = 1) -> str:
    """`column` numbered by the step after `depth` (CASE depth WHEN 1 THEN {column}2 ...)."""
    cases = " ".join(f"WHEN {d} THEN {column.format(d + offset)}" for d in range(1, k))
    return f"(CASE {depth} {cases} END)"


def _pointers(query: FunnelQuery, g: str, h: int) -> str:
    """Hop h's next excluded instant and its time, per exclusion, from instant `g`."""
    return "".join(
        f", {g}.ny{j} AS xi{j}_{h}, {g}.ty{j} AS xt{j}_{h}"
        for j in range(1, len(query.exclusions) + 1)
    )


def _ordered_attempts(query: FunnelQuery) -> list[str]:
    """CTEs ending in `a`: one row per attempt with its customer, breakdown value, start,
    depth, cleanliness and the seconds between steps."""
    k = len(query.steps)
    window = query.seconds()
    deadline = f"a.t0 + INTERVAL {window} SECOND"
    start = (
        f"a0 AS (SELECT * FROM (SELECT s.pid, s.r AS r1, s.b, s.ts AS t0, s.i AS i0, "
        f"{_fill(query, 2, start='s')} AS d0, g.n1 AS later, g.n2 AS two{_pointers(query, 'g', 0)} "
        "FROM s JOIN gf g ON g.pid = s.pid AND g.i = s.i WHERE s.m1)"
    )
    if query.mode == "ordered":
        # No step 2 at the start's instant, and a later start before the next step 2.
        start += " WHERE NOT (d0 < 2 AND later IS NOT NULL AND (two IS NULL OR later < two))"
    ctes = [*_instants(query), start + ")"]
    for h in range(1, k):
        prev = f"a.d{h - 1}"
        if query.mode == "strict":
            on = f"g.i = a.i{h - 1} + 1 AND {_by_depth(prev, 'g.h{}', k)}"
            current = ""
        else:
            on = f"g.i = {_by_depth(prev, 'c.n{}', k)}"
            current = f"LEFT JOIN gf c ON c.pid = a.pid AND c.i = a.i{h - 1} "
        filled = f"CASE WHEN g.i IS NULL THEN {prev} ELSE {_by_depth(prev, 'g.f{}', k)} END"
        ctes.append(
            f"a{h} AS (SELECT a.*, g.i AS i{h}, g.ts AS t{h}, {filled} AS d{h}"
            f"{_pointers(query, 'g', h)} FROM a{h - 1} a {current}"
            f"LEFT JOIN gf g ON g.pid = a.pid AND {on} AND g.ts <= {deadline})"
        )
    depth = f"d{k - 1}"
    spoiled = []
    for j, (lo, hi) in enumerate(query.spans(), 1):
        # Hop h spoiled: step lo done, step hi not, an excluded event after the hop's instant,
        # before the next hop's and within the window.
        hops = []
        for h in range(k):
            before_next = f" AND (i{h + 1} IS NULL OR xi{j}_{h} < i{h + 1})" if h < k - 1 else ""
            hops.append(
                f"(i{h} IS NOT NULL AND d{h} >= {lo} AND d{h} < {hi} AND xi{j}_{h} IS NOT NULL "
                f"AND xt{j}_{h} <= t0 + INTERVAL {window} SECOND{before_next})"
            )
        if query.exclusions_mode == "attempt":
            cases = " ".join(f"WHEN {c} THEN d{h}" for h, c in enumerate(hops))
            depth = f"least({depth}, CASE {cases} ELSE {depth} END)"
        else:
            spoiled += hops
    clean = f"NOT ({' OR '.join(spoiled)})" if spoiled else "true"
    times = [
        "CASE "
        + " ".join(f"WHEN i{h} IS NOT NULL AND d{h} >= {s} THEN t{h}" for h in range(k))
        + f" END AS u{s}"
        for s in range(1, k + 1)
    ]
    done = f"c AS (SELECT pid, b, r1, {depth} AS depth, {clean} AS clean, {', '.join(times)} FROM a{k - 1})"
    return [*ctes, done, _attempts(k)]


def _any_attempts(query: FunnelQuery) -> list[str]:
    """`a` for any-order funnels: an attempt at each step event, over the events from its
    instant on; the time of its j-th step is when j different steps have had an event each."""
    k = len(query.steps)
    window = query.seconds()
    frame = "(PARTITION BY pid ORDER BY i RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)"
    reached = []
    for g in same_event_groups([s.event for s in query.steps]):
        # König: j steps of the name are matched by time t iff every set S of them has
        # j - |g| + |S| events matching one of S by then: the latest such time over the sets.
        for j in range(1, len(g) + 1):
            terms = []
            for mask in subsets(g):
                nth = j - len(g) + mask.bit_count()
                if nth < 1:
                    continue
                when = f"CASE WHEN {_any_step(_steps_of(mask))} THEN ts END"
                if nth == 1:
                    terms.append(f"min({when}) OVER w")
                else:
                    terms.append(f"nth_value({when}, {nth} IGNORE NULLS) OVER w")
            if len(terms) == 1:
                reached.append(terms[0])
            else:
                missing = " OR ".join(f"{t} IS NULL" for t in terms)
                reached.append(
                    f"CASE WHEN {missing} THEN NULL ELSE greatest({', '.join(terms)}) END"
                )
    deadline = f"ts + INTERVAL {window} SECOND"
    steps_sql = _any_step(list(range(1, k + 1)))
    sorted_times = f"list_sort(list_filter([{', '.join(reached)}], lambda x: x IS NOT NULL))"
    w = (
        f"w AS (SELECT pid, r AS r1, i, ts, b, {steps_sql} AS anchor, {sorted_times} AS times "
        f"FROM s WINDOW w AS {frame})"
    )
    c0 = (
        f"c0 AS (SELECT *, len(list_filter(times, lambda x: x <= {deadline})) AS depth0 FROM w "
        "WHERE anchor)"
    )
    ctes = [w, c0]
    depth, clean = "depth0", "true"
    if query.exclusions:
        # The first excluded event after the start's instant, within the window, before the
        # last step and not at a step's instant.
        xs = " OR ".join(f"x{j}" for j in range(1, len(query.exclusions) + 1))
        ctes.append(
            "sp AS (SELECT c0.pid, c0.r1, min(x.ts) AS spoil FROM c0 JOIN "
            f"(SELECT DISTINCT pid, i, ts FROM s WHERE {xs}) x ON x.pid = c0.pid AND x.i > c0.i "
            f"AND x.ts <= c0.ts + INTERVAL {window} SECOND "
            f"AND (c0.depth0 < {k} OR x.ts < c0.times[{k}]) "
            "AND NOT list_contains(list_filter(c0.times, lambda t: t <= c0.ts + "
            f"INTERVAL {window} SECOND), x.ts) GROUP BY c0.pid, c0.r1)"
        )
        if query.exclusions_mode == "attempt":
            depth = (
                "CASE WHEN spoil IS NULL THEN depth0 "
                "ELSE len(list_filter(times, lambda x: x < spoil)) END"
            )
        else:
            clean = "spoil IS NULL"
    times = [f"times[{s}] AS u{s}" for s in range(1, k + 1)]
    spoils = " LEFT JOIN sp USING (pid, r1)" if query.exclusions else ""
    ctes.append(
        f"c AS (SELECT pid, b, r1, {depth} AS depth, {clean} AS clean, {', '.join(times)} "
        f"FROM c0{spoils})"
    )
    return [*ctes, _attempts(k)]


def _attempts(k: int) -> str:
    """`a`: an attempt's customer, breakdown value, start, depth and times between steps."""
    durations = ", ".join(
        f"date_diff('millisecond', u{i - 1}, u{i}) / 1000.0 AS d{i}" for i in range(2, k + 1)
    )
    return f"a AS (SELECT pid, b, r1, CAST(depth AS BIGINT) AS depth, clean, {durations} FROM c)"
