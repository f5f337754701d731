"""The store-staff screen's one call: who is this member, what did they look at online, what
to offer them here.

Given the member card (or whatever the app's QR code carries: a member id, a card number, or
TYPE:VALUE; or what the clerk types: a card, a phone number, an e-mail) and the store, it
returns the profile summary, the fan level, the lifetime value, the recent online activity
(viewed, favourited, carted on the web, the app or LINE), the favourites and the
recommendations this store has in stock, the coupons the customer holds that are still valid
(those of the POS history, and tsunagu's own, which the till can redeem here), and the
click-and-collect holds waiting at this store.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tsunagu.activation.coupons import held_coupons
from tsunagu.analytics.fans import level_of
from tsunagu.analytics.ltv import prediction_of
from tsunagu.catalog.favourites import favourites
from tsunagu.catalog.inventory import available_here
from tsunagu.catalog.reservations import Reservation, holds_at
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.identity.profiles import get_profile, lookup
from tsunagu.identity.rules import IdentityRules
from tsunagu.recommend.service import Recommendation, model_for, recommend
from tsunagu.store import Store

ONLINE_ACTIVITY = ("Product Viewed", "Product Added", "Product Added to Wishlist", "Cart Viewed")
ONLINE_CHANNELS = ("web", "app", "line")
SUMMARY_TRAITS = ("name", "name_kana", "gender", "birth_date", "prefecture")


class Activity(BaseModel):
    event: str
    channel: str
    at: datetime
    """UTC."""
    sku: str | None
    name: str | None
    category: str | None


class Coupon(BaseModel):
    code: str
    coupon_id: str | None
    name: str | None
    discount: float | None
    discount_type: str | None
    expires_at: date | None
    issued_at: datetime
    channel: str


class Item(BaseModel):
    sku: str
    name: str | None
    available: int
    """Units this store can sell now (stock less holds)."""


class ClientelingView(BaseModel):
    profile_id: str
    store_id: str
    member_ids: list[str]
    summary: dict[str, Any]
    """Name, kana, ... from the member record; figures across channels."""
    fan_level: dict[str, Any] | None
    ltv: dict[str, Any] | None
    recent_online: list[Activity]
    recommendations: list[Recommendation]
    coupons: list[Coupon]
    redeemable: list[dict[str, Any]] = []
    """tsunagu's coupons good here now (activation.coupons.HeldCoupon), to redeem at the till."""
    favourites_here: list[Item] = []
    holds: list[Reservation] = []
    """Click-and-collect holds waiting at this store."""


def clienteling(
    *,
    store: Store,
    rules: IdentityRules,
    data_dir: Path,
    store_id: str,
    member_card: str | None = None,
    qr: str | None = None,
    q: str | None = None,
    timezone: str = "Asia/Tokyo",
    recent: int = 10,
    recommendations: int = 5,
) -> ClientelingView:
    """Everything the staff screen shows for the customer at the counter."""
    if not store.query("SELECT 1 FROM stores WHERE store_id = ?", [store_id]):
        raise NotFound(f"store_id: no store {store_id!r}", field="store_id")
    if member_card:
        profile_id = lookup(store=store, rules=rules, kind="member_card", value=member_card)
    elif qr:
        profile_id = _scanned(store, rules, qr)
    elif q and q.strip():
        profile_id = find_customer(store=store, rules=rules, q=q)
    else:
        raise InvalidInput(
            "member_card: give the member card or the app's QR code", field="member_card"
        )
    profile = get_profile(store=store, profile_id=profile_id, rules=rules)
    summary = {k: profile.traits[k] for k in SUMMARY_TRAITS if k in profile.traits}
    summary.update(profile.computed)
    pid = store.query("SELECT pid FROM analytics_profiles WHERE profile_id = ?", [profile_id])
    activity: list[Activity] = []
    coupons: list[Coupon] = []
    if pid:
        activity = _activity(store, int(pid[0][0]), recent)
        coupons = _coupons(store, int(pid[0][0]))
    suggested = recommend(
        store=store,
        recommender=model_for(store=store, data_dir=data_dir),
        profile_id=profile_id,
        context="store",
        store_id=store_id,
        limit=recommendations,
    ).items
    return ClientelingView(
        profile_id=profile_id,
        store_id=store_id,
        member_ids=profile.identifiers.get("user_id", []),
        summary=summary,
        fan_level=level_of(store, profile_id),
        ltv=prediction_of(store, profile_id),
        recent_online=activity,
        recommendations=suggested,
        coupons=coupons,
        redeemable=[
            dataclasses.asdict(c)
            for c in held_coupons(
                store=store, profile_id=profile_id, store_id=store_id, timezone=timezone
            )
        ],
        favourites_here=_in_stock(store, store_id, favourites(store=store, profile_id=profile_id)),
        holds=holds_at(store=store, store_id=store_id, profile_id=profile_id),
    )


