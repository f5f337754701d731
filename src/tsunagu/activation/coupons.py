"""Coupons that close the loop at the till: issued online (to profiles, a segment, by a
journey), redeemed by the POS with its store and receipt.

A code is 12 random symbols of Crockford's base 32 (no I, L, O, U: nothing to misread) and a
check symbol (Luhn mod 32, which catches every mistyped symbol and most swapped neighbours), 60
random bits; shown as `XXXX-XXXX-XXXX-C`, read in any case, with or without the dashes. The QR
payload is `TSUNAGU:COUPON:CODE`.

Redemption: exactly one succeeds, whatever runs at once (one writer at a time, store/db.py); the
same receipt again gets the same redemption; another receipt, 409; expired, not yet valid, the
wrong store, below the minimum or the campaign's total reached, 422 naming the reason; unknown,
404. `void` undoes a redemption whose receipt was cancelled.
"""

from __future__ import annotations

import secrets
import threading
import weakref
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from tsunagu.activation import timeline
from tsunagu.activation.assignments import assign
from tsunagu.activation.campaigns import CONTROL, CouponTerms, get_campaign
from tsunagu.activation.protections import in_global_control
from tsunagu.events.normalize import EventRow
from tsunagu.exceptions import Conflict, InvalidInput, NotFound, Refused
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store, utcnow
from tsunagu.store.db import registered
from tsunagu.store.group_commit import GroupCommit

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {c: n for n, c in enumerate(ALPHABET)}
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
QR_PREFIX = "TSUNAGU:COUPON:"


def check_symbol(body: str) -> str:
    """Luhn mod 32 over the symbols of `body`."""
    total, factor = 0, 2
    for symbol in reversed(body):
        added = factor * _VALUE[symbol]
        total += added // 32 + added % 32
        factor = 3 - factor
    return ALPHABET[(32 - total % 32) % 32]


def new_code() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(12))
    return body + check_symbol(body)


def code_of(text: str) -> str | None:
    """A code as typed or scanned (any case, dashes, spaces, the QR prefix), or None if it is
    not one of tsunagu's (its check symbol does not match)."""
    code = text.strip().upper().removeprefix(QR_PREFIX).replace("-", "").replace(" ", "")
    code = code.translate(_READ_AS)
    if len(code) != 13 or any(c not in _VALUE for c in code) or check_symbol(code[:12]) != code[12]:
        return None
    return code


def read_code(text: str) -> str:
    """`code_of`, or NotFound naming the code."""
    code = code_of(text)
    if code is None:
        raise NotFound(f"code: {text!r} is not a coupon code", field="code")
    return code


def shown(code: str) -> str:
    return f"{code[:4]}-{code[4:8]}-{code[8:12]}-{code[12]}"


@dataclass(frozen=True, slots=True)
class Coupon:
    code: str
    campaign_id: str
    profile_id: str | None
    issued_at: datetime
    qr: str
    redemption_id: str | None = None
    store_id: str | None = None
    receipt_id: str | None = None
    discount_yen: int | None = None
    voided: bool = False


