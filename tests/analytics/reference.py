"""Analyses read the slow, obvious way: plain Python over every customer's event list.

Written from the definitions in the analytics modules' docstrings, not from their SQL; the
tests hold the SQL to the same answers.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from tsunagu.store import Store


@dataclass
class Ev:
    pid: int
    seq: int
    ts: datetime
    event: str
    channel: str
    store_id: str | None
    sku: str | None
    category: str | None
    skus: list[str] | None
    categories: list[str] | None
    revenue: int | None
    order_id: str | None
    name: str | None
    day: date
    props: dict[str, Any]


def histories(store: Store) -> dict[int, list[Ev]]:
    """Each customer's events, in time order, arrival order at the same instant."""
    rows = store.query(
        "SELECT pid, seq, ts, event, channel, store_id, sku, category, skus, categories, "
        "revenue, order_id, name, day, properties FROM analytics_events"
    )
    out: dict[int, list[Ev]] = defaultdict(list)
    for row in rows:
        *head, props = row
        out[row[0]].append(Ev(*head, props=json.loads(props) if props else {}))
    for evs in out.values():
        evs.sort(key=lambda e: (e.ts, e.seq))
    return out


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _prop(e: Ev, key: str) -> Any:
    if key in ("store_id", "order_id", "name", "revenue"):
        return getattr(e, key)
    value: Any = e.props
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _holds(e: Ev, key: str, op: str, want: Any) -> bool:
    if op == "in":
        return any(_holds(e, key, "eq", w) for w in want)
    if key in ("sku", "category"):
        single = getattr(e, key)
        many = getattr(e, {"sku": "skus", "category": "categories"}[key]) or []
        hit = single == want or want in many
        return hit if op == "eq" else not hit
    have = _prop(e, key)
    if isinstance(want, bool):
        text = _json_text(have) if not isinstance(have, str) else have
        have, want = text, "true" if want else "false"
    elif isinstance(want, int | float):
        try:
            have = None if have is None else float(have)
        except (TypeError, ValueError):
            have = None
        want = float(want)
    else:
        have = have if isinstance(have, str) or have is None else _json_text(have)
    if op == "ne":
        return have is None or have != want
    if have is None:
        return False
    return {
        "eq": have == want,
        "gt": have > want,
        "gte": have >= want,
        "lt": have < want,
        "lte": have <= want,
    }[op]


def matches(step: dict[str, Any], e: Ev) -> bool:
    if e.event != step["event"]:
        return False
    channel = step.get("channel")
    if channel is not None:
        channels = [channel] if isinstance(channel, str) else channel
        if e.channel not in channels:
            return False
    for key, cond in (step.get("where") or {}).items():
        if isinstance(cond, dict):
            if not all(_holds(e, key, op, v) for op, v in cond.items()):
                return False
        elif isinstance(cond, list):
            if not _holds(e, key, "in", cond):
                return False
        elif not _holds(e, key, "eq", cond):
            return False
    return True


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _instants(evs: list[Ev]) -> list[int]:
    """Each event's moment among the customer's moments (events at one instant share it)."""
    moments = sorted({e.ts for e in evs})
    place = {t: n for n, t in enumerate(moments)}
    return [place[e.ts] for e in evs]


def _fills(events: list[Ev], steps: list[dict[str, Any]]) -> bool:
    """Each of `steps` can take a different one of `events` (tried every way)."""
    if not steps:
        return True
    return any(
        matches(steps[0], e) and _fills(events[:n] + events[n + 1 :], steps[1:])
        for n, e in enumerate(events)
    )


def _fill(events: list[Ev], steps: list[dict[str, Any]]) -> int:
    """How many of `steps`, from the first, the events of one instant can take."""
    n = 0
    while n < len(steps) and _fills(events, steps[: n + 1]):
        n += 1
    return n


def _deadline(start: datetime, window: timedelta, hi: datetime | None) -> datetime:
    """The last moment of an attempt: its window, inside [from, to)."""
    end = start + window
    return end if hi is None else min(end, hi - timedelta(microseconds=1))


