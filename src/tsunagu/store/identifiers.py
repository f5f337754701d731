"""Normalising identifiers in SQL, the same way everywhere: identity resolution, erasure's
suppression list and lookups all call these DuckDB macros.

`tg_clean(type, value)`: e-mails trimmed and lower-cased (NULL unless they look like an
address), phone numbers in E.164 or their national digits (store/phones.py), member cards
without spaces or hyphens, other ids trimmed; full-width ASCII, the ideographic space and the
dashes people type become ASCII first.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
from duckdb.func import FunctionNullHandling, PythonUDFType

from tsunagu.exceptions import InvalidInput
from tsunagu.store import phones
from tsunagu.store.phones import DEFAULT_COUNTRY
from tsunagu.store.sql import literal as sql_literal

_FULL = (
    "".join(chr(c) for c in range(0xFF01, 0xFF5F))
    + "\u3000\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc"
)
_HALF = "".join(chr(c) for c in range(0x21, 0x7F)) + " " + "-" * 8
# Full-width ASCII (Ｔａｒｏ＠…, ０９０), the ideographic space and the many dashes people type
# in phone numbers, as their ASCII forms: NFKC for the characters identifiers are made of.


def normalize_macros(country: str = DEFAULT_COUNTRY) -> str:
    """The macros, with phones read for `country` (see store/phones.py: the SQL rules place
    the Japanese forms; `tg_phone_lib` the rest)."""
    jp = "true" if country == "JP" else "false"
    return f"""
CREATE OR REPLACE TEMP MACRO tg_halfwidth(x) AS
    CASE WHEN regexp_matches(x, '[^\x01-\x7f]') THEN translate(x, {sql_literal(_FULL)}, {sql_literal(_HALF)})
         ELSE x END;
CREATE OR REPLACE TEMP MACRO tg_digits(x) AS regexp_replace(tg_halfwidth(x), '[^0-9]', '', 'g');
CREATE OR REPLACE TEMP MACRO tg_email(x) AS
    CASE WHEN regexp_full_match(lower(trim(tg_halfwidth(x))), '[^@\\s]+@[^@\\s]+\\.[^@\\s]+')
         THEN lower(trim(tg_halfwidth(x))) END;
CREATE OR REPLACE TEMP MACRO tg_phone_jp(x, d) AS
    CASE
        WHEN starts_with(trim(tg_halfwidth(x)), '+') THEN
            CASE WHEN starts_with(d, '81') AND substr(d, 3, 1) NOT IN ('', '0')
                      AND length(d) IN (11, 12) THEN '+' || d END
        WHEN starts_with(d, '0') AND NOT starts_with(d, '00') AND NOT starts_with(d, '010')
             AND length(d) IN (10, 11) THEN '+81' || substr(d, 2)
        WHEN starts_with(d, '81') AND substr(d, 3, 1) <> '0' AND length(d) IN (11, 12)
            THEN '+' || d
    END;
CREATE OR REPLACE TEMP MACRO tg_phone(x) AS
    CASE WHEN tg_digits(x) = '' THEN NULL
         ELSE coalesce(CASE WHEN {jp} THEN tg_phone_jp(x, tg_digits(x)) END,
                       tg_phone_lib(x, {sql_literal(country)})) END;
CREATE OR REPLACE TEMP MACRO tg_clean(t, x) AS
    CASE t
        WHEN 'email' THEN tg_email(x)
        WHEN 'phone' THEN tg_phone(x)
        WHEN 'member_card' THEN nullif(regexp_replace(tg_halfwidth(x), '[\\s-]', '', 'g'), '')
        ELSE nullif(trim(x), '')
    END;
"""


def add_functions(con: duckdb.DuckDBPyConnection) -> None:
    """The Python functions the macros call (`tg_phone_lib`), on `con` and its cursors."""
    con.create_function(
        "tg_phone_lib",
        phones.normalize_arrow,
        ["varchar", "varchar"],
        "varchar",
        type=PythonUDFType.ARROW,
        null_handling=FunctionNullHandling.SPECIAL,
    )


def country_of(data_dir: Path) -> str:
    """The default country of a data dir's phones: its rules file's `default_country`."""
    path = data_dir / "identity-rules.json"
    if path.exists():
        try:
            country = json.loads(path.read_text(encoding="utf-8")).get("default_country")
            return phones.valid_country(str(country)) if country else DEFAULT_COUNTRY
        except (ValueError, AttributeError) as exc:
            raise InvalidInput(
                f"{path.name}: default_country: {exc}", field="default_country"
            ) from None
    return DEFAULT_COUNTRY


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
_CARD_SPACES = re.compile(r"[\s-]")


def clean(kind: str, value: str | None, country: str = DEFAULT_COUNTRY) -> str | None:
    """`tg_clean` in Python, for single values where a query would cost more than the work
    (a lookup). Tests hold the two to the same answers."""
    if value is None:
        return None
    half = value.translate(_HALFWIDTH)
    if kind == "email":
        text = half.strip().lower()
        return text if _EMAIL.fullmatch(text) else None
    if kind == "phone":
        return phones.normalize(value, country)
    if kind == "member_card":
        return _CARD_SPACES.sub("", half) or None
    return value.strip() or None