def issue(
    *,
    store: Store,
    campaign_id: str,
    profile_ids: list[str],
    rules: IdentityRules | None = None,
    global_control_share: float = 0.0,
) -> list[Coupon]:
    """A code for each profile (up to the campaign's per-customer limit), with "Coupon Issued"
    on their timelines. Every profile is assigned to the campaign; its control group gets no
    coupon (so the report measures what the coupon did), nor does the global control group
    (`global_control_share`, as for sends: no campaign reaches them)."""
    campaign = get_campaign(store=store, campaign_id=campaign_id)
    if campaign.coupon is None:
        raise InvalidInput(
            f"campaign_id: campaign {campaign_id} carries no coupon", field="campaign_id"
        )
    terms = CouponTerms.model_validate(campaign.coupon)
    now = utcnow()
    variants = assign(
        store=store, campaign=campaign, profile_ids=profile_ids, at=now, origin="coupon"
    )
    profile_ids = [
        p
        for p in profile_ids
        if variants.get(p) != CONTROL and not in_global_control(p, global_control_share)
    ]
    value = (
        {"value_yen": terms.value_yen} if terms.value_yen else {"percent_off": terms.percent_off}
    )
    made: list[Coupon] = []
    events = []
    who = timeline.identifiers_of(store, list(dict.fromkeys(profile_ids)), rules or IdentityRules())
    with store.transaction() as cur:
        held = dict(
            cur.execute(
                "SELECT profile_id, count(*) FROM coupons WHERE campaign_id = ? GROUP BY profile_id",
                [campaign_id],
            ).fetchall()
        )
        for profile_id in dict.fromkeys(profile_ids):
            if held.get(profile_id, 0) >= terms.per_customer_limit:
                continue
            held[profile_id] = held.get(profile_id, 0) + 1
            code = new_code()
            made.append(Coupon(code, campaign_id, profile_id, now, QR_PREFIX + code))
            issued = {"coupon_code": code, "campaign_id": campaign_id, **value}
            fields = {"messageId": f"coupon-issued-{code}", "properties": issued}
            events.append((profile_id, "Coupon Issued", fields))
        if made:
            new = pa.table({
                "code": [c.code for c in made], "profile_id": [c.profile_id for c in made],
                "holder": pa.array([list(who[c.profile_id]) if c.profile_id in who else None
                                    for c in made], pa.list_(pa.string())),
            })  # fmt: skip
            with registered(cur, "_issued", new):
                cur.execute(
                    "INSERT INTO coupons (code, campaign_id, profile_id, issued_at, holder) "
                    "SELECT code, ?, profile_id, ?, holder FROM _issued",
                    [campaign_id, now],
                )
            timeline.write(store, cur, events, now, who, fresh=True)  # new codes
    return made


def get_coupon(*, store: Store, code: str) -> Coupon:
    found = read_code(code)
    rows = store.query(
        "SELECT code, campaign_id, profile_id, issued_at, redemption_id, store_id, receipt_id, "
        "discount_yen, voided_at FROM coupons WHERE code = ?",
        [found],
    )
    if not rows:
        raise NotFound(f"code: no coupon {shown(found)}", field="code")
    return _coupon(list(rows[0]))


@dataclass(frozen=True, slots=True)
class HeldCoupon:
    """A coupon its holder may use at a store now (what the staff screen offers to redeem)."""

    code: str
    shown: str
    campaign_id: str
    campaign_name: str
    value_yen: int | None
    percent_off: int | None
    min_purchase_yen: int
    valid_to: date | datetime


def held_coupons(
    *,
    store: Store,
    profile_id: str,
    store_id: str,
    timezone: str = "Asia/Tokyo",
    at: datetime | None = None,
) -> list[HeldCoupon]:
    """The profile's coupons not yet redeemed that are good at `store_id` now."""
    now = at or utcnow()
    out = []
    for code, campaign_id, name, coupon in store.query(
        "SELECT c.code, c.campaign_id, m.name, m.coupon FROM coupons c "
        "JOIN campaigns m USING (campaign_id) WHERE c.profile_id = ? "
        "AND c.redemption_id IS NULL ORDER BY c.issued_at DESC, c.code",
        [profile_id],
    ):
        terms = CouponTerms.model_validate_json(coupon)
        start, end = _bounds(terms, timezone)
        if not start <= now <= end or (terms.stores is not None and store_id not in terms.stores):
            continue
        out.append(
            HeldCoupon(
                code,
                shown(code),
                campaign_id,
                name,
                terms.value_yen,
                terms.percent_off,
                terms.min_purchase_yen,
                terms.valid_to,
            )  # fmt: skip
        )
    return out


def _bounds(terms: CouponTerms, timezone: str) -> tuple[datetime, datetime]:
    """[valid_from, valid_to] in naive UTC; a date is a whole local day."""
    zone = ZoneInfo(timezone)

    def utc(value: date | datetime, end: bool) -> datetime:
        if not isinstance(value, datetime):
            start = datetime(value.year, value.month, value.day, tzinfo=zone)
            value = start + timedelta(days=1) - timedelta(microseconds=1) if end else start
        aware = value if value.tzinfo else value.replace(tzinfo=zone)
        return aware.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    return utc(terms.valid_from, False), utc(terms.valid_to, True)