def _attempt_ordered(
    evs: list[Ev],
    inst: list[int],
    start: int,
    steps: list[dict[str, Any]],
    deadline: datetime,
    strict: bool,
) -> list[int]:
    """The instant of each step reached: each as early as it can be, as many steps at an
    instant as its events can take (one step each, in any order)."""
    at = {m: [e for e, n in zip(evs, inst, strict=True) if n == m] for m in set(inst)}
    first = inst[start]
    others = [e for e in at[first] if e is not evs[start]]
    chain = [first] * (1 + _fill(others, steps[1:]))
    while len(chain) < len(steps):
        step = steps[len(chain)]
        later = sorted(m for m in at if m > chain[-1] and any(matches(step, e) for e in at[m]))
        if strict:
            later = [m for m in later if m == chain[-1] + 1]
        if not later or at[later[0]][0].ts > deadline:
            break
        chain += [later[0]] * _fill(at[later[0]], steps[len(chain) :])
    return chain


def _superseded(
    evs: list[Ev],
    inst: list[int],
    i: int,
    chain: list[int],
    steps: list[dict[str, Any]],
    lo: datetime | None,
    hi: datetime | None,
) -> bool:
    """No step 2 at the start's instant, and another start comes at a later instant before
    the next instant with a step 2."""
    if len(chain) >= 2 and chain[1] == chain[0]:
        return False
    for m in sorted({n for n in inst if n > inst[i]}):
        here = [e for e, n in zip(evs, inst, strict=True) if n == m]
        if any(matches(steps[1], e) for e in here):
            return False
        if any(matches(steps[0], e) and _in(e, lo, hi) for e in here):
            return True
    return False


def _spoiler(
    evs: list[Ev],
    inst: list[int],
    chain: list[int],
    exclusions: list[dict[str, Any]],
    k: int,
    deadline: datetime,
) -> int | None:
    """The instant of the first excluded event that spoils the attempt: after step a's
    instant, before step b's (or b never reached), within the window, not at a step's instant."""
    spoilers = []
    for ex in exclusions:
        a, b = ex.get("between") or (1, k)
        if len(chain) < a:
            continue
        for e, n in zip(evs, inst, strict=True):
            if (
                matches(ex, e)
                and n > chain[a - 1]
                and e.ts <= deadline
                and (len(chain) < b or n < chain[b - 1])
                and n not in chain
            ):
                spoilers.append(n)
                break
    return min(spoilers, default=None)


def _augment(
    step: int, steps: list[dict[str, Any]], window: list[Ev], owner: dict[int, int], seen: set[int]
) -> bool:
    """Kuhn's augmenting path: give `step` an event, moving others along."""
    for n, e in enumerate(window):
        if n in seen or not matches(steps[step], e):
            continue
        seen.add(n)
        if n not in owner or _augment(owner[n], steps, window, owner, seen):
            owner[n] = step
            return True
    return False


def _attempt_any(
    evs: list[Ev], inst: list[int], start: int, steps: list[dict[str, Any]], deadline: datetime
) -> list[datetime]:
    """When the attempt had done 1, 2, ... different steps (a step an event, in any order)."""
    window = [e for e, n in zip(evs, inst, strict=True) if n >= inst[start] and e.ts <= deadline]
    times: list[datetime] = []
    for n, e in enumerate(window):
        seen = window[: n + 1]
        owner: dict[int, int] = {}
        matched = sum(_augment(s, steps, seen, owner, set()) for s in range(len(steps)))
        times += [e.ts] * (matched - len(times))
    return times


