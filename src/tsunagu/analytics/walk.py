"""Funnels walked in numpy over step events fetched in customer order (the DuckDB engine's way).

`funnels.funnel_sql` answers a funnel in one portable SQL statement, but on two cores its
windows and self-joins take well over a second on ten million events. Here the engine fetches
only the step events (customer, time, instant, which steps and exclusions each matches,
breakdown value), ordered by customer and position, and the walk is a handful of vectorised
passes over the customers' *instants* (the events at one moment, which count in any order):
"the next instant with an event of step k" is a search in a sorted array, how many steps one
instant fills is a few bit and count tests, and a customer's best attempt is a max over
contiguous runs. It keeps the definitions of `funnels` exactly; the tests hold both to the
plain-Python reading. (PostHog does the same with a UDF inside ClickHouse.)
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.signedinteger[Any]]
Bools = npt.NDArray[np.bool_]

EXCLUSION_BIT = 10
"""Exclusion j (0-based) is bit EXCLUSION_BIT + j of an event's bits; step i is bit i - 1."""
NEVER = np.iinfo(np.int64).max


@dataclass(slots=True)
class Attempts:
    """Each customer's best attempt (or, with a breakdown, best per value)."""

    pid: Ints
    start: Ints
    """The row the attempt starts at."""
    group: Ints
    """Breakdown code of the attempt (0 without a breakdown)."""
    depth: Ints
    clean: Bools
    """False where an exclusion spoiled the attempt: its customer is out of the funnel."""
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


def _following(positions: Ints, rows: Ints, pid: Ints, *, inclusive: bool, nth: int = 1) -> Ints:
    """For each of `rows`, the nth of `positions` (sorted indices) after it (or at it), of the
    same customer; -1 where there is none."""
    if len(positions) == 0 or len(rows) == 0:
        return np.full(len(rows), -1, dtype=np.int64)
    j = np.searchsorted(positions, rows, side="left" if inclusive else "right") + (nth - 1)
    found = positions[np.minimum(j, len(positions) - 1)]
    return np.where((j < len(positions)) & (pid[found] == pid[rows]), found, -1)


