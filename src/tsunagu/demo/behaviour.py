"""What one person does during the window: plan their episodes, then play them in time order.

Episodes are planned first (how many web visits, store purchases, research-online-buy-offline
trips, coupons, messages ...), then replayed in time order because whether a visitor is logged in
depends on what happened before (a browser cookie is linked to the member once they log in).
"""

from __future__ import annotations

from typing import Any

from tsunagu.demo.clock import DAY_MS, HOUR_MS, poisson
from tsunagu.demo.experiment import Experiment
from tsunagu.demo.messaging import Contacts
from tsunagu.demo.people import Member, Person
from tsunagu.demo.sessions import STORE_CONTEXT, WEB_CONTEXT, Emitter, Ident

RATE = 0.42
"""Scales every behavioural rate; tuned so a year yields about 10 event + POS lines a customer."""
# Episodes a year for an average person of each segment (before RATE and activity).
RATES: dict[str, dict[str, float]] = {
    "anon": {"browse": 1.8, "guest": 0.15},
    "line_anon": {},
    "walkin": {"store": 1.0, "browse": 0.6},
    "browse": {"browse": 2.0},
    "online": {"online": 1.3, "browse": 2.2},
    "store": {"store": 1.8, "visit": 0.6, "browse": 0.5},
    "omni": {"online": 2.4, "store": 1.8, "browse": 1.6, "ropo": 0.9, "showroom": 0.5},
}


