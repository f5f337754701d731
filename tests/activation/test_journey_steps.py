"""A journey's steps counted from its runs' state and its sends: who reached each step, who is
due or waiting at it, what it sent and who left there, as ticks move customers along."""

from __future__ import annotations

from tests.activation import test_journeys
from tests.activation.test_journeys import CART_FOLLOW_UP, Shop, _reachable
from tsunagu.activation.journey_steps import StepCount, step_counts
from tsunagu.activation.journeys import get_journey

shop = test_journeys.shop
"""The journeys' shop: the sample with a LINE API on loopback, no caps or quiet hours."""


def _by_path(shop: Shop, jid: str) -> dict[tuple[int | str, ...], StepCount]:
    return {s.path: s for s in step_counts(store=shop.store, journey_id=jid)}


def test_a_branching_journey_counts_each_branch(shop: Shop) -> None:
    a, b = _reachable(shop.store, 2)
    jid = shop.journey(CART_FOLLOW_UP)
    for pid in (a, b):
        shop.track(shop.member(pid), "Product Viewed", channel="app", sku="SKU-2")
    shop.tick(1)
    steps = _by_path(shop, jid)
    assert list(steps) == [(0,), (0, "then", 0), (0, "else", 0)]
    assert [s.kind for s in steps.values()] == ["wait_for", "send", "send"]
    assert steps[(0,)].step["within"] == "1h" and "then" not in steps[(0,)].step
    assert (steps[(0,)].reached, steps[(0,)].waiting) == (2, 2)
    assert steps[(0, "then", 0)].branch == "then" and steps[(0, "then", 0)].depth == 1
    assert steps[(0, "then", 0)].reached == 0
    # A adds to the cart: the then-branch sends; B waits on.
    shop.track(shop.member(a), "Product Added", channel="app", sku="SKU-2", minutes=10)
    shop.tick(11)
    steps = _by_path(shop, jid)
    assert (steps[(0,)].reached, steps[(0,)].waiting) == (2, 1)
    assert (steps[(0, "then", 0)].reached, steps[(0, "then", 0)].sent) == (1, 1)
    assert steps[(0, "else", 0)].reached == 0
    # B's hour runs out: the else-branch sends; both runs are done, their branches known by
    # the sends they made.
    shop.tick(62)
    steps = _by_path(shop, jid)
    assert steps[(0,)].waiting == 0 and steps[(0,)].reached == 2
    assert (steps[(0, "else", 0)].reached, steps[(0, "else", 0)].sent) == (1, 1)
    assert (steps[(0, "then", 0)].reached, steps[(0, "then", 0)].sent) == (1, 1)
    assert get_journey(store=shop.store, journey_id=jid).runs == {"done": 2}
    sent = shop.store.scalar("SELECT count(*) FROM sends WHERE journey_id = ? AND status = 'sent'",
                             [jid])  # fmt: skip
    assert sum(s.sent for s in steps.values()) == sent == 2


def test_the_goal_ends_runs_at_the_step_they_were_due_to_take(shop: Shop) -> None:
    a, b, c = _reachable(shop.store, 3)
    jid = shop.journey({"name": "カゴ落ち", "template": "cart_abandonment", "control_share": 0,
                        "params": {"wait": "1h"}})  # fmt: skip
    for pid in (a, b, c):
        shop.track(shop.member(pid), "Product Added", sku="SKU-1")
    shop.tick(1)
    wait, send = step_counts(store=shop.store, journey_id=jid)
    assert (wait.kind, send.kind) == ("wait", "send")
    assert wait.reached == send.reached == 3
    assert (send.due, send.sent) == (3, 0)  # waited, due to send in an hour
    shop.buy_at_till(c, minutes=30)
    shop.tick(61)
    wait, send = step_counts(store=shop.store, journey_id=jid)
    assert (send.due, send.sent, send.ended, send.reached) == (0, 2, 1, 3)
    assert wait.ended == 0


def test_the_control_group_is_not_on_the_steps(shop: Shop) -> None:
    people = _reachable(shop.store, 40)
    jid = shop.journey({"name": "購入後", "template": "post_purchase", "control_share": 0.5,
                        "params": {"wait": "1d"}})  # fmt: skip
    for n, pid in enumerate(people):
        shop.track(shop.member(pid), "Order Completed", order_id=f"O{n}", revenue=1000)
    shop.tick(1)
    runs = get_journey(store=shop.store, journey_id=jid).runs
    assert runs["control"] > 0 and runs["active"] > 0
    wait, _ = step_counts(store=shop.store, journey_id=jid)
    assert wait.reached == runs["active"] == sum(runs.values()) - runs["control"]