def same_event_groups(events: list[str]) -> list[list[int]]:
    """The steps (1-based) of each event name: only steps of one name can share an event."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(events, 1):
        groups.setdefault(name, []).append(i)
    return list(groups.values())


def subsets(steps: list[int]) -> list[int]:
    """Every non-empty subset of `steps`, as a bit mask."""
    return [
        sum(1 << (s - 1) for s in chosen)
        for size in range(1, len(steps) + 1)
        for chosen in combinations(steps, size)
    ]


class _Instants:
    """The instants of the rows read (a customer's events at one moment), one entry each, and
    which steps their events can fill together."""

    def __init__(
        self,
        pid: Ints,
        us: Ints,
        instant: Ints | None,
        bits: Ints,
        steps: int,
        groups: list[list[int]],
    ) -> None:
        n = len(pid)
        head = np.ones(n, dtype=bool)
        head[1:] = (pid[1:] != pid[:-1]) | (us[1:] != us[:-1])
        self.ties = not head.all()
        if not self.ties:  # each row an instant of its own
            self.first = self.of_row = np.arange(n)
            self.pid, self.us, self.instant, self.bits = pid, us, instant, bits
        else:
            self.first = np.flatnonzero(head)
            self.of_row = np.cumsum(head, dtype=np.int64) - 1
            self.pid, self.us = pid[self.first], us[self.first]
            self.instant = None if instant is None else instant[self.first]
            self.bits = np.bitwise_or.reduceat(bits, self.first)
        self.steps, self.groups = steps, groups
        # Hall's condition for steps of one name: every set S of them needs |S| events each
        # matching one of S. Counted per instant for the names of several steps, where an
        # instant can hold several events.
        self.shared = {s for g in groups if len(g) > 1 for s in g}
        self.counts = {
            mask: np.add.reduceat(((bits & mask) != 0).astype(np.int32), self.first)
            for g in (groups if self.ties else [])
            if len(g) > 1
            for mask in subsets(g)
        }
        self._with_step: dict[int, Ints] = {}

    def with_step(self, j: int) -> Ints:
        """The instants with an event of step j, in order."""
        if j not in self._with_step:
            self._with_step[j] = np.flatnonzero((self.bits & (1 << (j - 1))) != 0)
        return self._with_step[j]

    def fill(self, at: Ints, b: Ints, minus: Ints | None = None) -> Ints:
        """The last step c such that steps b..c can each take a different event of instant
        `at` (less the event of bits `minus`, the attempt's start); b - 1 if none."""
        c = b - 1
        if not self.ties:  # one event, one step at most
            if minus is not None:
                return c
            return np.where((self.bits[at] >> c) & 1, b, c)
        going = np.ones(len(at), dtype=bool)
        minus = np.zeros(len(at), dtype=np.int64) if minus is None else minus
        for j in range(int(b.min(initial=self.steps + 1)), self.steps + 1):
            bit = 1 << (j - 1)
            if not going.any():
                break
            rel = going & (b <= j)  # going on from step b; those from a later step wait
            if j in self.shared:
                ok = np.ones(len(at), dtype=bool)
                for mask, count in self.counts.items():
                    if mask.bit_length() != j:  # sets whose last step is j
                        continue
                    low = (mask & -mask).bit_length()
                    need = mask.bit_count()
                    have = count[at] - ((minus & mask) != 0)
                    ok &= (low < b) | (have >= need)
            else:
                ok = (self.bits[at] & bit) != 0
            going &= ~rel | ok
            c = np.where(rel & going, j, c)
        return c


def walk(
    *,
    pid: Ints,
    us: Ints,
    instant: Ints | None,
    bits: Ints,
    group: Ints,
    events: list[str],
    mode: str,
    window_us: int,
    exclusions: list[tuple[int, int]],
    spoil_customer: bool = True,
) -> Attempts:
    """Attempts from rows in customer order (`pid` runs contiguous, each in event order;
    `instant`, needed in strict mode only, is the place of the event's moment among all of its
    customer's moments)."""
    steps = len(events)
    if len(pid) == 0:
        none = np.zeros(0, dtype=np.int64)
        no_seconds = [np.zeros(0, dtype=np.float64) for _ in range(steps - 1)]
        return Attempts(none, none, none, none, np.zeros(0, dtype=bool), no_seconds)
    inst = _Instants(pid, us, instant, bits, steps, same_event_groups(events))
    if mode == "any":
        return _walk_any(inst, pid, us, bits, group, steps, window_us, exclusions, spoil_customer)
    if mode == "ordered":
        starts, at, depth, second = _ordered_starts(inst, bits, steps)
    else:
        starts = np.flatnonzero((bits & 1) != 0)  # every event read is in range
        at = inst.of_row[starts]
        depth = _start_fill(inst, at, bits[starts], steps)
    deadline = us[starts] + window_us
    # When each step was done: those of the start's instant at its time, the rest hop by hop.
    step_us = np.full((steps, len(starts)), NEVER, dtype=np.int64)
    step_us[0] = us[starts]
    for s in range(2, int(depth.max(initial=1)) + 1):
        step_us[s - 1][depth >= s] = step_us[0][depth >= s]
    # Hop by hop, the attempts still going (`live`), each at an instant with the steps done.
    moves = [(np.arange(len(starts)), at, depth.copy())] if exclusions else []
    live = np.flatnonzero(depth < steps)
    cur, done, until = at[live], depth[live], deadline[live]
    while len(live):
        need = done + 1
        if mode == "strict":
            nxt = np.minimum(cur + 1, len(inst.pid) - 1)
            ok = (nxt == cur + 1) & (inst.pid[nxt] == inst.pid[cur])
            assert inst.instant is not None, "a strict funnel reads each event's instant"
            ok &= inst.instant[nxt] == inst.instant[cur] + 1
            nxt = np.where(ok, nxt, -1)
        else:
            nxt = np.full(len(live), -1, dtype=np.int64)
            for j in range(2, steps + 1):
                sel = need == j
                if not sel.any():
                    continue
                if j == 2 and mode == "ordered":  # only from the start's instant
                    nxt[sel] = second[live[sel]]
                else:
                    nxt[sel] = _following(inst.with_step(j), cur[sel], inst.pid, inclusive=False)
        ok = nxt >= 0
        ok[ok] = inst.us[nxt[ok]] <= until[ok]
        live, nxt, need, until = live[ok], nxt[ok], need[ok], until[ok]
        if inst.ties or mode == "strict":
            done = inst.fill(nxt, need)
            ok = done >= need  # (a strict funnel's next instant may have no step for it)
            live, nxt, need, until, done = live[ok], nxt[ok], need[ok], until[ok], done[ok]
            for j in range(2, steps + 1):
                now = (need <= j) & (done >= j)
                step_us[j - 1, live[now]] = inst.us[nxt[now]]
        else:  # the instant is one event, of the step needed
            done = need
            step_us[need - 1, live] = inst.us[nxt]
        depth[live] = done
        if exclusions:
            moves.append((live, nxt, done))
        going = done < steps
        live, cur, done, until = live[going], nxt[going], done[going], until[going]
    clean = np.ones(len(starts), dtype=bool)
    # hops[h]: the instant of each attempt's h-th moment, -1 where it had stopped; reached[h]:
    # the steps done by then.
    hops, reached = [], []
    for moved, instant_of, steps_done in moves:
        hop = np.full(len(starts), -1, dtype=np.int64)
        hop[moved] = instant_of
        hops.append(hop)
        reached.append(np.full(len(starts), -1, dtype=np.int64))
        reached[-1][moved] = steps_done
    for j, (a, b) in enumerate(exclusions):
        # Spoiled: an excluded event after step a's instant and before step b's (not at an
        # instant of a step), within the attempt's window.
        excluded = np.flatnonzero((inst.bits & (1 << (EXCLUSION_BIT + j))) != 0)
        spoiled_at = np.full(len(starts), -1, dtype=np.int64)
        for h, hop in enumerate(hops):
            between = (hop >= 0) & (reached[h] >= a) & (reached[h] < b)
            x = _following(excluded, np.maximum(hop, 0), inst.pid, inclusive=False)
            after = hops[h + 1] if h + 1 < len(hops) else np.full(len(starts), -1)
            x_ok = between & (x >= 0)
            x_ok[x_ok] = inst.us[x[x_ok]] <= deadline[x_ok]
            x_ok &= (after < 0) | (x < after)
            first = x_ok & (spoiled_at < 0)
            spoiled_at[first] = x[first]
            if not spoil_customer:  # the attempt ends before the excluded event
                depth[first] = np.minimum(depth[first], reached[h][first])
        if spoil_customer:
            clean &= spoiled_at < 0
    return _best(pid[starts], starts, group[starts], depth, clean, step_us)


def _start_fill(inst: _Instants, at: Ints, start_bits: Ints, steps: int) -> Ints:
    """The steps done at each start's instant: its own and those the other events there take."""
    if not inst.ties:
        return np.ones(len(at), dtype=np.int64)
    return inst.fill(at, np.full(len(at), 2), minus=start_bits & ((1 << steps) - 1))


def _ordered_starts(inst: _Instants, bits: Ints, steps: int) -> tuple[Ints, Ints, Ints, Ints]:
    """The attempts of an ordered funnel: (their start rows, instants, steps done there, the
    instant of their step 2 where it comes later).

    A start whose instant fills no step 2 is superseded by a later start (at a later instant)
    before the next instant with a step 2: who looks at five products and then adds one to the
    cart converted from the fifth look. What comes next among the instants with a step 1 (every
    step-1 event read is a start: it is in range) or a step 2 decides."""
    rel = np.flatnonzero((inst.bits & 3) != 0)
    then = np.r_[rel[1:], 0]
    follows = np.r_[inst.pid[rel[1:]] == inst.pid[rel[:-1]], False]
    later = follows & ((inst.bits[then] & 3) == 1)
    second = np.where(follows & ((inst.bits[then] & 2) != 0), then, -1)
    if not inst.ties:  # a row an instant, one step each: no step 2 at a start's instant
        kept = ((inst.bits[rel] & 1) != 0) & ~later
        starts = rel[kept]
        return starts, starts, np.ones(len(starts), dtype=np.int64), second[kept]
    starts = np.flatnonzero((bits & 1) != 0)
    at = inst.of_row[starts]
    depth = _start_fill(inst, at, bits[starts], steps)
    where = np.searchsorted(rel, at)  # each start's instant among them
    kept = ~((depth < 2) & later[where])
    return starts[kept], at[kept], depth[kept], second[where[kept]]


def _walk_any(
    inst: _Instants,
    pid: Ints,
    us: Ints,
    bits: Ints,
    group: Ints,
    steps: int,
    window_us: int,
    exclusions: list[tuple[int, int]],
    spoil_customer: bool,
) -> Attempts:
    """An attempt at each step event in range: the events from its instant on, within the
    window; step k is done when k different steps have had an event each."""
    step_bits = bits & ((1 << steps) - 1)
    anchors = np.flatnonzero(step_bits != 0)  # every event read is in range
    at = inst.of_row[anchors]
    since = inst.first[at]
    deadline = us[anchors] + window_us
    done_at = []
    for g in inst.groups:
        # König: j steps of the name are matched by the time t iff every set S of its steps
        # has at least j - |g| + |S| events matching one of S by t: the latest of those
        # events' times, over the sets S.
        masks = subsets(g)
        positions = {m: np.flatnonzero((step_bits & m) != 0) for m in masks}
        for j in range(1, len(g) + 1):
            when = np.zeros(len(anchors), dtype=np.int64)
            for m in masks:
                nth = j - len(g) + m.bit_count()
                if nth < 1:
                    continue
                row = _following(positions[m], since, pid, inclusive=True, nth=nth)
                when = np.maximum(when, np.where(row >= 0, us[np.maximum(row, 0)], NEVER))
            done_at.append(when)
    times = np.vstack(done_at)  # in no order: sorted for the chosen attempts only
    reached = times <= deadline
    depth = reached.sum(axis=0).astype(np.int64)
    clean = np.ones(len(anchors), dtype=bool)
    for j, _ in enumerate(exclusions):
        excluded = np.flatnonzero((inst.bits & (1 << (EXCLUSION_BIT + j))) != 0)
        x = _following(excluded, at, inst.pid, inclusive=False)
        for _ in range(steps):  # an excluded event at the instant of a step does not count
            at_step = (x >= 0) & np.any((times == inst.us[np.maximum(x, 0)]) & reached, axis=0)
            if not at_step.any():
                break
            x[at_step] = _following(excluded, x[at_step], inst.pid, inclusive=False)
        x_ok = x >= 0
        when = inst.us[np.maximum(x, 0)]
        x_ok &= when <= deadline
        x_ok &= (depth < steps) | (when < times.max(axis=0))
        if spoil_customer:
            clean &= ~x_ok
        else:
            depth = np.where(x_ok, np.minimum(depth, (times < when).sum(axis=0)), depth)
    return _best(pid[anchors], anchors, group[anchors], depth, clean, times, ordered=False)


def _best(
    pid: Ints,
    start: Ints,
    group: Ints,
    depth: Ints,
    clean: Bools,
    times: Ints,
    *,
    ordered: bool = True,
) -> Attempts:
    """Each (customer, group)'s best attempt, from every attempt and when it did each step
    (in no `ordered` way: when it had done 1, 2, ... steps once sorted)."""
    chosen = _choose(pid, start, depth * 2 + clean, group)
    depth = depth[chosen]
    columns = chosen
    if not ordered:
        times, columns = np.sort(times[:, chosen], axis=0), np.arange(len(chosen))
    seconds = []
    for i in range(1, len(times)):
        reached = np.flatnonzero(depth >= i + 1)
        ms = times[i - 1 : i + 1, columns[reached]] // 1000
        gap = np.full(len(chosen), np.nan)
        gap[reached] = (ms[1] - ms[0]) / 1000.0
        seconds.append(gap)
    return Attempts(
        pid=pid[chosen],
        start=start[chosen],
        group=group[chosen],
        depth=depth,
        clean=clean[chosen],
        seconds=seconds,
    )


def overall(by_group: Attempts) -> Attempts:
    """Each customer's best attempt of all, from their best per breakdown value: every attempt
    has one value, so the best of the values' bests is the one a walk without a breakdown
    would choose."""
    none = np.zeros(len(by_group.pid), dtype=np.int64)
    rank = by_group.depth * 2 + by_group.clean
    chosen = _choose(by_group.pid, by_group.start, rank, none)
    return Attempts(
        pid=by_group.pid[chosen],
        start=by_group.start[chosen],
        group=none[chosen],
        depth=by_group.depth[chosen],
        clean=by_group.clean[chosen],
        seconds=[s[chosen] for s in by_group.seconds],
    )


def _choose(pid: Ints, start: Ints, rank: Ints, group: Ints) -> Ints:
    """Indices of the best-ranked attempt of each (customer, group), the earliest of equals.
    Attempts come in row order, so a customer's are contiguous; with groups they are sorted
    first."""
    if len(pid) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.arange(len(pid))
    if group.any():
        order = np.lexsort((start, group, pid))
        pid, start, rank, group = pid[order], start[order], rank[order], group[order]
    heads = np.flatnonzero(np.r_[True, (pid[1:] != pid[:-1]) | (group[1:] != group[:-1])])
    key = rank * (int(start.max()) + 1) - start
    best = np.maximum.reduceat(key, heads)
    return order[key == np.repeat(best, np.diff(np.r_[heads, len(key)]))]


def figures(attempts: Attempts, steps: int, group: int | None = None) -> list[object]:
    """[customers per step..., median per step..., p90 per step...] like the SQL's row: the
    customers whose best attempt is clean."""
    sel = attempts.clean.copy()
    if group is not None:
        sel &= attempts.group == group
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
