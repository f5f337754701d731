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


def _attempt_ordered(
    evs: list[Ev], start: int, steps: list[dict[str, Any]], window: timedelta, strict: bool
) -> list[int]:
    chain = [start]
    deadline = evs[start].ts + window
    for step in steps[1:]:
        prev = chain[-1]
        if strict:
            candidates = [prev + 1] if prev + 1 < len(evs) else []
        else:
            candidates = list(range(prev + 1, len(evs)))
        found = next((j for j in candidates if matches(step, evs[j])), None)
        if found is None or evs[found].ts > deadline:
            break
        chain.append(found)
    return chain


def _superseded(
    evs: list[Ev], i: int, steps: list[dict[str, Any]], lo: datetime | None, hi: datetime | None
) -> bool:
    """Another step-1 event in range comes after event i and before its next step 2."""
    for e in evs[i + 1 :]:
        if matches(steps[1], e):
            return False
        if matches(steps[0], e) and (lo is None or e.ts >= lo) and (hi is None or e.ts < hi):
            return True
    return False


def _excluded(
    evs: list[Ev], chain: list[int], exclusions: list[dict[str, Any]], k: int
) -> list[int]:
    depth = len(chain)
    for ex in exclusions:
        a, b = ex.get("between") or (1, k)
        if depth < a + 1:
            continue
        after = chain[a - 1]
        x = next((j for j in range(after + 1, len(evs)) if matches(ex, evs[j])), None)
        if x is None:
            continue
        for i in range(a + 1, min(b, len(chain)) + 1):
            if chain[i - 1] > x:
                depth = min(depth, i - 1)
                break
    return chain[:depth]


def _attempt_any(
    evs: list[Ev], start: int, steps: list[dict[str, Any]], window: timedelta
) -> list[datetime]:
    """Times at which steps 1..i were all done, while within the window."""
    deadline = evs[start].ts + window
    firsts = []
    for step in steps:
        firsts.append(
            next((evs[j].ts for j in range(start, len(evs)) if matches(step, evs[j])), None)
        )
    times: list[datetime] = []
    for i in range(len(steps)):
        if any(f is None for f in firsts[: i + 1]):
            break
        t = max(f for f in firsts[: i + 1] if f is not None)
        if t > deadline:
            break
        times.append(t)
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
    best: dict[Any, tuple[int, list[datetime]]] = {}
    best_by_group: dict[tuple[Any, Any], tuple[int, list[datetime]]] = {}
    for pid, evs in hist.items():
        for i, e in enumerate(evs):
            if (lo is not None and e.ts < lo) or (hi is not None and e.ts >= hi):
                continue
            if mode == "any":
                if not any(matches(s, e) for s in steps):
                    continue
                times = _attempt_any(evs, i, steps, window)
            else:
                if not matches(steps[0], e):
                    continue
                if mode == "ordered" and _superseded(evs, i, steps, lo, hi):
                    continue
                chain = _attempt_ordered(evs, i, steps, window, strict=mode == "strict")
                chain = _excluded(evs, chain, exclusions, k)
                times = [evs[j].ts for j in chain]
            result = (len(times), times)
            if pid not in best or result[0] > best[pid][0]:
                best[pid] = result
            if breakdown_of is not None:
                key = (pid, breakdown_of(pid, e))
                if key not in best_by_group or result[0] > best_by_group[key][0]:
                    best_by_group[key] = result

    def figures(results: list[tuple[int, list[datetime]]]) -> list[tuple[int, Any, Any]]:
        out = []
        for s in range(1, k + 1):
            reached = [times for depth, times in results if depth >= s]
            gaps = [(t[s - 1] - t[s - 2]).total_seconds() for t in reached] if s > 1 else []
            out.append((len(reached), quantile(gaps, 0.5), quantile(gaps, 0.9)))
        return out

    groups: dict[Any, list[tuple[int, list[datetime]]]] = defaultdict(list)
    for (_, value), result in best_by_group.items():
        groups[value].append(result)
    return {
        "steps": figures(list(best.values())),
        "groups": {value: figures(results) for value, results in groups.items()},
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
) -> dict[str, Any]:
    segments: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
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
            "buyers": len(buyers),
            "repeat": sum(len(v) >= 2 for v in buyers.values()),
            "new_buyers": sum(first_order[p] >= start for p in buyers),
            "coupons_issued": row["issued"],
            "coupons_redeemed": row["redeemed"],
        }
    return figures
