"""The five places where funnels read as the leading product-analytics tools read them, each
with small hand-made histories whose counts are worked out in the comments. Every case is
answered by the numpy walk and by the portable SQL, and held to the plain-Python reading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.analytics import reference
from tests.analytics.conftest import TZ, analysed
from tests.analytics.test_funnels import by_hand
from tsunagu.analytics.engine import Engine
from tsunagu.analytics.filters import parse
from tsunagu.analytics.funnels import FunnelQuery, run_funnel
from tsunagu.events.normalize import normalize
from tsunagu.exceptions import InvalidInput
from tsunagu.store import Store

T = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo
MS = timedelta(milliseconds=1)
DAY = timedelta(days=1)

Event = tuple[str, str, datetime] | tuple[str, str, datetime, dict[str, Any]]


def load(store: Store, events: list[Event]) -> None:
    """Each event its own batch, in the order given: the order of arrival."""
    for n, (user, name, ts, *extra) in enumerate(events):
        message = {
            "type": "track",
            "messageId": f"m{n}",
            "event": name,
            "userId": f"user-{user}",
            "timestamp": ts.isoformat(),
        }
        if extra:
            message |= extra[0]
        store.insert_events([normalize(message, received_at=T + 900 * DAY, source="t")])
    analysed(store)


def counts(store: Store, body: dict[str, Any]) -> list[int]:
    """Customers per step, the same by the walk, the portable SQL and the plain reading."""
    query = parse(FunnelQuery, body)
    answers = [
        [
            s.customers
            for s in run_funnel(engine=Engine(store), query=query, timezone=TZ, portable=p).steps
        ]
        for p in (False, True)
    ]
    want = by_hand(store, reference.histories(store), body)
    answers.append([c for c, _, _ in want["steps"]])
    assert answers[0] == answers[1] == answers[2], answers
    return answers[0]


def steps(*names: str) -> list[dict[str, Any]]:
    return [{"event": n} for n in names]


# -- 1. Events at the same instant ----------------------------------------------------------------


def test_a_tie_never_breaks_a_conversion(store: Store) -> None:
    load(
        store,
        [
            ("x", "A", T),
            ("x", "B", T + DAY),  # B exactly a window later: converts
            ("y", "A", T),
            ("y", "B", T + DAY + MS),  # a millisecond more: does not
            ("z", "A", T),
            ("z", "B", T),  # the same instant, A arriving first: converts
            ("w", "B", T),
            ("w", "A", T),  # the same instant, B arriving first: converts too
        ],
    )
    # At step 1: x, y, z, w. At step 2: x, z, w.
    assert counts(store, {"steps": steps("A", "B"), "window": "1d"}) == [4, 3]
    # The medians: 0 s (z), 0 s (w), 86400 s (x).
    query = parse(FunnelQuery, {"steps": steps("A", "B"), "window": "1d"})
    got = run_funnel(engine=Engine(store), query=query, timezone=TZ)
    assert got.steps[1].median_seconds_to_convert == 0.0


def test_one_request_fills_consecutive_steps_in_any_order(store: Store) -> None:
    # A till sale: the coupon's redemption arrives before the sale it belongs to; and ten
    # events of one request, stamped alike, arriving backwards.
    load(
        store,
        [
            ("p", "Coupon Issued", T),
            ("p", "Coupon Redeemed", T + DAY, {"context": {"channel": "store"}}),
            ("p", "Order Completed", T + DAY, {"context": {"channel": "store"}}),
            *(("q", name, T) for name in "JIHGFEDCBA"),
        ],
    )
    # p: issued, then the sale and its redemption at one instant: all three steps.
    assert counts(
        store, {"steps": steps("Coupon Issued", "Order Completed", "Coupon Redeemed")}
    ) == [1, 1, 1]
    # q: ten steps at one instant, arriving J..A: all ten.
    assert counts(store, {"steps": steps(*"ABCDEFGHIJ")}) == [1] * 10


def test_one_event_fills_one_step_and_ties_take_any_assignment(store: Store) -> None:
    load(
        store,
        [
            ("one", "A", T),  # a single A: step 1 of [A, A] only
            ("two", "A", T),
            ("two", "A", T),  # two A's at one instant: both steps
            # B and B-on-the-app at one instant, the app's first: B takes the web event and
            # B (app) the app's, whatever the order.
            ("nest", "B", T, {"context": {"channel": "app"}}),
            ("nest", "B", T, {"context": {"channel": "web"}}),
        ],
    )
    assert counts(store, {"steps": steps("A", "A")}) == [2, 1]
    body = {"steps": [{"event": "B"}, {"event": "B", "channel": "app"}]}
    assert counts(store, body) == [1, 1]


def test_strict_order_is_not_broken_by_an_event_at_the_same_instant(store: Store) -> None:
    load(
        store,
        [
            ("s1", "A", T),
            ("s1", "C", T + MS),
            ("s1", "B", T + MS),  # C beside B: converts
            ("s2", "A", T),
            ("s2", "C", T + MS),
            ("s2", "B", T + 2 * MS),  # C between: not
        ],
    )
    assert counts(store, {"steps": steps("A", "B"), "mode": "strict"}) == [2, 1]


# -- 2. Exclusions ----------------------------------------------------------------------------------


def test_an_excluded_customer_leaves_the_whole_funnel(store: Store) -> None:
    load(
        store,
        [
            ("u1", "A", T),
            ("u1", "X", T + MS),
            ("u1", "B", T + 2 * MS),
            ("u1", "C", T + 3 * MS),
            ("u2", "A", T),
            ("u2", "X", T + MS),  # never reaches B: out all the same
            ("u3", "A", T),
            ("u3", "B", T + MS),
            ("u3", "X", T + 2 * MS),
            ("u3", "C", T + 3 * MS),
            ("u4", "A", T),
            ("u4", "X", T),
            ("u4", "B", T + MS),  # X at A's instant: no
            ("u5", "A", T),
            ("u5", "X", T + 2 * DAY),  # X after the window: no
            # An attempt spoiled, then a clean one a week later: the clean one counts.
            ("u6", "A", T),
            ("u6", "X", T + MS),
            ("u6", "B", T + 2 * MS),
            ("u6", "A", T + 7 * DAY),
            ("u6", "B", T + 7 * DAY + MS),
            ("u6", "C", T + 8 * DAY),
        ],
    )
    body = {
        "steps": steps("A", "B", "C"),
        "window": "1d",
        "exclusions": [{"event": "X", "between": [1, 2]}],
    }
    # u1 and u2 are out. Step 1: u3, u4, u5, u6; step 2: u3, u4, u6; step 3: u3, u6.
    assert counts(store, body) == [4, 3, 2]
    # The earlier reading: the spoiled attempt only stops before the excluded event. u1 and
    # u2 count at step 1; u6's clean attempt still counts at 3.
    assert counts(store, {**body, "exclusions_mode": "attempt"}) == [6, 3, 2]
    # Between steps 2 and 3: u3 is out (X after B, before C); u1's X comes before B.
    later = {**body, "exclusions": [{"event": "X", "between": [2, 3]}]}
    # Step 1: all but u3; step 2: u1, u4, u6; step 3: u1, u6.
    assert counts(store, later) == [5, 3, 2]


# -- 3. Any order -----------------------------------------------------------------------------------


def test_any_order_counts_distinct_steps_within_one_window(store: Store) -> None:
    load(
        store,
        [
            ("v1", "C", T),
            ("v1", "B", T + DAY / 2),  # two steps, without A
            ("v2", "B", T),  # one
            ("v3", "C", T),
            ("v3", "A", T + MS),
            ("v3", "B", T + 2 * MS),  # all three
            ("v4", "A", T),
            ("v4", "B", T + 3 * DAY),
            ("v4", "C", T + 3 * DAY + MS),  # 2 in a window
            ("v5", "A", T),
            ("v5", "A", T + MS),  # one step twice: one
            ("v6", "A", T),
            ("v6", "X", T + MS),
            ("v6", "B", T + 2 * MS),
            ("v6", "C", T + 3 * MS),
        ],
    )
    body = {"steps": steps("A", "B", "C"), "window": "1d", "mode": "any"}
    # Position 1: everyone; 2: v1, v3, v4, v6; 3: v3, v6.
    assert counts(store, body) == [6, 4, 2]
    # With X excluded over the funnel, v6 is out.
    assert counts(store, {**body, "exclusions": [{"event": "X"}]}) == [5, 3, 1]
    with pytest.raises(InvalidInput, match="all its steps"):
        parse(FunnelQuery, {**body, "exclusions": [{"event": "X", "between": [1, 2]}]})


# -- 4. Long windows ------------------------------------------------------------------------------


def test_windows_of_any_length_and_unit(store: Store) -> None:
    load(
        store,
        [
            ("m1", "A", T),
            ("m1", "B", T + 31 * DAY),  # a month (31 days) exactly
            ("m2", "A", T),
            ("m2", "B", T + 31 * DAY + MS),
            ("y1", "A", T),
            ("y1", "B", T + 400 * DAY),  # more than a year
        ],
    )
    two = steps("A", "B")
    assert counts(store, {"steps": two, "window": "1 month"}) == [3, 1]
    assert counts(store, {"steps": two, "window": "13months"}) == [3, 3]  # 403 days
    assert counts(store, {"steps": two, "window": "12mo"}) == [3, 2]  # 372 days
    assert counts(store, {"steps": two, "window": 2, "window_unit": "year"}) == [3, 3]
    assert counts(store, {"steps": two, "window": "400日"}) == [3, 3]
    assert counts(store, {"steps": two, "window": "9599h"}) == [3, 2]  # 399.96 days


# -- 5. Date range ----------------------------------------------------------------------------------


def test_every_step_of_a_counted_attempt_lies_inside_the_range(store: Store) -> None:
    late = datetime(2026, 3, 5, 14, 30, tzinfo=UTC)  # 23:30 on 5 March in Tokyo
    load(
        store,
        [
            ("r1", "A", late - DAY),
            ("r1", "B", late),  # B at 23:30 on the last day: in
            ("r2", "A", late),
            ("r2", "B", late + 40 * timedelta(minutes=1)),  # 00:10 next day
            ("r3", "A", datetime(2026, 2, 28, 14, 59, tzinfo=UTC)),
            ("r3", "B", late),  # A before
        ],
    )
    body = {"steps": steps("A", "B"), "window": "7d", "from": "2026-03-01", "to": "2026-03-05"}
    # r1 converts; r2 starts on the last day but its B falls after it; r3 starts before.
    assert counts(store, body) == [2, 1]


# -- the definition behind the walk -----------------------------------------------------------------


def _deepest_chain(
    evs: list[reference.Ev], start: int, steps: list[dict[str, Any]], deadline: datetime
) -> int:
    """The most steps a chain of different events from `start` reaches, each matching its
    step, at non-decreasing times within the deadline: every chain tried."""
    best = 1

    def extend(chain: list[int]) -> None:
        nonlocal best
        best = max(best, len(chain))
        if len(chain) == len(steps):
            return
        for j, e in enumerate(evs):
            if (
                j not in chain
                and evs[chain[-1]].ts <= e.ts <= deadline
                and reference.matches(steps[len(chain)], e)
            ):
                extend([*chain, j])

    extend([start])
    return best


@pytest.mark.parametrize("seed", range(8))
def test_steps_taken_instant_by_instant_reach_as_deep_as_any_chain(seed: int) -> None:
    """The walk takes each step at the earliest instant it can, as many steps at an instant
    as its events can take: that reaches as deep as the best of every possible chain."""
    import random

    rng = random.Random(seed)
    for _ in range(60):
        evs = [
            reference.Ev(
                pid=1, seq=n, ts=T + rng.randint(0, 3) * DAY, event=rng.choice("AB"),
                channel=rng.choice(("web", "app")), store_id=None, sku=None, category=None,
                skus=None, categories=None, revenue=None, order_id=None, name=None,
                day=T.date(), props={},
            )
            for n in range(rng.randint(2, 7))
        ]  # fmt: skip
        evs.sort(key=lambda e: (e.ts, e.seq))
        steps = [
            {"event": rng.choice("AB"), **({"channel": "app"} if rng.random() < 0.3 else {})}
            for _ in range(rng.randint(2, 4))
        ]
        inst = reference._instants(evs)
        for start, e in enumerate(evs):
            if reference.matches(steps[0], e):
                deadline = e.ts + DAY
                walked = reference._attempt_ordered(evs, inst, start, steps, deadline, strict=False)
                assert len(walked) == _deepest_chain(evs, start, steps, deadline)
