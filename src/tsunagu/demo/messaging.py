"""Contacts the retailer starts: LINE pushes, e-mail newsletters, printed catalogues, coupons.

A mixin of :class:`tsunagu.demo.behaviour.Life`: it plans the sends (on fixed weekdays and hours,
as campaign tools do) and plays them, including the click that brings a reader to the shop.
"""

from __future__ import annotations

import random
from typing import Any

from tsunagu.demo.clock import DAY_MS, HOUR_MS, Window, poisson
from tsunagu.demo.people import Member, Person
from tsunagu.demo.sessions import Emitter, Ident

MESSAGE_RATE = 0.5
"""Scales how often members hear from the retailer (LINE, e-mail, coupons)."""
# Each month's campaign: name, discount, and whether the discount is yen or percent.
CAMPAIGNS = {
    1: ("初売り", 1000, "amount"),
    2: ("バレンタイン", 500, "amount"),
    3: ("新生活応援", 10, "percent"),
    4: ("春の新作", 500, "amount"),
    5: ("GWセール", 10, "percent"),
    6: ("梅雨のおすすめ", 500, "amount"),
    7: ("サマーセール", 15, "percent"),
    8: ("夏のクリアランス", 1000, "amount"),
    9: ("秋の新作", 500, "amount"),
    10: ("秋冬コレクション", 1000, "amount"),
    11: ("ブラックフライデー", 20, "percent"),
    12: ("クリスマス", 1000, "amount"),
}
_CODE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class Contacts:
    """Planning and playing of one person's messages and coupons (mixed into ``Life``)."""

    em: Emitter
    p: Person
    rng: random.Random
    win: Window
    user: Ident | None
    opt: list[bool]
    plan: list[tuple[int, int, str, Any]]

    def add(self, t: int, kind: str, payload: Any = None) -> None:
        self.plan.append((t, len(self.plan), kind, payload))

    def month(self, t: int) -> int:
        return self.win.months[min(self.win.days - 1, max(0, self.win.day_of(t)))]

    def do_browse(self, t: int, payload: Any, ctx_extra: dict[str, Any] | None = None) -> None:
        raise NotImplementedError  # a visit to the shop, played by Life

    def plan_contacts(self, m: Member) -> None:
        p, rng, win = self.p, self.rng, self.win
        g = win.days / 365 * MESSAGE_RATE
        if p.line_linked:
            ident = Ident(user_id=m.member_id)
            ident.ids[("line_user_id", p.line_user_id)] = None
            self.plan_line(2.5, ident)
        email_ok = self.opt[0]
        if email_ok:
            for _ in range(poisson(rng, 3.0 * g)):
                self.add(self.blast_t(5, 12), "email")
        if self.opt[3]:
            for d, catalog_id, name in self.em.mailings:
                if rng.random() < 0.5:
                    self.add(win.day_ms(d) + 10 * HOUR_MS, "catalog", (catalog_id, name))
        for _ in range(poisson(rng, 0.8 * g)):
            t = self.blast_t(2, 12)
            channel = (
                "line"
                if p.line_linked and self.opt[1]
                else "app"
                if p.app and self.opt[2]
                else "email"
                if email_ok
                else ""
            )
            if not channel:
                continue
            coupon = self.coupon(t)
            self.add(t, "coupon", (channel, coupon))
            if p.segment in ("online", "store", "omni") and rng.random() < 0.35:
                later = t + DAY_MS // 2 + int(rng.random() * 13 * DAY_MS)
                store = p.segment == "store" or (p.segment == "omni" and rng.random() < 0.5)
                if store:
                    later = (
                        self.win.day_ms(self.win.day_of(later))
                        + 11 * HOUR_MS
                        + int(rng.random() * 9 * HOUR_MS)
                    )
                    self.add(later, "buy_store", {"coupon": coupon, "card": True})
                else:
                    self.add(later, "buy_online", {"coupon": coupon})

    def plan_line(self, rate: float, ident: Ident) -> None:
        g = self.win.days / 365 * MESSAGE_RATE
        for _ in range(poisson(self.rng, rate * g)):
            self.add(self.blast_t(3, 19), "line", ident)

    def blast_t(self, weekday_offset: int, hour: int) -> int:
        """Campaign sends go out on fixed weekdays at fixed hours, spread over a few minutes."""
        day = self.win.online_day(self.rng) // 7 * 7 + weekday_offset
        if day >= self.win.days:
            day -= 7
        day = max(0, day)
        return self.win.day_ms(day) + hour * HOUR_MS + int(self.rng.random() * 20 * 60_000)

    def coupon(self, t: int) -> dict[str, Any]:
        month = self.month(t)
        name, discount, kind = CAMPAIGNS[month]
        year = self.win.dates[min(self.win.days - 1, max(0, self.win.day_of(t)))].year
        code = "TS" + "".join(self.rng.choice(_CODE_CHARS) for _ in range(10))
        return {
            "coupon_id": f"CPN-{year}{month:02d}",
            "name": f"{name}クーポン",
            "code": code,
            "discount": discount,
            "discount_type": kind,
        }

    def campaign(self, t: int, channel: str) -> dict[str, str]:
        month = self.month(t)
        year = self.win.dates[min(self.win.days - 1, max(0, self.win.day_of(t)))].year
        return {
            "campaign_id": f"CMP-{year}{month:02d}-{channel.upper()}",
            "campaign_name": CAMPAIGNS[month][0],
        }

    def do_line(self, t: int, ident: Ident) -> None:
        rng, em = self.rng, self.em
        ctx = {"channel": "line", "traits": {"line_user_id": self.p.line_user_id}}
        camp = self.campaign(t, "line")
        em.track(t, "Message Sent", ident, ctx, {**camp, "message_type": "push"})
        if rng.random() < 0.55:
            opened = t + 60_000 + int(rng.random() * 3 * HOUR_MS)
            em.track(opened, "Message Opened", ident, ctx, {**camp, "message_type": "push"})
            if self.user is not None and rng.random() < 0.15 and opened < em.end_ms:
                extra = {
                    "campaign": {"source": "line", "medium": "message", "name": camp["campaign_id"]}
                }
                self.do_browse(opened + 20_000, "browse", extra)

    def do_email(self, t: int, _: Any) -> None:
        rng, em = self.rng, self.em
        assert self.user is not None
        camp = self.campaign(t, "email")
        ctx = {"channel": "email"}
        props = {
            **camp,
            "message_type": "newsletter",
            "subject": f"【つなぐ】{camp['campaign_name']}のお知らせ",
        }
        em.track(t, "Message Sent", self.user, ctx, props)
        if rng.random() < 0.25:
            opened = t + 600_000 + int(rng.random() * 2 * DAY_MS)
            em.track(opened, "Message Opened", self.user, ctx, props)
            if rng.random() < 0.1 and opened < em.end_ms:
                extra = {
                    "campaign": {
                        "source": "email",
                        "medium": "newsletter",
                        "name": camp["campaign_id"],
                    }
                }
                self.do_browse(opened + 30_000, "browse", extra)

    def do_catalog(self, t: int, payload: tuple[str, str]) -> None:
        assert self.user is not None
        self.em.track(
            t,
            "Catalog Sent",
            self.user,
            {"channel": "catalog"},
            {"catalog_id": payload[0], "catalog_name": payload[1], "format": "print"},
        )

    def do_coupon(self, t: int, payload: tuple[str, dict[str, Any]]) -> None:
        channel, coupon = payload
        assert self.user is not None
        ident: Ident = self.user
        ctx: dict[str, Any] = {"channel": channel}
        if channel == "line":
            ident = Ident(user_id=self.user.fields["userId"])
            ident.ids[("line_user_id", self.p.line_user_id)] = None
            ctx = {"channel": "line", "traits": {"line_user_id": self.p.line_user_id}}
        elif channel == "app" and self.p.app is not None:  # a push to the member's phone
            ident = Ident(user_id=self.user.fields["userId"], device_id=self.p.app.device_id)
            ctx = self.p.app.app_context
        expires = self.win.jst_date(t + 14 * DAY_MS)
        self.em.track(
            t,
            "Coupon Issued",
            ident,
            ctx,
            {
                "coupon_id": coupon["coupon_id"],
                "coupon_name": coupon["name"],
                "code": coupon["code"],
                "discount": coupon["discount"],
                "discount_type": coupon["discount_type"],
                "campaign_id": coupon["coupon_id"].replace("CPN", "CMP"),
                "expires_at": expires,
            },
        )
