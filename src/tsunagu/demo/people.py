"""Synthetic people: who they are, which identifiers they carry and how they are registered.

Identifiers that must never collide between two people (member ids, cards, phone numbers, the
digits of an e-mail address) are derived from the person's global index through bijections, so
blocks generated in different processes never clash. Random ids (anonymous ids, devices, LINE)
are 64 to 128 random bits from the block's seeded generator.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from tsunagu.demo.catalog import Catalog
from tsunagu.demo.clock import DAY_MS, HOUR_MS, JST_MS, Window
from tsunagu.demo.names import (
    BUILDINGS,
    EMAIL_DOMAIN_WEIGHTS,
    EMAIL_DOMAINS,
    GIVEN_FEMALE,
    GIVEN_MALE,
    PLACEHOLDER_EMAIL,
    PLACEHOLDER_PHONE,
    RESIDENTIAL,
    SURNAMES,
    half_width_kana,
    wide_digits,
)

SEGMENTS = ("anon", "line_anon", "walkin", "browse", "online", "store", "omni")
"""anon: web/app visitor who never logs in; line_anon: LINE friend who never linked; walkin:
store customer without a card; browse: member who does not buy; online / store / omni: buyers
(roughly 35 / 35 / 30)."""
SEGMENT_WEIGHTS = (0.10, 0.03, 0.06, 0.11, 0.23, 0.17, 0.30)
MEMBER_SEGMENTS = frozenset(("browse", "online", "store", "omni"))
_SURNAME_WEIGHTS = [1.0 / (r + 8) for r in range(len(SURNAMES))]
# Category affinity by gender, in catalog.CATEGORY_NAMES order.
_CAT_AFFINITY = {
    "female": (1.0, 0.7, 0.5, 0.6, 0.8, 0.7, 1.1, 0.6, 0.5),
    "male": (1.0, 0.9, 0.7, 0.9, 0.4, 0.3, 0.2, 0.6, 0.5),
}
# Keys next to each letter on a QWERTY keyboard, for typos.
_NEIGHBOURS = dict(
    zip(
        "qwertyuiopasdfghjklzxcvbnm",
        "wa qeas wrds etdf ryfg tugh yihj uojk ipkl ol qwsz awedxz serfcx drtgvc ftyhbv gyujnb "
        "huikmn jiolm kop asx zsdc xdfv cfgb vghn bhjm njk".split(),
        strict=True,
    )
)
_IOS_MODELS = ("iPhone14,5", "iPhone15,2", "iPhone15,4", "iPhone16,1", "iPhone17,3")
_ANDROID_MODELS = ("SO-51C", "SH-53D", "Pixel 8", "SC-51E", "A302ZT", "SOG13")


def uuid4(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def member_id(key: int) -> str:
    """Key ``2 * person`` is a person's registration, ``2 * person + 1`` a duplicate one."""
    return f"M{(key * 387_420_489 + 918_273_645) % 1_000_000_000:09d}"