@dataclass(frozen=True, slots=True)
class _Ask:
    """One till's redemption request."""

    code: str
    store_id: str
    receipt_id: str
    amount_yen: int | None
    timezone: str
    at: datetime | None
    rules: IdentityRules


_TILLS: weakref.WeakKeyDictionary[Store, GroupCommit[_Ask, Coupon]] = weakref.WeakKeyDictionary()
_TILLS_LOCK = threading.Lock()


def redeem(
    *,
    store: Store,
    code: str,
    store_id: str,
    receipt_id: str,
    amount_yen: int | None = None,
    timezone: str = "Asia/Tokyo",
    rules: IdentityRules | None = None,
    at: datetime | None = None,
) -> Coupon:
    """Redeem at the till; see the module's docstring for what is refused and how. Tills that
    ask at once are answered from one transaction (store/group_commit.py), each in turn as if
    alone."""
    with _TILLS_LOCK:
        tills = _TILLS.get(store)
        if tills is None:
            tills = _TILLS[store] = GroupCommit(partial(_redeem_all, store, {}))
    at = at.replace(tzinfo=None) if at else None
    ask = _Ask(code, store_id, receipt_id, amount_yen, timezone, at, rules or IdentityRules())
    return tills.submit(ask)


def _redeem_all(
    store: Store, terms: dict[str, CouponTerms], asks: list[_Ask]
) -> list[Coupon | Exception]:
    """Each ask's coupon, or the refusal to raise to its till, in the order asked. `terms`:
    the campaigns' coupon terms read so far (a campaign never changes)."""
    answers: list[Coupon | Exception | None] = [None] * len(asks)
    found: list[str | None] = [None] * len(asks)
    for n, ask in enumerate(asks):
        if not ask.store_id.strip() or not ask.receipt_id.strip():
            answers[n] = InvalidInput(
                "store_id: the store and the receipt are required", field="store_id"
            )
        elif (code := code_of(ask.code)) is None:
            answers[n] = NotFound(f"code: {ask.code!r} is not a coupon code", field="code")
        else:
            found[n] = code
    codes = sorted({c for c in found if c is not None})
    now = utcnow()
    with store.transaction() as cur:
        held = {row[0]: list(row) for row in cur.execute(
            "SELECT code, campaign_id, profile_id, issued_at, redemption_id, store_id, "
            "receipt_id, discount_yen, voided_at, holder FROM coupons WHERE code = ANY(?)",
            [codes],
        ).fetchall()} if codes else {}  # fmt: skip
        if new := sorted({r[1] for r in held.values()} - terms.keys()):
            for campaign_id, coupon in cur.execute(
                "SELECT campaign_id, coupon FROM campaigns WHERE campaign_id = ANY(?)", [new]
            ).fetchall():
                terms[campaign_id] = CouponTerms.model_validate_json(coupon)
        # Coupons issued before they kept their holder's identifier look it up.
        unknown = [r[2] for r in held.values() if r[2] is not None and r[9] is None]
        for profile_id, identifier in timeline.identifiers_of(
            store, unknown, asks[0].rules
        ).items():
            for other in held.values():
                if other[2] == profile_id:
                    other[9] = list(identifier)
        limited = sorted({r[1] for r in held.values() if terms[r[1]].total_limit is not None})
        used = dict(cur.execute(
            "SELECT campaign_id, count(*) FROM coupons WHERE redemption_id IS NOT NULL "
            "AND campaign_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY campaign_id", [limited],
        ).fetchall()) if limited else {}  # fmt: skip
        done: list[tuple[Any, ...]] = []
        events: list[EventRow] = []
        for n, ask in enumerate(asks):
            code = found[n]
            if code is None:
                continue
            row = held.get(code)
            if row is None:
                answers[n] = NotFound(f"code: no coupon {shown(code)}", field="code")
                continue
            try:
                redeemed = _check(row, terms[row[1]], ask, ask.at or now, used)
            except (Conflict, Refused) as exc:
                answers[n] = exc
                continue
            if redeemed is not None:  # not a replay
                done.append(redeemed)
                events.extend(_redeemed_event(row, ask, redeemed))
            answers[n] = _coupon(row)
        if done:
            cur.execute(
                "UPDATE coupons SET redemption_id = r.redemption_id, "
                "redeemed_at = r.redeemed_at, store_id = r.store_id, receipt_id = r.receipt_id, "
                "amount_yen = r.amount_yen, discount_yen = r.discount_yen, voided_at = NULL "
                "FROM (SELECT unnest(?::VARCHAR[]) AS code, unnest(?::VARCHAR[]) AS redemption_id, "
                "unnest(?::TIMESTAMP[]) AS redeemed_at, unnest(?::VARCHAR[]) AS store_id, "
                "unnest(?::VARCHAR[]) AS receipt_id, unnest(?::BIGINT[]) AS amount_yen, "
                "unnest(?::BIGINT[]) AS discount_yen) r WHERE coupons.code = r.code",
                [list(column) for column in zip(*done, strict=True)],
            )
        store.add_events(cur, events, fresh=True)  # new redemption ids
    return answers  # type: ignore[return-value]