def _scanned(store: Store, rules: IdentityRules, qr: str) -> str:
    kind, _, value = qr.partition(":") if ":" in qr else ("", "", qr)
    return lookup(store=store, rules=rules, kind=kind or None, value=value or qr)


def find_customer(*, store: Store, rules: IdentityRules, q: str) -> str:
    """The profile behind what the clerk typed or scanned: an e-mail, the app's QR payload
    (TYPE:VALUE), a member card, a member id or a phone number (digits may be either: the card
    is tried first)."""
    q = unicodedata.normalize("NFKC", q).strip()
    if len(q) > 1000:
        raise InvalidInput("q: at most 1,000 characters", field="q")
    if "@" in q:
        return lookup(store=store, rules=rules, kind="email", value=q)
    if ":" in q:
        return _scanned(store, rules, q)
    for kind in ("member_card", "user_id", "phone"):
        try:
            return lookup(store=store, rules=rules, kind=kind, value=q)
        except (NotFound, InvalidInput):
            continue
    raise NotFound(f"q: no customer with the card, member id or phone {q!r}", field="q")


def _in_stock(store: Store, store_id: str, skus: list[str]) -> list[Item]:
    here = available_here(store=store, store_id=store_id, skus=skus)
    names = dict(store.query("SELECT sku, name FROM products WHERE sku = ANY(?)", [skus]))
    return [Item(sku=s, name=names.get(s), available=here[s]) for s in skus if s in here]


def _activity(store: Store, pid: int, limit: int) -> list[Activity]:
    events = ", ".join(f"'{e}'" for e in ONLINE_ACTIVITY)
    channels = ", ".join(f"'{c}'" for c in ONLINE_CHANNELS)
    rows = store.query(
        "SELECT e.event, e.channel, e.ts, coalesce(e.sku, e.skus[1]), p.name, "
        "coalesce(e.category, p.category) FROM analytics_events e "
        "LEFT JOIN products p ON p.sku = coalesce(e.sku, e.skus[1]) "
        f"WHERE e.pid = ? AND e.event IN ({events}) AND e.channel IN ({channels}) "
        "ORDER BY e.r DESC LIMIT ?",
        [pid, limit],
    )
    return [
        Activity(event=ev, channel=ch, at=ts, sku=sku, name=name, category=cat)
        for ev, ch, ts, sku, name, cat in rows
    ]


def _coupons(store: Store, pid: int) -> list[Coupon]:
    """Coupons issued to the customer that were not redeemed and have not expired by the
    data's present (the last event: today, on a live system; the end of an imported history)."""
    present = store.scalar("SELECT max(day) FROM analytics_events")
    today = min(datetime.now(UTC).date(), present) if present else datetime.now(UTC).date()
    rows = store.query(
        "SELECT properties, ts, channel FROM analytics_events WHERE pid = ? "
        "AND event = 'Coupon Issued' ORDER BY ts DESC",
        [pid],
    )
    redeemed = {
        r[0]
        for r in store.query(
            "SELECT json_extract_string(properties, '$.code') FROM analytics_events "
            "WHERE pid = ? AND event IN ('Coupon Redeemed', 'Coupon Applied')",
            [pid],
        )
    }
    out = []
    for raw, ts, channel in rows:
        props = json.loads(raw) if raw else {}
        code = props.get("code")
        if not code or code in redeemed:
            continue
        expires = _date(props.get("expires_at"))
        if expires is not None and expires < today:
            continue
        discount = props.get("discount")
        out.append(
            Coupon(
                code=str(code),
                coupon_id=props.get("coupon_id"),
                name=props.get("coupon_name") or props.get("name"),
                discount=float(discount) if isinstance(discount, int | float) else None,
                discount_type=props.get("discount_type"),
                expires_at=expires,
                issued_at=ts,
                channel=channel,
            )
        )
    return out


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