def member_card(key: int) -> str:
    """A 13-digit in-store EAN (prefix 29) with its check digit."""
    body = f"29{(key * 1_977_326_743 + 5_318_008) % 10_000_000_000:010d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def phone_number(idx: int) -> tuple[str, str, str]:
    n = (idx * 40_353_607 + 52_718_364) % 300_000_000
    rest = f"{n % 100_000_000:08d}"
    return ("090", "080", "070")[n // 100_000_000], rest[:4], rest[4:]


def format_phone(rng: random.Random, number: tuple[str, str, str]) -> str:
    """The number as someone typed it into a form or a till."""
    p, a, b = number
    r = rng.random()
    if r < 0.50:
        return f"{p}-{a}-{b}"
    if r < 0.77:
        return f"{p}{a}{b}"
    if r < 0.85:
        return f"+81{p[1:]}{a}{b}"
    if r < 0.88:
        return f"+81-{p[1:]}-{a}-{b}"
    if r < 0.93:
        return wide_digits(f"{p}-{a}-{b}" if r < 0.91 else f"{p}{a}{b}")
    return f"{p} {a} {b}"


def make_email(rng: random.Random, idx: int, digits: int, given: str, surname: str) -> str:
    n = (idx * 5_764_801 + 271_828) % 10**digits
    r = rng.random()
    if r < 0.3:
        local = f"{given}.{surname}{n}"
    elif r < 0.5:
        local = f"{surname}.{given}{n}"
    elif r < 0.65:
        local = f"{given}{surname}{n}"
    elif r < 0.78:
        local = f"{given[0]}{surname}{n}"
    elif r < 0.9:
        local = f"{surname}_{given}{n}"
    else:
        local = f"{given}_{n}"
    return f"{local}@{rng.choices(EMAIL_DOMAINS, EMAIL_DOMAIN_WEIGHTS)[0]}"


def typo_email(rng: random.Random, email: str) -> str:
    """One slip of the finger on a letter: swap, drop, double or a neighbouring key.

    Digits are never touched, so the result cannot be another person's address.
    """
    local, domain = email.split("@")
    while True:
        in_local = rng.random() < 0.8
        part = local if in_local else domain
        letters = [i for i, ch in enumerate(part) if ch.isalpha()]
        i = rng.choice(letters)
        op = rng.randrange(4)
        if op == 0:
            new = part[:i] + rng.choice(_NEIGHBOURS.get(part[i], "e")) + part[i + 1 :]
        elif op == 1 and len(letters) > 1:
            new = part[:i] + part[i + 1 :]
        elif op == 2:
            new = part[:i] + part[i] + part[i:]
        elif i + 1 < len(part) and part[i + 1].isalpha():
            new = part[:i] + part[i + 1] + part[i] + part[i + 2 :]
        else:
            continue
        if new != part:
            return f"{new}@{domain}" if in_local else f"{local}@{new}"


@dataclass(slots=True)
class Device:
    """An app install: the device id, the SDK's anonymousId and the context it sends."""

    device_id: str
    anon_id: str
    app_context: dict[str, Any]
    device: dict[str, Any]


def make_device(rng: random.Random, tablet: bool = False) -> Device:
    if rng.random() < 0.55:
        device_id = uuid4(rng).upper()
        model = "iPad13,18" if tablet else rng.choice(_IOS_MODELS)
        device = {"id": device_id, "type": "ios", "model": model}
        os = {
            "name": "iPadOS" if tablet else "iOS",
            "version": rng.choice(("17.6", "18.5", "26.0")),
        }
    else:
        device_id = f"{rng.getrandbits(64):016x}"
        model = "SM-X710" if tablet else rng.choice(_ANDROID_MODELS)
        device = {"id": device_id, "type": "android", "model": model}
        os = {"name": "Android", "version": rng.choice(("13", "14", "15", "16"))}
    app = {
        "name": "つなぐ",
        "version": rng.choice(("5.2.0", "5.3.1", "5.4.0")),
        "namespace": "jp.tsunagu.app",
    }
    ctx = {
        "channel": "app",
        "device": device,
        "os": os,
        "app": app,
        "locale": "ja-JP",
        "timezone": "Asia/Tokyo",
    }
    return Device(device_id, uuid4(rng), ctx, device)


@dataclass(slots=True)
class Member:
    """One registration in the CRM (a person may have two: a duplicate made at a till)."""

    member_id: str
    card: str
    email: str
    phone: str
    line_user_id: str
    registered_ms: int
    home_store_id: str
    row: list[Any]


@dataclass(slots=True)
class Person:
    idx: int
    pid: str
    segment: str
    gender: str
    surname: tuple[str, str, str]
    given: tuple[str, str, str]
    birth: date
    home: int
    residence: tuple[str, str, str, str]
    address: str
    act: float
    cats: list[int]
    web: list[str]
    app: Device | None
    line_user_id: str
    line_linked: bool
    email: str
    phone: tuple[str, str, str]
    member: Member | None = None
    duplicate: Member | None = None
    reg_channel: str = ""
    new_member: bool = False
    tablet: Device | None = None
    tablet_owner: bool = False
    beacon: bool = False


def _pick_given(rng: random.Random, gender: str) -> tuple[str, str, str]:
    if gender == "female" or (gender not in ("male",) and rng.random() < 0.6):
        return rng.choice(GIVEN_FEMALE)
    return rng.choice(GIVEN_MALE)


def _address(rng: random.Random, residence: tuple[str, str, str, str]) -> str:
    _, city, town, _ = residence
    text = f"{city}{town}{rng.randint(1, 5)}-{rng.randint(1, 28)}-{rng.randint(1, 22)}"
    if rng.random() < 0.45:
        text += f" {rng.choice(BUILDINGS)}{rng.randint(1, 12)}{rng.randint(1, 9):02d}"
    return text


def _birth(rng: random.Random, end: date) -> date:
    age = 18 + min(60, int(abs(rng.gauss(16, 12))))
    return end - timedelta(days=age * 365 + rng.randint(0, 364))


def make_person(
    rng: random.Random,
    idx: int,
    *,
    catalog: Catalog,
    window: Window,
    digits: int,
    family_of: Person | None = None,
) -> Person:
    """A new person, or (``family_of``) someone living at the same address as another."""
    segment = rng.choices(SEGMENTS, SEGMENT_WEIGHTS)[0]
    r = rng.random()
    gender = "female" if r < 0.6 else "male" if r < 0.95 else "other" if r < 0.96 else ""
    if family_of is not None:
        segment = rng.choice(("browse", "online", "omni"))
        gender = "male" if family_of.gender == "female" else "female"
        surname, home, residence, address = (
            family_of.surname,
            family_of.home,
            family_of.residence,
            family_of.address,
        )
    else:
        surname = rng.choices(SURNAMES, _SURNAME_WEIGHTS)[0]
        home = catalog.pick_store(rng)
        residence = rng.choice(RESIDENTIAL[catalog.stores[home].metro])
        address = _address(rng, residence)
    given = _pick_given(rng, gender)
    affinity = _CAT_AFFINITY["male" if gender == "male" else "female"]
    cats = sorted(set(rng.choices(range(len(affinity)), affinity, k=rng.randint(1, 3))))
    web_share, app_share = {
        "anon": (0.85, 0.2),
        "walkin": (0.3, 0.0),
        "browse": (0.8, 0.35),
        "online": (0.9, 0.45),
        "omni": (0.85, 0.6),
        "store": (0.12, 0.45),
        "line_anon": (0.0, 0.0),
    }[segment]
    if family_of is not None:
        web_share, app_share = 0.7, 0.5
    web = (
        [uuid4(rng) for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))]
        if rng.random() < web_share
        else []
    )
    app = make_device(rng) if rng.random() < app_share else None
    if segment in ("online", "omni", "browse", "anon") and not web and app is None:
        web = [uuid4(rng)]
    is_member = segment in MEMBER_SEGMENTS
    linked = is_member and rng.random() < (0.5 if app else 0.33)
    line_user_id = f"U{rng.getrandbits(128):032x}" if linked or segment == "line_anon" else ""
    sigma = 0.8
    person = Person(
        idx=idx,
        pid=f"P{idx + 1:08d}",
        segment=segment,
        gender=gender,
        surname=surname,
        given=given,
        birth=_birth(rng, window.end),
        home=home,
        residence=residence,
        address=address,
        act=math.exp(rng.gauss(-sigma * sigma / 2, sigma)),
        cats=cats,
        web=web,
        app=app,
        line_user_id=line_user_id,
        line_linked=linked,
        email=make_email(rng, idx, digits, given[2], surname[2]),
        phone=phone_number(idx),
    )
    person.beacon = app is not None and rng.random() < 0.7
    if is_member:
        _register(rng, person, catalog, window)
    return person