def funnel(
    hist: dict[int, list[Ev]],
    query: dict[str, Any],
    *,
    lo: datetime | None,
    hi: datetime | None,
    breakdown_of: Any = None,
) -> dict[str, Any]:
    """{"steps": [(customers, median, p90), ...], "groups": {value: same}}."""
    steps = query["steps"]
    k = len(steps)
    window = timedelta(seconds=query["window_seconds"])
    mode = query.get("mode", "ordered")
    exclusions = query.get("exclusions") or []
    by_customer = query.get("exclusions_mode", "customer") == "customer"
    best: dict[Any, tuple[int, bool, list[datetime]]] = {}
    best_by_group: dict[tuple[Any, Any], tuple[int, bool, list[datetime]]] = {}
    for pid, evs in hist.items():
        inst = _instants(evs)
        for i, e in enumerate(evs):
            if not _in(e, lo, hi):
                continue
            deadline = _deadline(e.ts, window, hi)
            if mode == "any":
                if not any(matches(s, e) for s in steps):
                    continue
                times = _attempt_any(evs, inst, i, steps, deadline)
                last = times[-1] if len(times) == k else None
                spoilers = [
                    x.ts
                    for ex in exclusions
                    for x, n in zip(evs, inst, strict=True)
                    if matches(ex, x)
                    and n > inst[i]
                    and x.ts <= deadline
                    and (last is None or x.ts < last)
                    and x.ts not in times
                ]
                spoiled = bool(spoilers)
                if spoiled and not by_customer:
                    times = [t for t in times if t < min(spoilers)]
            else:
                if not matches(steps[0], e):
                    continue
                chain = _attempt_ordered(evs, inst, i, steps, deadline, strict=mode == "strict")
                if mode == "ordered" and _superseded(evs, inst, i, chain, steps, lo, hi):
                    continue
                spoiler = _spoiler(evs, inst, chain, exclusions, k, deadline)
                spoiled = spoiler is not None
                if spoiled and not by_customer:
                    chain = [n for n in chain if n < spoiler]
                moment = {n: x.ts for x, n in zip(evs, inst, strict=True)}
                times = [moment[n] for n in chain]
            clean = not (spoiled and by_customer)
            result = (len(times), clean, times)
            if pid not in best or result[:2] > best[pid][:2]:
                best[pid] = result
            if breakdown_of is not None:
                key = (pid, breakdown_of(pid, e))
                if key not in best_by_group or result[:2] > best_by_group[key][:2]:
                    best_by_group[key] = result

    def figures(results: list[tuple[int, bool, list[datetime]]]) -> list[tuple[int, Any, Any]]:
        out = []
        counted = [(depth, times) for depth, clean, times in results if clean]
        for s in range(1, k + 1):
            reached = [times for depth, times in counted if depth >= s]
            gaps = [(t[s - 1] - t[s - 2]).total_seconds() for t in reached] if s > 1 else []
            out.append((len(reached), quantile(gaps, 0.5), quantile(gaps, 0.9)))
        return out

    groups: dict[Any, list[tuple[int, bool, list[datetime]]]] = defaultdict(list)
    for (_, value), result in best_by_group.items():
        groups[value].append(result)
    return {
        "steps": figures(list(best.values())),
        "groups": {
            value: figures(results)
            for value, results in groups.items()
            if any(clean for _, clean, _ in results)
        },
    }


def _trunc(day: date, grain: str) -> date:
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _periods_between(a: date, b: date, grain: str) -> int:
    if grain == "day":
        return (b - a).days
    if grain == "week":
        return (b - a).days // 7
    return (b.year - a.year) * 12 + b.month - a.month


