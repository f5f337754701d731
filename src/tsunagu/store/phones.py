"""Phone numbers, normalised one way for the identity graph, imports, lookups and matching.

A number becomes E.164 (`+819012345678`) when its country can be told: written internationally
(`+44 20 …`, `010 1 212 …` dialled from Japan, `00 44 …`), or valid in the default country
(`--default-country`, the rules file's `default_country`, default JP). A number that is neither
(a foreign number written nationally, `212/555-0134` in a Japanese file) keeps its national
digits (`2125550134`): two spellings of it still compare equal, and nothing is dropped. What
Japanese forms and tills write most (`090-1234-5678`, `０３－３４５６－７８９０`, `+81 3 …`,
`8190…`) is placed by a few SQL rules (`tg_phone`); everything else goes to libphonenumber's
metadata (the `phonenumbers` package), once per distinct value, through the `tg_phone_lib`
function every store connection has.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
import pyarrow as pa

DEFAULT_COUNTRY = "JP"
NATIONAL_DIGITS = (8, 15)
"""A number whose country nobody can tell counts only with this many digits (a local number
without its area code, `3456-7890`, is too short to say whose it is)."""

_FULL = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
_HALF = "".join(chr(c) for c in range(0x21, 0x7F)) + " "
_HALFWIDTH = str.maketrans(_FULL, _HALF)
_NOT_DIGIT = re.compile(r"[^0-9]")


def valid_country(code: str) -> str:
    """`code` as a region phonenumbers knows (`jp` -> `JP`), or ValueError."""
    region = code.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown country {code!r}: an ISO 3166 code such as JP, US or GB")
    return region


def japanese_rule(text: str, digits: str) -> str | None:
    """What the SQL fast path places (see `tg_phone`): Japanese national numbers, and
    `+81` / `81` followed by a national number without its trunk 0."""
    if text.startswith("+"):
        if digits.startswith("81") and digits[2:3] not in ("", "0") and len(digits) in (11, 12):
            return "+" + digits
        return None
    if digits.startswith("0") and not digits.startswith(("00", "010")) and len(digits) in (10, 11):
        return "+81" + digits[1:]
    if digits.startswith("81") and digits[2:3] != "0" and len(digits) in (11, 12):
        return "+" + digits
    return None


@lru_cache(maxsize=65536)
def normalize(value: str | None, country: str = DEFAULT_COUNTRY) -> str | None:
    """E.164 where the country can be told, else the national digits, else None.

    >>> normalize("03/3456-7890"), normalize("212/555-0134"), normalize("212/555-0134", "US")
    ('+81334567890', '2125550134', '+12125550134')
    """
    if value is None:
        return None
    text = value.translate(_HALFWIDTH).strip()
    digits = _NOT_DIGIT.sub("", text)
    if not digits:
        return None
    if country == "JP" and (placed := japanese_rule(text, digits)):
        return placed
    try:
        number = phonenumbers.parse(text, country, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None:
        source = number.country_code_source
        international = source != phonenumbers.CountryCodeSource.FROM_DEFAULT_COUNTRY
        if phonenumbers.is_valid_number(number) or (
            international and phonenumbers.is_possible_number(number)
        ):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if international:
            return None  # a country code with a number it cannot have
    low, high = NATIONAL_DIGITS
    return digits if low <= len(digits) <= high else None


def national(value: str | None) -> str | None:
    """The national significant number of a normalised phone (E.164 without its country
    code; national digits without a trunk 0): `+12125550134` and `2125550134` meet here."""
    if not value:
        return None
    if value.startswith("+81"):  # most of what a Japanese store holds: no parse needed
        return value[3:]
    if value.startswith("+"):
        try:
            return str(phonenumbers.parse(value).national_number)
        except phonenumbers.NumberParseException:
            return value[1:]
    return value.lstrip("0") or None


def normalize_arrow(values: pa.Array, countries: pa.Array) -> pa.Array:
    """`normalize` over Arrow arrays: the `tg_phone_lib(value, country)` DuckDB function."""
    return pa.array(
        [
            normalize(v, c or DEFAULT_COUNTRY)
            for v, c in zip(values.to_pylist(), countries.to_pylist(), strict=True)
        ],
        pa.string(),
    )