def _name_text(rng: random.Random, surname: str, given: str, kana: bool) -> str:
    r = rng.random()
    text = f"{surname}{'　' if r < 0.6 else '' if r < 0.8 else ' '}{given}"
    return half_width_kana(text) if kana and rng.random() < 0.06 else text


def _register(rng: random.Random, p: Person, catalog: Catalog, window: Window) -> None:
    """Give a member their CRM row(s): the registration and, rarely, a duplicate made at a till."""
    if p.segment == "store":
        p.reg_channel = "store"
    elif p.segment == "omni":
        p.reg_channel = "store" if rng.random() < 0.45 else "online"
    else:
        p.reg_channel = "store" if rng.random() < 0.15 else "online"
    at_till = p.reg_channel == "store"
    p.new_member = rng.random() < 0.18 * min(1.0, window.days / 365)
    if p.new_member:
        day = window.store_day(rng) if p.reg_channel == "store" else window.online_day(rng)
        when = (
            window.store_time(rng, day)
            if p.reg_channel == "store"
            else window.online_time(rng, day)
        )
    else:
        first = (date(2016, 1, 1).toordinal() - date(1970, 1, 1).toordinal()) * DAY_MS - JST_MS
        days = (window.start_ms - first) // DAY_MS
        when = first + int(rng.random() * days) * DAY_MS + window.time_of_day(rng, store=at_till)
    email = p.email
    if at_till and rng.random() < 0.12:
        email = PLACEHOLDER_EMAIL if rng.random() < 0.1 else ""
    phone = format_phone(rng, p.phone) if (rng.random() < (0.95 if at_till else 0.65)) else ""
    if at_till and phone and rng.random() < 0.004:
        phone = PLACEHOLDER_PHONE
    home_store = catalog.stores[p.home].store_id if at_till or rng.random() < 0.7 else ""
    p.member = _member(rng, p, 2 * p.idx, email, phone, p.line_user_id, when, home_store, window)
    lo = max(when + DAY_MS, window.start_ms - 200 * DAY_MS)
    hi = window.end_ms - HOUR_MS
    if (
        p.segment in ("store", "omni")
        and email
        and email != PLACEHOLDER_EMAIL
        and lo < hi
        and phone not in ("", PLACEHOLDER_PHONE)
        and rng.random() < 0.035
    ):
        # Re-registered at a till: same person, new card, phone retyped, e-mail mistyped.
        if rng.random() < 0.6:
            phone = format_phone(rng, p.phone)
        later = lo + int(rng.random() * min(hi - lo, 300 * DAY_MS))
        later = later - (later + JST_MS) % DAY_MS + window.time_of_day(rng, store=True)
        if later >= hi:
            later -= DAY_MS
        store = catalog.stores[catalog.pick_store(rng) if rng.random() < 0.3 else p.home].store_id
        p.duplicate = _member(
            rng,
            p,
            2 * p.idx + 1,
            typo_email(rng, email),
            phone,
            "",
            later,
            store,
            window,
            same_as=p.member,
        )