def retention(
    hist: dict[int, list[Ev]],
    *,
    start: dict[str, Any],
    ret: dict[str, Any],
    grain: str,
    periods: int,
    lo: date | None = None,
    hi: date | None = None,
    by_channel: bool = False,
) -> dict[tuple[date, str | None], list[int | None]]:
    """(cohort, channel) -> customers retained in period 0..periods (None: not observed)."""
    last_day = max(e.day for evs in hist.values() for e in evs)
    sizes: dict[tuple[date, str | None], int] = defaultdict(int)
    back: dict[tuple[date, str | None], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for evs in hist.values():
        first = next((i for i, e in enumerate(evs) if matches(start, e)), None)
        if first is None:
            continue
        day = evs[first].day
        if (lo and day < lo) or (hi and day > hi):
            continue
        key = (_trunc(day, grain), evs[first].channel if by_channel else None)
        sizes[key] += 1
        seen = {
            _periods_between(key[0], _trunc(e.day, grain), grain)
            for e in evs[first:]
            if matches(ret, e)
        }
        for n in seen:
            if 1 <= n <= periods:
                back[key][n] += 1
    out = {}
    for key, size in sizes.items():
        observed = min(periods, max(0, _periods_between(key[0], last_day, grain)))
        out[key] = [size] + [back[key][n] if n <= observed else None for n in range(1, periods + 1)]
    return out


def paths(
    hist: dict[int, list[Ev]],
    *,
    anchor: dict[str, Any],
    after: bool,
    depth: int,
    top: int,
    within: timedelta,
    channels: bool,
    collapse: bool,
    exclude: set[str],
) -> dict[tuple[int, str, int, str], int]:
    """(level, step, level + 1, step) -> customers."""

    def step(e: Ev) -> str:
        return f"{e.event} · {e.channel}" if channels else e.event

    walks: list[list[str]] = []
    for evs in hist.values():
        i = next((i for i, e in enumerate(evs) if matches(anchor, e)), None)
        if i is None:
            continue
        t0 = evs[i].ts
        order = evs[i:] if after else evs[i::-1]
        near = [
            e
            for e in order
            if (e.ts <= t0 + within if after else e.ts >= t0 - within) and e.event not in exclude
        ]
        walk, prev = [], step(evs[i])
        for e in near[1:] if near and near[0] is evs[i] else near:
            s = step(e)
            if not collapse or s != prev:
                walk.append(s)
            prev = s
        walks.append([step(evs[i])] + walk[:depth])
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for walk in walks:
        for level, s in enumerate(walk[1:], 1):
            counts[level][s] += 1
    keep = {
        level: {s for s, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:top]}
        for level, c in counts.items()
    }
    links: dict[tuple[int, str, int, str], int] = defaultdict(int)
    for walk in walks:
        named = [walk[0]] + [s if s in keep[lv] else "(other)" for lv, s in enumerate(walk[1:], 1)]
        for level in range(depth):
            if level >= len(named):
                break
            target = named[level + 1] if level + 1 < len(named) else "(end)"
            links[(level, named[level], level + 1, target)] += 1
    return dict(links)


def _in(e: Ev, lo: datetime | None, hi: datetime | None) -> bool:
    return (lo is None or e.ts >= lo) and (hi is None or e.ts < hi)