class Life(Contacts, Experiment):
    """Plays one person's window through an :class:`Emitter`."""

    def __init__(self, em: Emitter, p: Person) -> None:
        self.em, self.p, self.rng = em, p, em.rng
        self.win, self.cat = em.win, em.cat
        self.plan: list[tuple[int, int, str, Any]] = []
        self.staples: dict[int, int] = {}
        m = p.member
        self.reg_ms = m.registered_ms if m else 1 << 62
        rng = self.rng
        self.linked = [m is not None and not p.new_member and rng.random() < 0.6 for _ in p.web]
        self.app_in = m is not None and not p.new_member and rng.random() < 0.9
        self.web_anon = [Ident(anon_id=c) for c in p.web]
        traits = {"email": m.email} if m and m.email else {}
        self.web_user = (
            [Ident(user_id=m.member_id, anon_id=c, traits=traits) for c in p.web] if m else []
        )
        d = p.app
        self.app_anon = Ident(anon_id=d.anon_id, device_id=d.device_id) if d else None
        self.app_user = (
            Ident(user_id=m.member_id, anon_id=d.anon_id, device_id=d.device_id, traits=traits)
            if d and m
            else None
        )
        self.user = Ident(user_id=m.member_id) if m else None
        self.opt = [x == "true" for x in m.row[14:18]] if m else [False] * 4

    # -- planning -----------------------------------------------------------------------------
    def products(self, t: int, n: int, store: int = -1) -> list[int]:
        rng, cat, p = self.rng, self.cat, self.p
        c = (
            p.cats[int(rng.random() * len(p.cats))]
            if rng.random() < 0.65
            else cat.pick_category(rng, self.month(t))
        )
        out: list[int] = []
        for _ in range(n):
            if (
                cat.products[cat.by_cat[c][0]].repeat_purchase
                and c in self.staples
                and rng.random() < 0.6
            ):
                i = self.staples[c]
            elif store >= 0:
                i = cat.pick_in_store(rng, store, c)
            else:
                i = cat.pick_product(rng, c)
            if cat.products[i].repeat_purchase:
                self.staples.setdefault(c, i)
            if i not in out:
                out.append(i)
            if rng.random() < 0.3:  # the next item may come from another category
                c = cat.pick_category(rng, self.month(t))
        return out

    def shop_store(self) -> int:
        rng, cat, home = self.rng, self.cat, self.p.home
        r = rng.random()
        if r < 0.75:
            return home
        if r < 0.95:
            near = cat.metro_stores[cat.stores[home].metro]
            return near[int(rng.random() * len(near))]
        return cat.pick_store(rng)

    def online_t(self) -> int:
        return self.win.online_time(self.rng, self.win.online_day(self.rng))

    def store_t(self) -> int:
        return self.win.store_time(self.rng, self.win.store_day(self.rng))

    def make_plan(self) -> None:
        p, rng, win = self.p, self.rng, self.win
        f = win.days / 365 * RATE * p.act
        rates = RATES[p.segment]
        for _ in range(poisson(rng, rates.get("browse", 0) * f)):
            self.add(self.online_t(), "browse", "abandon" if rng.random() < 0.22 else "browse")
        for _ in range(poisson(rng, rates.get("online", 0) * f)):
            self.add(self.online_t(), "buy_online")
        for _ in range(poisson(rng, rates.get("guest", 0) * f)):
            self.add(self.online_t(), "guest")
        for _ in range(poisson(rng, rates.get("store", 0) * f)):
            self.add(self.store_t(), "buy_store", {})
        if p.beacon:
            for _ in range(poisson(rng, rates.get("visit", 0) * f)):
                self.add(self.store_t(), "visit", self.shop_store())
        for _ in range(poisson(rng, rates.get("ropo", 0) * f)):
            t = self.online_t()
            item = self.products(t, 1)[0]
            store = self.cat.store_for(rng, p.home, item)
            self.add(t, "browse", ("ropo", item))
            day = win.day_of(t) + 1 + int(rng.random() * 10)
            if day < win.days:
                self.add(
                    win.store_time(rng, day),
                    "buy_store",
                    {"store": store, "items": [item], "card": True},
                )
        for _ in range(poisson(rng, rates.get("showroom", 0) * f)):
            t, store = self.store_t(), self.shop_store()
            if p.beacon:
                self.add(t, "visit", store)
            later = t + 2 * HOUR_MS + int(rng.random() * 7 * DAY_MS)
            self.add(later, "buy_online", {"items": self.products(t, 1, store)})
        m = p.member
        if m is not None:
            self.plan_member(m)
            self.plan_experiment(m)
        if p.segment == "line_anon":
            self.plan_line(3.0, Ident(anon_id=p.line_user_id, anon_type="line_user_id"))
        if p.tablet is not None:
            for _ in range(1 + poisson(rng, 1.5 * f)):
                self.add(max(self.online_t(), self.reg_ms + HOUR_MS), "tablet")

    def plan_member(self, m: Member) -> None:
        """Registrations that happen in the window, then the retailer's contacts."""
        p, win = self.p, self.win
        if p.new_member:
            self.add(
                m.registered_ms,
                "signup" if p.reg_channel == "online" else "buy_store",
                {"store": p.home, "card": m.card},
            )
        if p.duplicate is not None and p.duplicate.registered_ms >= win.start_ms:
            store = next(
                i for i, s in enumerate(self.cat.stores) if s.store_id == p.duplicate.home_store_id
            )
            self.add(
                p.duplicate.registered_ms, "buy_store", {"store": store, "card": p.duplicate.card}
            )
        self.plan_contacts(m)

    # -- playing ------------------------------------------------------------------------------
    def play(self) -> None:
        p, em = self.p, self.em
        if p.tablet is not None and p.tablet_owner:
            em.used[("anonymous_id", p.tablet.anon_id)] = None
            em.used[("device_id", p.tablet.device_id)] = None
        self.plan.sort()
        start, end = self.win.start_ms, em.end_ms
        later = []
        for t, _, kind, payload in self.plan:
            if start <= t < end:
                if kind == "experiment":  # played last: nothing else hears of it
                    later.append((t, payload))
                else:
                    getattr(self, "do_" + kind)(t, payload)
        for t, payload in later:
            self.do_experiment(t, payload)

    def member_at(self, t: int) -> bool:
        return t >= self.reg_ms

    def via(self, t: int) -> tuple[dict[str, Any], Ident, Ident | None, int] | None:
        """Web (which browser) or app, who the visitor is at first and who they log in as."""
        p, rng = self.p, self.rng
        member = self.member_at(t)
        if p.app is not None and (not p.web or rng.random() < 0.5):
            ctx = p.app.app_context
            assert self.app_anon is not None
            if not member:
                return ctx, self.app_anon, None, -1
            assert self.app_user is not None
            return (
                (ctx, self.app_user, None, -1)
                if self.app_in
                else (ctx, self.app_anon, self.app_user, -1)
            )
        if not p.web:
            return None
        i = 0 if len(p.web) == 1 or rng.random() < 0.6 else 1 + int(rng.random() * (len(p.web) - 1))
        if not member:
            return WEB_CONTEXT, self.web_anon[i], None, i
        if self.linked[i] and rng.random() < 0.85:
            return WEB_CONTEXT, self.web_user[i], None, i
        return WEB_CONTEXT, self.web_anon[i], self.web_user[i], i

    def logged_in(self, key: int, ident: Ident) -> None:
        if "userId" in ident.fields:
            if key < 0:
                self.app_in = True
            else:
                self.linked[key] = True

    def do_browse(self, t: int, payload: Any, ctx_extra: dict[str, Any] | None = None) -> None:
        v = self.via(t)
        if v is None:
            return
        ctx, ident, login, key = v
        if ctx_extra:
            ctx = {**ctx, **ctx_extra}
        if isinstance(payload, tuple):  # research online, buy offline: look at the item first
            kind, items = "browse", [payload[1]] + self.products(t, int(self.rng.random() * 2))
        else:
            kind, items = payload, self.products(t, 1 + int(self.rng.random() * 3))
        end, ident, _ = self.em.session(t, ctx, ident, kind=kind, products=items, login=login)
        self.logged_in(key, ident)
        if kind == "abandon" and self.opt[0] and self.user and self.rng.random() < 0.3:
            self.em.track(
                end + DAY_MS,
                "Message Sent",
                self.user,
                {"channel": "email"},
                {
                    "campaign_id": "CART-REMINDER",
                    "campaign_name": "カート放棄リマインド",
                    "message_type": "cart_reminder",
                    "subject": "カートに商品が残っています",
                },
            )

    def do_buy_online(self, t: int, payload: Any) -> dict[str, Any] | None:
        rng, em = self.rng, self.em
        if not self.member_at(t):
            self.do_browse(t, "abandon")
            return None
        v = self.via(t)
        if v is None:
            return None
        ctx, ident, login, key = v
        payload = payload or {}
        items = payload.get("items", []) + self.products(t, 1 + (rng.random() < 0.4))
        end, ident, order = em.session(
            t,
            ctx,
            ident,
            kind="purchase",
            products=items,
            login=login,
            coupon=payload.get("coupon"),
        )
        self.logged_in(key, ident)
        if order is not None and rng.random() < 0.04 and self.user is not None:
            later = end + 3 * DAY_MS + int(rng.random() * 11 * DAY_MS)
            by_phone = rng.random() < 0.3
            em.track(
                later,
                "Order Refunded",
                self.user if by_phone else ident,
                {"channel": "call_center"} if by_phone else ctx,
                {
                    "order_id": order["order_id"],
                    "total": order["total"],
                    "revenue": order["revenue"],
                    "currency": "JPY",
                    "products": order["products"],
                    "reason": rng.choice(("サイズ違い", "イメージ違い", "不良品", "注文間違い")),
                },
            )
        return order

    def do_guest(self, t: int, _: Any) -> None:
        """A visitor who never registers buys as a guest: an identify with only an e-mail."""
        v = self.via(t)
        if v is None:
            return
        ctx, ident, _, _ = v
        guest = Ident(
            anon_id=ident.fields["anonymousId"],
            traits={"email": self.p.email},
            device_id=ctx.get("device", {}).get("id", ""),
        )
        self.em.session(t, ctx, ident, kind="purchase", products=self.products(t, 2), login=guest)

    def card(self, t: int) -> str:
        m, d = self.p.member, self.p.duplicate
        assert m is not None
        if d is not None and t >= d.registered_ms and self.rng.random() < 0.5:
            return d.card
        return m.card

    def do_buy_store(self, t: int, payload: dict[str, Any]) -> list[list[Any]] | None:
        p, rng, em = self.p, self.rng, self.em
        store = payload["store"] if "store" in payload else self.shop_store()
        items = payload.get("items", [])
        if not items or rng.random() < 0.3:
            items = items + [
                i for i in self.products(t, 1 + int(rng.random() * 2.5), store) if i not in items
            ]
        card = ""
        if self.member_at(t):
            want = payload.get("card")
            card = (
                want
                if isinstance(want, str)
                else self.card(t)
                if want or rng.random() < 0.9
                else ""
            )
            if card and p.app is not None and not self.app_in and rng.random() < 0.5:
                assert self.app_user is not None  # opens the app's digital member card
                em.screen(t - 120_000, self.app_user, p.app.app_context, "会員証")
                em.identify(t - 100_000, self.app_user, p.app.app_context)
                self.app_in = True
        if p.beacon and rng.random() < 0.8 and t - 1_800_000 >= self.win.start_ms:
            em.store_visit(
                t - 300_000 - int(rng.random() * 1_500_000),
                store,
                self.app_ident(t),
                p.app.device if p.app else {},
            )
        coupon = payload.get("coupon") if card else None
        rows = em.receipt(t, store, card, items, coupon=coupon)
        if rows is None:
            return None
        if coupon is not None and self.user is not None and rng.random() < 0.7:
            em.track(
                t,
                "Coupon Redeemed",
                self.user,
                STORE_CONTEXT,
                {
                    "coupon_id": coupon["coupon_id"],
                    "code": coupon["code"],
                    "discount": sum(r[8] for r in rows),
                    "store_id": em.cat.stores[store].store_id,
                    "order_id": rows[0][0],
                },
                # The id the POS import gives the same redemption, so it is stored once.
                message_id=f"redeem:{em.cat.stores[store].store_id}:{rows[0][0]}:{coupon['code']}",
            )
        if rng.random() < 0.015:
            day = self.win.day_of(t) + 2 + int(rng.random() * 18)
            if day < self.win.days:
                em.return_receipt(self.win.store_time(rng, day), rows, store)
        return rows

    def app_ident(self, t: int) -> Ident:
        assert self.app_anon is not None
        if self.member_at(t) and self.app_in and self.app_user is not None:
            return self.app_user
        return self.app_anon

    def do_visit(self, t: int, store: int) -> None:
        assert self.p.app is not None
        self.em.store_visit(t, store, self.app_ident(t), self.p.app.device)

    def do_signup(self, t: int, _: Any) -> None:
        p, em = self.p, self.em
        m = p.member
        assert m is not None
        traits = {"email": m.email, **({"phone": m.phone} if m.phone else {})}
        if p.web:
            em.page(t, self.web_anon[0], WEB_CONTEXT, "会員登録", "/signup")
            em.identify(
                t + em.gap(),
                Ident(user_id=m.member_id, anon_id=p.web[0], traits=traits),
                WEB_CONTEXT,
            )
            self.linked[0] = True
        elif p.app is not None:
            em.screen(t, self.app_anon, p.app.app_context, "会員登録")  # type: ignore[arg-type]
            em.identify(
                t + em.gap(),
                Ident(
                    user_id=m.member_id,
                    anon_id=p.app.anon_id,
                    device_id=p.app.device_id,
                    traits=traits,
                ),
                p.app.app_context,
            )
            self.app_in = True

    def do_tablet(self, t: int, _: Any) -> None:
        p, m, d = self.p, self.p.member, self.p.tablet
        assert m is not None and d is not None
        traits = {"email": m.email} if m.email else {}
        ident = Ident(
            user_id=m.member_id,
            anon_id=d.anon_id,
            device_id=d.device_id,
            traits=traits,
            owns_device=p.tablet_owner,
        )
        if self.rng.random() < 0.6:  # switching the family tablet to their own account
            self.em.identify(t - 30_000, ident, d.app_context)
        kind = "purchase" if p.segment != "browse" and self.rng.random() < 0.3 else "browse"
        self.em.session(
            t,
            d.app_context,
            ident,
            kind=kind,
            products=self.products(t, 1 + int(self.rng.random() * 3)),
        )


def simulate(em: Emitter, p: Person) -> dict[tuple[str, str], None]:
    """Play one person's window; returns the identifiers they showed (for truth.csv)."""
    used = em.begin()
    for m in (p.member, p.duplicate):
        if m is not None:
            used[("user_id", m.member_id)] = None
            used[("member_card", m.card)] = None
            for kind, value in (
                ("email", m.email),
                ("phone", m.phone),
                ("line_user_id", m.line_user_id),
            ):
                if value:
                    used[(kind, value)] = None
    life = Life(em, p)
    life.make_plan()
    life.play()
    return used