def _check(
    row: list[Any], terms: CouponTerms, ask: _Ask, now: datetime, used: dict[str, int]
) -> tuple[Any, ...] | None:
    """The redemption `ask` makes of the coupon `row` (updated in place, as are the campaign's
    `used` counts), None for a replay of the receipt that redeemed it; Conflict or Refused."""
    code, campaign_id, _, _, redemption, done_store, done_receipt = row[:7]
    if redemption is not None:
        if (done_store, done_receipt) == (ask.store_id, ask.receipt_id):
            return None
        raise Conflict(
            f"code: coupon {shown(code)} was used already (store {done_store}, "
            f"receipt {done_receipt})",
            field="code",
        )
    start, end = _bounds(terms, ask.timezone)
    if now < start:
        raise Refused(f"valid_from: coupon good from {terms.valid_from}", field="valid_from")
    if now > end:
        raise Refused(f"valid_to: coupon expired on {terms.valid_to}", field="valid_to")
    if terms.stores is not None and ask.store_id not in terms.stores:
        raise Refused(f"store_id: coupon not good at store {ask.store_id}", field="store_id")
    if terms.min_purchase_yen and (ask.amount_yen or 0) < terms.min_purchase_yen:
        raise Refused(
            f"amount_yen: coupon needs a purchase of ¥{terms.min_purchase_yen:,} or more",
            field="amount_yen",
        )
    if terms.total_limit is not None:
        if used.get(campaign_id, 0) >= terms.total_limit:
            raise Refused("total_limit: the campaign's coupons are all used", field="total_limit")
        used[campaign_id] = used.get(campaign_id, 0) + 1
    discount = terms.value_yen or (ask.amount_yen or 0) * (terms.percent_off or 0) // 100
    if ask.amount_yen is not None:
        discount = min(discount, ask.amount_yen)
    redemption_id = "rdm_" + secrets.token_hex(8)
    row[4:9] = [redemption_id, ask.store_id, ask.receipt_id, discount, None]
    return (code, redemption_id, now, ask.store_id, ask.receipt_id, ask.amount_yen, discount)


def _redeemed_event(row: list[Any], ask: _Ask, redeemed: tuple[Any, ...]) -> list[EventRow]:
    """ "Coupon Redeemed" on the holder's timeline (none for a coupon without a holder)."""
    code, campaign_id, profile_id = row[:3]
    if profile_id is None:
        return []
    who = {profile_id: tuple(row[9])} if row[9] else {}
    redemption_id, at, discount = redeemed[1], redeemed[2], redeemed[6]
    return timeline.events([(profile_id, "Coupon Redeemed", {
        "messageId": f"coupon-redeemed-{redemption_id}", "context": {"channel": "store"},
        "properties": {"coupon_code": code, "store_id": ask.store_id,
                       "receipt_id": ask.receipt_id, "campaign_id": campaign_id,
                       "discount_yen": discount},
    })], at, who)  # fmt: skip


