"""A randomised campaign of known effect, for measuring the measurement.

Four weeks before the window ends, every member registered by then is assigned at random: a
share to the control, the rest mailed a catalogue ("Catalog Sent"). A treated member then buys
once more than they would have, online with one probability and in a store with another, at a
random time in the two weeks after. Everything the campaign adds is drawn from a random stream
of its own, so the rest of the retailer is the same with or without it, and the true effect is
what was added: `campaign_truth.json` holds it beside `campaign_assignments.csv` (user_id,
variant, assigned_at), the file `tsunagu campaign assign` reads.

A mixin of :class:`tsunagu.demo.behaviour.Life`.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

from tsunagu.demo.clock import DAY_MS, HOUR_MS, Window
from tsunagu.demo.people import Member, Person
from tsunagu.demo.sessions import Emitter, Ident

NAME = "秋のカタログ (効果測定)"
STARTS_BEFORE_END_DAYS = 28
WINDOW_DAYS = 14
CONTROL_SHARE = 0.2
EXTRA_ORDER = {"online": 0.10, "store": 0.15}
"""The probability that a treated member buys once more because of the campaign, by channel."""
EXPERIMENT_NUMBERS = 90_000
"""Where the campaign's own order and receipt numbers start within a block."""
MIN_DAYS = 42
"""Shorter windows have no campaign (it needs a pre-period and a whole window after)."""


def starts_ms(win: Window) -> int | None:
    if win.days < MIN_DAYS:
        return None
    return win.day_ms(win.days - STARTS_BEFORE_END_DAYS) + 10 * HOUR_MS  # 10:00 JST


class Experiment:
    """Planning and playing of the campaign's part in one member's window."""

    em: Emitter
    p: Person
    rng: random.Random
    win: Window
    plan: list[tuple[int, int, str, Any]]

    def add(self, t: int, kind: str, payload: Any = None) -> None:
        raise NotImplementedError  # Contacts.add

    def do_buy_online(self, t: int, payload: Any) -> dict[str, Any] | None:
        raise NotImplementedError  # Life

    def do_buy_store(self, t: int, payload: dict[str, Any]) -> list[list[Any]] | None:
        raise NotImplementedError  # Life

    def plan_experiment(self, m: Member) -> None:
        start = starts_ms(self.win)
        if start is None or m.registered_ms >= start:
            return
        own = random.Random(f"tsunagu-experiment:{self.em.seed}:{m.member_id}")
        variant = "control" if own.random() < CONTROL_SHARE else "catalog"
        self.em.assignments.append((m.member_id, variant, self.win.jst(start) + "+09:00"))
        if variant == "control":
            return
        self.add(start, "experiment", ("mail", own))
        for channel, chance in EXTRA_ORDER.items():
            if own.random() < chance:
                t = start + DAY_MS // 2 + int(own.random() * (WINDOW_DAYS - 1) * DAY_MS)
                if channel == "store":  # during opening hours
                    t = (
                        self.win.day_ms(self.win.day_of(t))
                        + 11 * HOUR_MS
                        + int(own.random() * 9 * HOUR_MS)
                    )
                self.add(t, "experiment", (channel, own))

    def do_experiment(self, t: int, payload: tuple[str, random.Random]) -> None:
        what, own = payload
        em, saved, counters = self.em, self.rng, (self.em._orders, self.em._receipts)
        self.rng = em.rng = own
        # Order and receipt numbers of its own, so that everyone else's stay as they were.
        em._orders = em._receipts = EXPERIMENT_NUMBERS + em.experiment_numbers
        try:
            if what == "mail":
                assert self.p.member is not None
                self.em.track(
                    t,
                    "Catalog Sent",
                    Ident(user_id=self.p.member.member_id),
                    {"channel": "catalog"},
                    {"catalog_id": "CAT-EXPERIMENT", "catalog_name": NAME, "format": "print"},
                )
                return
            if what == "online":
                order = self.do_buy_online(t, {})
                revenue = int(order["revenue"]) if order else None
            else:
                rows = self.do_buy_store(t, {"card": True})
                revenue = sum(r[6] * r[7] - r[8] for r in rows) if rows else None
            if revenue is not None:
                added = self.em.experiment_added[what]
                added[0] += 1
                added[1] += revenue
        finally:
            em.experiment_numbers = max(em._orders, em._receipts) - EXPERIMENT_NUMBERS
            self.rng = em.rng = saved
            em._orders, em._receipts = counters


def truth(win: Window, assignments: Path, added: dict[str, list[int]]) -> dict[str, Any]:
    """What the campaign did: who was in it, and the orders and revenue it added."""
    variants: dict[str, int] = {}
    with assignments.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            variants[row["variant"]] = variants.get(row["variant"], 0) + 1
    start = starts_ms(win)
    treated = variants.get("catalog", 0)
    return {
        "name": NAME,
        "starts_at": win.jst(start) + "+09:00" if start is not None else None,
        "window": f"{WINDOW_DAYS}d",
        "control_share": CONTROL_SHARE,
        "customers": variants,
        "extra_order_probability": EXTRA_ORDER,
        "added": {
            channel: {"orders": orders, "revenue": revenue}
            for channel, (orders, revenue) in added.items()
        },
        "revenue_per_treated_customer": {
            channel: revenue / treated if treated else 0.0
            for channel, (_, revenue) in added.items()
        },
    }