def _member(
    rng: random.Random,
    p: Person,
    key: int,
    email: str,
    phone: str,
    line_user_id: str,
    registered_ms: int,
    home_store_id: str,
    window: Window,
    same_as: Member | None = None,
) -> Member:
    mid, card = member_id(key), member_card(key)
    if same_as is not None:
        name, kana = same_as.row[2], same_as.row[3]
    else:
        name = _name_text(rng, p.surname[0], p.given[0], kana=False)
        kana = _name_text(rng, p.surname[1], p.given[1], kana=True)
    prefecture, _, _, postcode = p.residence
    email_opt = bool(email) and email != PLACEHOLDER_EMAIL and rng.random() < 0.55
    row = [
        mid,
        card,
        name,
        kana,
        email,
        phone,
        line_user_id,
        p.birth.isoformat(),
        p.gender,
        postcode,
        prefecture,
        p.address,
        home_store_id,
        window.jst(registered_ms),
        _b(email_opt),
        _b(bool(line_user_id) and rng.random() < 0.9),
        _b(p.app is not None and rng.random() < 0.6),
        _b(rng.random() < 0.15),
    ]
    return Member(mid, card, email, phone, line_user_id, registered_ms, home_store_id, row)


def _b(value: bool) -> str:
    return "true" if value else "false"