def _coupon(row: list[Any]) -> Coupon:
    code, campaign_id, profile_id, issued, redemption, shop, receipt, discount, voided = row[:9]
    return Coupon(
        code, campaign_id, profile_id, issued, QR_PREFIX + code, redemption, shop, receipt,
        discount, voided is not None,
    )  # fmt: skip


def void(*, store: Store, code: str, receipt_id: str | None = None) -> Coupon:
    """Undo a redemption whose receipt was cancelled: the code can be used again."""
    found = read_code(code)
    with store.transaction() as cur:
        row = cur.execute(
            "SELECT redemption_id, receipt_id FROM coupons WHERE code = ?", [found]
        ).fetchone()
        if row is None:
            raise NotFound(f"code: no coupon {shown(found)}", field="code")
        if row[0] is None:
            raise Conflict(f"code: coupon {shown(found)} is not redeemed", field="code")
        if receipt_id is not None and receipt_id != row[1]:
            raise Conflict(
                f"receipt_id: coupon {shown(found)} was redeemed on another receipt",
                field="receipt_id",
            )
        cur.execute(
            "UPDATE coupons SET redemption_id = NULL, redeemed_at = NULL, store_id = NULL, "
            "receipt_id = NULL, amount_yen = NULL, discount_yen = NULL, voided_at = ? WHERE code = ?",
            [utcnow(), found],
        )
    return get_coupon(store=store, code=found)


def link_receipts(cur: duckdb.DuckDBPyConnection, receipts: str) -> tuple[int, int]:
    """Receipts of a POS import (`receipts`: store_id, receipt_id, sold_at, coupon_code,
    revenue, discount) that carry one of tsunagu's codes redeem it, as the till would have
    through `redeem` (a till that could not reach tsunagu). Returns (linked, conflicts): a code
    already redeemed on another receipt is left as it was and counted."""
    given = [r[0] for r in cur.execute(
        f"SELECT DISTINCT coupon_code FROM {receipts} WHERE coupon_code IS NOT NULL AND revenue >= 0"
    ).fetchall()]  # fmt: skip
    read = {text: code for text in given if (code := code_of(text)) is not None}
    cur.register("_codes", pa.table({
        "coupon_code": pa.array(list(read), pa.string()),
        "code": pa.array(list(read.values()), pa.string()),
    }))  # fmt: skip
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _coupon_receipts AS SELECT r.*, k.code FROM "
        f"{receipts} r JOIN _codes k USING (coupon_code) WHERE r.revenue >= 0"
    )
    cur.unregister("_codes")
    conflicts = cur.execute(
        "SELECT count(*) FROM _coupon_receipts r JOIN coupons c USING (code) "
        "WHERE c.redemption_id IS NOT NULL AND (c.store_id, c.receipt_id) <> (r.store_id, r.receipt_id)"
    ).fetchone()
    first = ", ".join(
        f"arg_min({c}, sold_at) AS {c}" for c in ("store_id", "receipt_id", "revenue", "discount")
    )
    linked = cur.execute(
        "UPDATE coupons SET redemption_id = 'pos:' || x.store_id || ':' || x.receipt_id, "
        "redeemed_at = x.sold_at, store_id = x.store_id, receipt_id = x.receipt_id, "
        "amount_yen = CAST(x.revenue + x.discount AS BIGINT), "
        "discount_yen = CAST(x.discount AS BIGINT) "
        f"FROM (SELECT code, min(sold_at) AS sold_at, {first} FROM _coupon_receipts "
        "GROUP BY code) x WHERE coupons.code = x.code AND coupons.redemption_id IS NULL "
        "RETURNING coupons.code"
    ).fetchall()
    cur.execute("DROP TABLE _coupon_receipts")
    return len(linked), int(conflicts[0]) if conflicts else 0
