"""Normalising identifiers in SQL, the same way everywhere: identity resolution, erasure's
suppression list and lookups all call these DuckDB macros.

`tg_clean(type, value)`: e-mails trimmed and lower-cased (NULL unless they look like an
address), Japanese phone numbers in E.164, member cards without spaces or hyphens, other ids
trimmed; full-width ASCII, the ideographic space and the dashes people type become ASCII first.
"""

from __future__ import annotations

import re

from tsunagu.store.sql import literal as sql_literal

_FULL = (
    "".join(chr(c) for c in range(0xFF01, 0xFF5F))
    + "\u3000\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc"
)
_HALF = "".join(chr(c) for c in range(0x21, 0x7F)) + " " + "-" * 8
# Full-width ASCII (Ｔａｒｏ＠…, ０９０), the ideographic space and the many dashes people type
# in phone numbers, as their ASCII forms: NFKC for the characters identifiers are made of.


NORMALIZE_MACROS = f"""
CREATE OR REPLACE TEMP MACRO tg_halfwidth(x) AS
    CASE WHEN regexp_matches(x, '[^\x01-\x7f]') THEN translate(x, {sql_literal(_FULL)}, {sql_literal(_HALF)})
         ELSE x END;
CREATE OR REPLACE TEMP MACRO tg_digits(x) AS regexp_replace(tg_halfwidth(x), '[^0-9]', '', 'g');
CREATE OR REPLACE TEMP MACRO tg_email(x) AS
    CASE WHEN regexp_full_match(lower(trim(tg_halfwidth(x))), '[^@\\s]+@[^@\\s]+\\.[^@\\s]+')
         THEN lower(trim(tg_halfwidth(x))) END;
CREATE OR REPLACE TEMP MACRO tg_phone(x) AS
    CASE
        WHEN starts_with(trim(tg_halfwidth(x)), '+') AND length(tg_digits(x)) BETWEEN 8 AND 15
            THEN '+' || tg_digits(x)
        WHEN starts_with(tg_digits(x), '00') THEN NULL
        WHEN starts_with(tg_digits(x), '0') AND length(tg_digits(x)) IN (10, 11)
            THEN '+81' || substr(tg_digits(x), 2)
        WHEN starts_with(tg_digits(x), '81') AND length(tg_digits(x)) IN (11, 12)
            THEN '+' || tg_digits(x)
    END;
CREATE OR REPLACE TEMP MACRO tg_clean(t, x) AS
    CASE t
        WHEN 'email' THEN tg_email(x)
        WHEN 'phone' THEN tg_phone(x)
        WHEN 'member_card' THEN nullif(regexp_replace(tg_halfwidth(x), '[\\s-]', '', 'g'), '')
        ELSE nullif(trim(x), '')
    END;
"""


SUPPRESSIBLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("user_id", "user_id"),
    ("anonymous_id", "anonymous_id"),
    ("anonymous_id", "previous_id"),
    ("device_id", "device_id"),
    ("email", "email"),
    ("phone", "phone"),
    ("line_user_id", "line_user_id"),
    ("member_card", "member_card"),
)
"""(identifier type, events column) pairs an erased person can be recognised by."""

MEMBER_IDENTIFIER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("user_id", "member_id"),
    ("member_card", "member_card"),
    ("email", "email"),
    ("phone", "phone"),
    ("line_user_id", "line_user_id"),
)
"""(identifier type, members column) pairs: what identifies a member record."""


_HALFWIDTH = str.maketrans(_FULL, _HALF)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_NOT_DIGIT = re.compile(r"[^0-9]")
_CARD_SPACES = re.compile(r"[\s-]")


def clean(kind: str, value: str | None) -> str | None:
    """`tg_clean` in Python, for single values where a query would cost more than the work
    (a lookup). Tests hold the two to the same answers."""
    if value is None:
        return None
    half = value.translate(_HALFWIDTH)
    if kind == "email":
        text = half.strip().lower()
        return text if _EMAIL.fullmatch(text) else None
    if kind == "phone":
        digits = _NOT_DIGIT.sub("", half)
        if half.strip().startswith("+") and 8 <= len(digits) <= 15:
            return "+" + digits
        if digits.startswith("00"):
            return None
        if digits.startswith("0") and len(digits) in (10, 11):
            return "+81" + digits[1:]
        if digits.startswith("81") and len(digits) in (11, 12):
            return "+" + digits
        return None
    if kind == "member_card":
        return _CARD_SPACES.sub("", half) or None
    return value.strip() or None