def channels(
    hist: dict[int, list[Ev]],
    *,
    lo: datetime | None,
    hi: datetime | None,
    ropo_days: int,
    showrooming_days: int,
    category_of: dict[str, str],
    home_of: dict[int, str] | None = None,
) -> dict[str, Any]:
    segments: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    # key -> [omnichannel buyers, their spend, single-channel buyers, their spend]
    lift_store: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    lift_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])

    def tally(into: list[int], orders: list[Ev]) -> None:
        online = any(o.channel in ("web", "app") for o in orders)
        store = any(o.channel == "store" for o in orders)
        if online or store:
            at = 0 if online and store else 2
            into[at] += 1
            into[at + 1] += sum(o.revenue or 0 for o in orders)

    ropo = {"orders": 0, "total": 0, "customers": set(), "store": defaultdict(lambda: [0, 0])}
    ropo_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    show = {"orders": 0, "total": 0, "customers": set(), "store": defaultdict(int)}
    show_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pid, evs in hist.items():
        orders = [e for e in evs if e.event == "Order Completed" and _in(e, lo, hi)]
        if orders:
            online = any(o.channel in ("web", "app") for o in orders)
            store = any(o.channel == "store" for o in orders)
            name = (
                "omnichannel"
                if online and store
                else "online_only"
                if online
                else "store_only"
                if store
                else "other_only"
            )
            if home_of and pid in home_of:
                tally(lift_store[home_of[pid]], orders)
            by_category: dict[str, list[Ev]] = defaultdict(list)
            for o in orders:
                for c in set(o.categories or ([o.category] if o.category else [])):
                    by_category[c].append(o)
            for c, some in by_category.items():
                tally(lift_cat[c], some)
            seg = segments[name]
            seg[0] += 1
            seg[1] += len(orders)
            seg[2] += sum(o.revenue or 0 for o in orders)
        for o in orders:
            if o.channel == "store":
                since = o.ts - timedelta(days=ropo_days)
                viewed = {
                    v.sku
                    for v in evs
                    if v.event == "Product Viewed"
                    and v.channel in ("web", "app")
                    and since <= v.ts <= o.ts
                }
                hit = any(s in viewed for s in o.skus or [])
                ropo["total"] += 1
                ropo["orders"] += hit
                if hit:
                    ropo["customers"].add(pid)
                if o.store_id is not None:
                    ropo["store"][o.store_id][0] += hit
                    ropo["store"][o.store_id][1] += 1
                for s in o.skus or []:
                    cat = category_of.get(s)
                    if cat is not None:
                        ropo_cat[cat][0] += s in viewed
                        ropo_cat[cat][1] += 1
            elif o.channel in ("web", "app"):
                since = o.ts - timedelta(days=showrooming_days)
                visits = [
                    v
                    for v in evs
                    if (
                        v.event == "Store Visited"
                        or (v.event == "Order Completed" and v.channel == "store")
                    )
                    and since <= v.ts <= o.ts
                ]
                show["total"] += 1
                if visits:
                    show["orders"] += 1
                    show["customers"].add(pid)
                    last = max(visits, key=lambda v: (v.ts, v.seq))
                    if last.store_id is not None:
                        show["store"][last.store_id] += 1
                for cat in o.categories or []:
                    show_cat[cat][0] += bool(visits)
                    show_cat[cat][1] += 1
    return {
        "segments": {k: tuple(v) for k, v in segments.items()},
        "ropo": (ropo["orders"], ropo["total"], len(ropo["customers"])),
        "ropo_store": {k: tuple(v) for k, v in ropo["store"].items()},
        "ropo_category": {k: tuple(v) for k, v in ropo_cat.items()},
        "showrooming": (show["orders"], show["total"], len(show["customers"])),
        "showrooming_store": dict(show["store"]),
        "showrooming_category": {k: tuple(v) for k, v in show_cat.items()},
        "o2o_store": {k: tuple(v) for k, v in lift_store.items()},
        "o2o_category": {k: tuple(v) for k, v in lift_cat.items()},
    }


SENT_BY_RETAILER = {"Message Sent", "Coupon Issued", "Catalog Sent"}


def kpis(
    hist: dict[int, list[Ev]], *, grain: str, lo: date | None, hi: date | None
) -> dict[date, dict[str, Any]]:
    """Period start -> figures, for the whole business."""
    first_order = {
        pid: min(e.day for e in evs if e.event == "Order Completed")
        for pid, evs in hist.items()
        if any(e.event == "Order Completed" for e in evs)
    }
    out: dict[date, dict[str, Any]] = defaultdict(
        lambda: {
            "active": set(),
            "by_channel": defaultdict(set),
            "orders": defaultdict(list),
            "issued": 0,
            "redeemed": 0,
            "in_store": 0,
        }
    )
    for pid, evs in hist.items():
        for e in evs:
            if (lo and e.day < lo) or (hi and e.day > hi):
                continue
            row = out[_trunc(e.day, grain)]
            if e.event not in SENT_BY_RETAILER:
                row["active"].add(pid)
                row["by_channel"][e.channel].add(pid)
            if e.event == "Order Completed":
                row["orders"][pid].append(e.revenue or 0)
                row["in_store"] += (e.revenue or 0) if e.channel == "store" else 0
            row["issued"] += e.event == "Coupon Issued"
            row["redeemed"] += e.event == "Coupon Redeemed"
    figures = {}
    for start, row in out.items():
        buyers = row["orders"]
        figures[start] = {
            "active_customers": len(row["active"]),
            "active_by_channel": {c: len(p) for c, p in sorted(row["by_channel"].items())},
            "orders": sum(len(v) for v in buyers.values()),
            "revenue": sum(sum(v) for v in buyers.values()),
            "revenue_store": row["in_store"],
            "buyers": len(buyers),
            "repeat": sum(len(v) >= 2 for v in buyers.values()),
            "new_buyers": sum(first_order[p] >= start for p in buyers),
            "coupons_issued": row["issued"],
            "coupons_redeemed": row["redeemed"],
        }
    return figures
