"""Funnels walked in numpy over step events fetched in customer order (the DuckDB engine's way).

`funnels.funnel_sql` answers a funnel in one portable SQL statement, but on two cores its
window over every step event and its chain of self-joins take well over a second on ten
million events. Here the engine fetches only the step events (customer, time, which steps and
exclusions each matches, breakdown value), ordered by customer and position, and the walk is a
handful of vectorised passes: "the next event matching step k after this one" is a reversed
running minimum, a chain of steps is indexing, and a customer's best attempt is a max over
contiguous runs. It keeps the definitions of `funnels` exactly; the tests hold both to the
plain-Python reading. (PostHog does the same with a UDF inside ClickHouse.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.signedinteger[Any]]
Bools = npt.NDArray[np.bool_]

START_BIT = 1 << 30
"""Set on step-1 (or any-step) events inside [from, to): the events an attempt may start at."""


@dataclass(slots=True)
class Attempts:
    """Each customer's best attempt (or, with a breakdown, best per value)."""

    pid: Ints
    start: Ints
    """The row the attempt starts at."""
    group: Ints
    """Breakdown code of the attempt (0 without a breakdown)."""
    depth: Ints
    seconds: list[npt.NDArray[np.float64]]
    """seconds[i]: time from step i to step i+1 (i = 1..k-1), for attempts that got there."""


def customer_order(pid: Ints, r: Ints) -> Ints | None:
    """None if each customer's rows are contiguous and in event order (as the analytics table
    is written, and as a scan returns it), else the order that makes them so."""
    if len(pid) < 2:
        return None
    same = pid[1:] == pid[:-1]
    in_order = bool(np.all((r[1:] > r[:-1]) | ~same))
    heads = pid[np.flatnonzero(np.r_[True, ~same])]
    if in_order and np.bincount(heads).max() <= 1:
        return None
    return np.lexsort((r, pid))


def _following(positions: Ints, rows: Ints, pid: Ints, *, inclusive: bool) -> Ints:
    """For each of `rows`, the first of `positions` (sorted row indices) after it (or at it),
    of the same customer; -1 where there is none."""
    if len(positions) == 0:
        return np.full(len(rows), -1, dtype=np.int64)
    j = np.searchsorted(positions, rows, side="left" if inclusive else "right")
    found = positions[np.minimum(j, len(positions) - 1)]
    return np.where((j < len(positions)) & (pid[found] == pid[rows]), found, -1)


