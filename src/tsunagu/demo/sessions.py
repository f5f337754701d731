"""Writers of single touchpoints: Segment messages (sessions, visits, messages) and POS receipts.

An :class:`Emitter` collects one block's events and receipts in memory (as encoded lines with their
times) and records which identifiers the current person really emitted, for truth.csv. Anything
timed after the end of the window is silently dropped, so follow-ups (refunds, store purchases a
few days after a web visit) never leak past the window.
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from tsunagu.demo.catalog import Catalog
from tsunagu.demo.clock import Window

WEB_CONTEXT = {"channel": "web", "locale": "ja-JP", "timezone": "Asia/Tokyo"}
STORE_CONTEXT = {"channel": "store"}
SHOP_URL = "https://shop.tsunagu.example"
CATALOG_MAILINGS = ((3, 1, "春夏カタログ"), (9, 1, "秋冬カタログ"), (11, 10, "ギフトカタログ"))
"""Printed catalogues posted to members who opted in to direct mail: (month, day, name)."""
PAYMENTS = ("credit_card", "cash", "qr", "e_money", "gift_card")
PAYMENT_WEIGHTS = (45, 20, 18, 14, 3)
_LANDINGS = (
    ("トップ", "/"),
    ("新着アイテム", "/new"),
    ("セール", "/sale"),
    ("ランキング", "/ranking"),
    ("特集", "/feature"),
)
_SCREENS = ("ホーム", "新着", "お気に入り", "会員証", "ランキング")
_BEACON_UUID = "4C1F7A52-3E8B-4B8A-9D2E-7A2F0C1B5E10"


class Ident:
    """Who a message is from: its ``userId``/``anonymousId`` fields and the identifiers it shows.

    ``owns_device=False`` marks an app install that belongs to someone else (a shared family
    tablet): its anonymousId and device id are then not recorded as this person's identifiers.
    """

    __slots__ = ("fields", "ids", "traits")

    def __init__(
        self,
        *,
        user_id: str = "",
        anon_id: str = "",
        device_id: str = "",
        anon_type: str = "anonymous_id",
        traits: dict[str, Any] | None = None,
        owns_device: bool = True,
    ) -> None:
        self.fields: dict[str, str] = {}
        self.ids: dict[tuple[str, str], None] = {}
        if user_id:
            self.fields["userId"] = user_id
            self.ids[("user_id", user_id)] = None
        if anon_id:
            self.fields["anonymousId"] = anon_id
            if owns_device:
                self.ids[(anon_type, anon_id)] = None
        if device_id and owns_device:
            self.ids[("device_id", device_id)] = None
        self.traits = traits or {}


class Emitter:
    """Encodes one block's messages and receipts; ``begin`` switches to the next person."""

    def __init__(
        self, *, rng: random.Random, window: Window, catalog: Catalog, block: int, seed: int = 0
    ) -> None:
        self.rng = rng
        self.seed = seed
        self.win = window
        self.cat = catalog
        self.block = block
        self.end_ms = window.end_ms
        self.events: list[tuple[int, int, bytes]] = []
        self.receipts: list[tuple[int, int, list[list[Any]]]] = []
        self.seq = 0
        self._orders = 0
        self._receipts = 0
        self.used: dict[tuple[str, str], None] = {}
        # The randomised campaign (demo/experiment.py): who is in which variant, and the orders
        # and revenue it added by channel.
        self.assignments: list[tuple[str, str, str]] = []
        self.experiment_added: dict[str, list[int]] = {"online": [0, 0], "store": [0, 0]}
        self.experiment_numbers = 0
        self.mailings = [
            (d, f"CAT-{x.year}-{x.month:02d}", f"{x.year} {name}")
            for d, x in enumerate(window.dates)
            for month, day, name in CATALOG_MAILINGS
            if (x.month, x.day) == (month, day)
        ]

    def begin(self) -> dict[tuple[str, str], None]:
        self.used = {}
        return self.used

    # -- messages -----------------------------------------------------------------------------
    def _push(self, ts: int, msg: dict[str, Any], ident: Ident) -> None:
        self.events.append((ts, self.seq, orjson.dumps(msg)))
        self.seq += 1
        self.used.update(ident.ids)

    def _mid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def track(
        self,
        ts: int,
        event: str,
        ident: Ident,
        ctx: dict[str, Any],
        props: dict[str, Any],
        message_id: str | None = None,
    ) -> bool:
        if ts >= self.end_ms:
            return False
        random_id = self._mid()  # drawn even when unused, so later draws do not shift
        self._push(
            ts,
            {
                "type": "track",
                "event": event,
                **ident.fields,
                "messageId": message_id or random_id,
                "timestamp": self.win.utc(ts),
                "context": ctx,
                "properties": props,
            },
            ident,
        )
        return True

    def page(self, ts: int, ident: Ident, ctx: dict[str, Any], name: str, path: str) -> bool:
        if ts >= self.end_ms:
            return False
        props = {"path": path, "url": SHOP_URL + path, "title": f"{name} | つなぐ オンラインストア"}
        self._push(
            ts,
            {
                "type": "page",
                "name": name,
                **ident.fields,
                "messageId": self._mid(),
                "timestamp": self.win.utc(ts),
                "context": ctx,
                "properties": props,
            },
            ident,
        )
        return True

    def screen(self, ts: int, ident: Ident, ctx: dict[str, Any], name: str) -> bool:
        if ts >= self.end_ms:
            return False
        self._push(
            ts,
            {
                "type": "screen",
                "name": name,
                **ident.fields,
                "messageId": self._mid(),
                "timestamp": self.win.utc(ts),
                "context": ctx,
                "properties": {},
            },
            ident,
        )
        return True

    def identify(self, ts: int, ident: Ident, ctx: dict[str, Any]) -> bool:
        if ts >= self.end_ms:
            return False
        self._push(
            ts,
            {
                "type": "identify",
                **ident.fields,
                "messageId": self._mid(),
                "timestamp": self.win.utc(ts),
                "context": ctx,
                "traits": ident.traits,
            },
            ident,
        )
        for key in ("email", "phone"):
            value = ident.traits.get(key)
            if value:
                self.used[(key, value)] = None
        return True

    # -- online shopping ----------------------------------------------------------------------
    def gap(self) -> int:
        return 6_000 + int(self.rng.random() * 80_000)

    def price(self, product: int, ts: int) -> int:
        """The selling price: list price, or a sale price in the January and July sales."""
        p = self.cat.products[product]
        month = self.win.months[min(self.win.days - 1, max(0, self.win.day_of(ts)))]
        if month in (1, 7) and not p.repeat_purchase and self.rng.random() < 0.4:
            return p.price * 7 // 1000 * 100 if p.price >= 1000 else p.price
        return p.price

    def session(
        self,
        t: int,
        ctx: dict[str, Any],
        ident: Ident,
        *,
        kind: str,
        products: list[int],
        login: Ident | None = None,
        coupon: dict[str, Any] | None = None,
    ) -> tuple[int, Ident, dict[str, Any] | None]:
        """One visit to the web shop or the app.

        ``kind`` is ``browse``, ``abandon`` (cart and checkout, no order) or ``purchase``.
        ``login`` is who the visitor becomes when they log in (before checkout, or sometimes while
        browsing). Returns the end time, who the visitor is at the end and the order, if any.
        """
        rng, cat = self.rng, self.cat
        web = ctx["channel"] == "web"
        if web:
            if products and rng.random() < 0.5:
                name, path = (
                    cat.products[products[0]].name,
                    f"/products/{cat.products[products[0]].sku}",
                )
            else:
                name, path = _LANDINGS[int(rng.random() * len(_LANDINGS))]
            self.page(t, ident, ctx, name, path)
        else:
            self.screen(t, ident, ctx, _SCREENS[int(rng.random() * len(_SCREENS))])
        t += self.gap()
        if products and rng.random() < 0.3:
            p = cat.products[products[0]]
            query = p.subcategory if rng.random() < 0.7 else p.brand
            self.track(t, "Products Searched", ident, ctx, {"query": query})
            t += self.gap()
        for i in products:
            self.track(t, "Product Viewed", ident, ctx, cat.props[i])
            t += self.gap()
        if kind == "browse":
            if products and rng.random() < 0.1:
                self.track(
                    t,
                    "Product Added to Wishlist",
                    ident,
                    ctx,
                    {**cat.props[products[-1]], "wishlist_id": "default"},
                )
                t += self.gap()
            if login is not None and rng.random() < 0.25:
                self.identify(t, login, ctx)
                ident = login
            return t, ident, None
        cart_id = self._mid()
        lines = []
        for i in products[:1] if len(products) < 3 or rng.random() < 0.6 else products[:2]:
            qty = 1 if rng.random() < 0.85 else 2
            line = {**cat.props[i], "price": self.price(i, t), "quantity": qty}
            lines.append(line)
            self.track(t, "Product Added", ident, ctx, {"cart_id": cart_id, **line})
            t += self.gap()
        self.track(t, "Cart Viewed", ident, ctx, {"cart_id": cart_id, "products": lines})
        t += self.gap()
        if kind == "abandon" and rng.random() < 0.35:
            return t, ident, None
        if login is not None and (kind == "purchase" or rng.random() < 0.5):
            self.identify(t, login, ctx)
            ident = login
            t += self.gap()
        subtotal = sum(x["price"] * x["quantity"] for x in lines)
        order_id = self.order_id(t)
        self.track(
            t,
            "Checkout Started",
            ident,
            ctx,
            {
                "order_id": order_id,
                "value": subtotal,
                "revenue": subtotal,
                "currency": "JPY",
                "products": lines,
            },
        )
        t += self.gap() * 2
        if kind != "purchase":
            return t, ident, None
        discount = 0
        props: dict[str, Any] = {
            "order_id": order_id,
            "affiliation": "つなぐ オンラインストア" if web else "つなぐ アプリ",
        }
        if coupon is not None:
            discount = coupon_discount(coupon, subtotal)
            self.track(
                t,
                "Coupon Applied",
                ident,
                ctx,
                {
                    "order_id": order_id,
                    "cart_id": cart_id,
                    "coupon_id": coupon["coupon_id"],
                    "coupon_name": coupon["name"],
                    "code": coupon["code"],
                    "discount": discount,
                },
            )
            t += self.gap()
            props["coupon"] = coupon["code"]
        revenue = subtotal - discount
        shipping = 0 if revenue >= 5000 else 550
        props.update(
            total=revenue + shipping,
            revenue=revenue,
            shipping=shipping,
            discount=discount,
            currency="JPY",
            products=lines,
        )
        if not self.track(t, "Order Completed", ident, ctx, props):
            return t, ident, None
        return t, ident, props

    def order_id(self, t: int) -> str:
        self._orders += 1
        return f"EC{self.win.jst_date(t).replace('-', '')}-{self.block:05d}{self._orders:05d}"

    # -- stores -------------------------------------------------------------------------------
    def store_visit(self, t: int, store: int, ident: Ident, device: dict[str, Any]) -> bool:
        rng = self.rng
        r = rng.random()
        s = self.cat.stores[store]
        ctx: dict[str, Any] = {"channel": "store", "device": device}
        if r < 0.6:
            source = "beacon"
            ctx["beacon"] = {
                "uuid": _BEACON_UUID,
                "major": store + 1,
                "minor": 1 + int(rng.random() * 8),
                "rssi": -40 - int(rng.random() * 50),
            }
        elif r < 0.8:
            source = "wifi"
            ctx["network"] = {"wifi": True, "ssid": "TSUNAGU_FREE_WiFi"}
        else:
            source = "gps"
            ctx["location"] = {
                "latitude": round(s.lat + rng.uniform(-3e-4, 3e-4), 6),
                "longitude": round(s.lon + rng.uniform(-3e-4, 3e-4), 6),
            }
        return self.track(
            t,
            "Store Visited",
            ident,
            ctx,
            {
                "store_id": s.store_id,
                "store_name": s.name,
                "source": source,
                "dwell_seconds": 120 + int(rng.random() * 2400),
            },
        )

    def receipt(
        self,
        t: int,
        store: int,
        card: str,
        items: list[int],
        *,
        coupon: dict[str, Any] | None = None,
        payment: str = "",
    ) -> list[list[Any]] | None:
        """A POS receipt, one row per line; returns its rows (None when past the window)."""
        if t >= self.end_ms or not items:
            return None
        rng, cat = self.rng, self.cat
        s = cat.stores[store]
        self._receipts += 1
        rid = f"{s.store_id}-{self.win.jst_date(t).replace('-', '')}-{self.block:05d}{self._receipts:05d}"
        sold_at = self.win.jst(t)
        payment = payment or rng.choices(PAYMENTS, PAYMENT_WEIGHTS)[0]
        rows: list[list[Any]] = []
        for n, i in enumerate(items, 1):
            unit = self.price(i, t)
            if s.store_type == "outlet" and not cat.products[i].repeat_purchase:
                unit = unit * 7 // 1000 * 100 or unit
            qty = 1 if rng.random() < 0.88 else 2
            rows.append(
                [rid, n, s.store_id, sold_at, card, cat.products[i].sku, qty, unit, 0, payment, ""]
            )
        if coupon is not None:
            # The till takes the coupon off the dearest lines first.
            left = coupon_discount(coupon, sum(r[6] * r[7] for r in rows))
            for r in sorted(rows, key=lambda r: -r[6] * r[7]):
                r[8] = min(left, r[6] * r[7])
                left -= r[8]
                r[10] = coupon["code"]
        self.receipts.append((t, self.seq, rows))
        self.seq += 1
        if card:
            self.used[("member_card", card)] = None
        return rows

    def return_receipt(self, t: int, original: list[list[Any]], store: int) -> None:
        """Bring back one item of an earlier receipt (a negative line)."""
        if t >= self.end_ms:
            return
        line = original[int(self.rng.random() * len(original))]
        s = self.cat.stores[store]
        self._receipts += 1
        rid = f"{s.store_id}-{self.win.jst_date(t).replace('-', '')}-{self.block:05d}{self._receipts:05d}"
        self.receipts.append(
            (
                t,
                self.seq,
                [
                    [
                        rid,
                        1,
                        s.store_id,
                        self.win.jst(t),
                        line[4],
                        line[5],
                        -line[6],
                        line[7],
                        0,
                        line[9],
                        "",
                    ]
                ],
            )
        )
        self.seq += 1
        if line[4]:
            self.used[("member_card", line[4])] = None


def coupon_discount(coupon: dict[str, Any], subtotal: int) -> int:
    if coupon["discount_type"] == "percent":
        return subtotal * coupon["discount"] // 100
    return min(coupon["discount"], subtotal)