def walk(
    *,
    pid: Ints,
    r: Ints,
    us: Ints,
    bits: Ints,
    group: Ints,
    steps: int,
    mode: str,
    window_us: int,
    exclusions: list[tuple[int, int]],
) -> Attempts:
    """Attempts from rows in customer order (`pid` runs contiguous, each in event order; `r`
    is the event's position among all of its customer's events)."""
    if mode == "any":
        return _walk_any(pid, us, bits, group, steps, window_us)
    n = len(pid)
    is_start = (bits & (START_BIT | 1)) == (START_BIT | 1)
    starts = np.flatnonzero(is_start)
    if mode == "ordered":
        # Among the starts and the step-2 events, what follows a start decides: a step 2 is
        # its step 2; another start supersedes it (no attempt of its own); nothing, no step 2.
        is_two = (bits & 2) > 0
        rel = np.flatnonzero(is_start | is_two)
        then = np.append(rel[1:], -1)
        same = np.append(pid[rel[1:]] == pid[rel[:-1]], False)
        then_two = same & np.append(is_two[rel[1:]], False)
        superseded = same & ~then_two
        attempt = is_start[rel] & ~superseded
        starts = rel[attempt]
        second = np.where(then_two[attempt], then[attempt], -1)
    # chain[i][a]: the row of attempt a's step i+1, -1 once the attempt has stopped. Only the
    # attempts still going are looked at, step after step.
    chain = [starts]
    going = np.arange(len(starts))
    at = starts
    deadline = us[starts] + window_us
    for k in range(2, steps + 1):
        if mode == "ordered" and k == 2:
            nxt = second
        elif mode == "strict":
            nxt = np.minimum(at + 1, max(n - 1, 0))
            ok = (at + 1 < n) & (pid[nxt] == pid[at]) & (r[nxt] == r[at] + 1)
            ok &= (bits[nxt] & (1 << (k - 1))) > 0
            nxt = np.where(ok, nxt, -1)
        else:
            nxt = _following(np.flatnonzero(bits & (1 << (k - 1))), at, pid, inclusive=False)
        ok = nxt >= 0
        ok[ok] = us[nxt[ok]] <= deadline[ok]
        step = np.full(len(starts), -1, dtype=np.int64)
        step[going[ok]] = nxt[ok]
        chain.append(step)
        going, at, deadline = going[ok], nxt[ok], deadline[ok]
    depth = np.ones(len(starts), dtype=np.int64)
    for c in chain[1:]:
        depth += c >= 0
    for j, (a, b) in enumerate(exclusions):
        # The first excluded event after step a ends the attempt before any later step.
        x = np.full(len(starts), -1, dtype=np.int64)
        has = chain[a - 1] >= 0
        x[has] = _following(
            np.flatnonzero(bits & (1 << (10 + j))), chain[a - 1][has], pid, inclusive=False
        )
        capped = depth.copy()
        done = x < 0
        for i in range(a + 1, b + 1):
            hit = ~done & (depth >= i) & (chain[i - 1] > x)
            capped[hit] = i - 1
            done |= hit
        depth = np.minimum(depth, capped)
    chosen = _choose(pid[starts], starts, depth, group[starts])
    depth, rows = depth[chosen], [c[chosen] for c in chain]
    seconds = []
    for i in range(1, steps):
        reached = depth >= i + 1
        gap = np.full(len(chosen), np.nan)
        to, since = rows[i][reached], rows[i - 1][reached]
        gap[reached] = (us[to] // 1000 - us[since] // 1000) / 1000.0
        seconds.append(gap)
    return Attempts(
        pid=pid[starts][chosen],
        start=starts[chosen],
        group=group[starts][chosen],
        depth=depth,
        seconds=seconds,
    )


def _walk_any(pid: Ints, us: Ints, bits: Ints, group: Ints, steps: int, window_us: int) -> Attempts:
    any_step = (bits & ((1 << steps) - 1)) > 0
    anchors = np.flatnonzero(any_step & ((bits & START_BIT) > 0))
    never = np.iinfo(np.int64).max
    firsts = []
    for j in range(1, steps + 1):
        row = _following(np.flatnonzero(bits & (1 << (j - 1))), anchors, pid, inclusive=True)
        firsts.append(np.where(row >= 0, us[np.maximum(row, 0)], never))
    deadline = us[anchors] + window_us
    done_at = np.maximum.accumulate(np.vstack(firsts), axis=0)  # steps 1..i all done
    reached = done_at <= deadline  # a step never done sits at +inf, and so every later one
    depth = reached.sum(axis=0).astype(np.int64)
    chosen = _choose(pid[anchors], anchors, depth, group[anchors])
    depth, done_ms = depth[chosen], done_at[:, chosen] // 1000
    seconds = [
        np.where(depth >= i + 1, (done_ms[i] - done_ms[i - 1]) / 1000.0, np.nan)
        for i in range(1, steps)
    ]
    return Attempts(
        pid=pid[anchors][chosen],
        start=anchors[chosen],
        group=group[anchors][chosen],
        depth=depth,
        seconds=seconds,
    )


def overall(by_group: Attempts) -> Attempts:
    """Each customer's best attempt of all, from their best per breakdown value: every attempt
    has one value, so the deepest (earliest of equals) of the values' bests is the one a walk
    without a breakdown would choose."""
    none = np.zeros(len(by_group.pid), dtype=np.int64)
    chosen = _choose(by_group.pid, by_group.start, by_group.depth, none)
    return Attempts(
        pid=by_group.pid[chosen],
        start=by_group.start[chosen],
        group=none[chosen],
        depth=by_group.depth[chosen],
        seconds=[s[chosen] for s in by_group.seconds],
    )


def _choose(pid: Ints, start: Ints, depth: Ints, group: Ints) -> Ints:
    """Indices of the deepest attempt of each (customer, group), the earliest of equals.
    Attempts come in row order, so a customer's are contiguous; with groups they are sorted
    first."""
    if len(pid) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.arange(len(pid))
    if group.any():
        order = np.lexsort((start, group, pid))
        pid, start, depth, group = pid[order], start[order], depth[order], group[order]
    heads = np.flatnonzero(np.r_[True, (pid[1:] != pid[:-1]) | (group[1:] != group[:-1])])
    key = depth * (int(start.max()) + 1) - start
    best = np.maximum.reduceat(key, heads)
    return order[key == np.repeat(best, np.diff(np.r_[heads, len(key)]))]


def figures(attempts: Attempts, steps: int, group: int | None = None) -> list[object]:
    """[customers per step..., median per step..., p90 per step...] like the SQL's row."""
    sel = np.ones(len(attempts.depth), dtype=bool) if group is None else attempts.group == group
    depth = attempts.depth[sel]
    counts: list[object] = [int((depth >= i).sum()) for i in range(1, steps + 1)]
    medians: list[object] = [None]
    p90s: list[object] = [None]
    for i in range(1, steps):
        values = attempts.seconds[i - 1][sel][depth >= i + 1]
        if len(values):
            median, p90 = np.percentile(values, [50, 90])
            medians.append(float(median))
            p90s.append(float(p90))
        else:
            medians.append(None)
            p90s.append(None)
    return counts + medians + p90s
