"""Identity rules: how identifiers are normalised, which values never link people, and how many
values of each type one profile may hold.

Merging two different people is worse than missing a merge, so the defaults are careful:
a profile holds at most one member id and one member card (as Segment Unify holds one user_id),
at most five of anything else, and values that tills and forms fill in when the customer gives
nothing (`noemail@example.com`, `000-0000-0000`, `unknown`) are never identifiers.

Everything here becomes SQL (DuckDB macros), so normalising five million identifiers is one
query, and a single lookup normalises its value the same way.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator

from tsunagu.events.model import CHANNELS, IdentifierType
from tsunagu.exceptions import InvalidInput
from tsunagu.store.identifiers import clean, normalize_macros
from tsunagu.store.phones import DEFAULT_COUNTRY, valid_country
from tsunagu.store.sql import literal as sql_literal

TYPES: tuple[str, ...] = tuple(t.value for t in IdentifierType)
_DEFAULT_TRAIT_SOURCES: list[str | list[str]] = [
    "members",
    "store",
    "call_center",
    ["web", "app", "line"],
]


class IdentityRules(BaseModel):
    """The rules identity resolution follows; stored as `identity-rules.json` in the data dir."""

    limits: dict[str, int] = Field(
        default_factory=lambda: {
            "user_id": 1,
            "member_card": 1,
            "email": 5,
            "phone": 5,
            "line_user_id": 5,
            "device_id": 5,
            "anonymous_id": 5,
        }
    )
    """Most values of a type one profile may hold; a link that would exceed it is refused."""

    priority: list[str] = Field(
        default_factory=lambda: [
            "user_id",
            "member_card",
            "line_user_id",
            "email",
            "phone",
            "device_id",
            "anonymous_id",
        ]
    )
    """Highest first. When a record's identifiers cannot all join one profile, the profile is
    the one of its highest-priority identifier, and lower ones that would break a limit stay
    out."""

    blocked: list[str] = Field(
        default_factory=lambda: [
            r"(?i)(null|none|nil|unknown|undefined|n/?a|na|-+|0+|test|dummy|x+|\?+)",
        ]
    )
    """Regular expressions (full match, RE2) of values that never identify anyone, any type."""

    blocked_by_type: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "email": [
                r"(?i)(no-?e?-?mail|nomail|none|null|unknown|dummy|test|sample|noreply|no-reply"
                r"|x+|a+|abc|na|n/a|mail|email)@.*",
                r"(?i)[^@]*@(example\.invalid|none\.com|test\.com|nomail\.com|noemail\.com)",
            ],
            # One digit repeated (+81000000000, +819000000000, 99999999) or a run like
            # 1234567890, in E.164 or as national digits.
            "phone": [
                r"(\+81)?(0+|1+|2+|3+|4+|5+|6+|7+|8+|9+)",
                r"\+81(90|80|70)?(0+|1+|2+|3+|4+|5+|6+|7+|8+|9+)",
                r"(\+81)?[0-9]?0?123456789[0-9]?",
            ],
            "member_card": [r"(0+|1+|2+|3+|4+|5+|6+|7+|8+|9+)"],
        }
    )

    default_country: str = DEFAULT_COUNTRY
    """Where a phone written without a country code is read as from (ISO 3166, e.g. JP, US):
    valid there, it becomes E.164; otherwise its national digits are compared."""

    trait_sources: list[str | list[str]] = Field(
        default_factory=lambda: [s if isinstance(s, str) else [*s] for s in _DEFAULT_TRAIT_SOURCES]
    )
    """Where a profile's traits come from, most trusted first: `members` (the member master) or
    an event channel (`store` is the POS). A key takes its value from the most trusted source
    that has it; a list groups sources of equal rank, within which the latest value wins.
    Sources not listed rank below every listed one, together. See identity/traits.py."""

    @field_validator("default_country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        return valid_country(value)

    @field_validator("trait_sources")
    @classmethod
    def _known_sources(cls, value: list[str | list[str]]) -> list[str | list[str]]:
        seen: list[str] = []
        for item in value:
            group = [item] if isinstance(item, str) else item
            if not group:
                raise ValueError("an empty group of trait sources")
            if "members" in group and len(group) > 1:
                raise ValueError("members (the member master) ranks on its own")
            for name in group:
                if name != "members" and name not in CHANNELS:
                    raise ValueError(
                        f"unknown trait source {name!r}: members or one of "
                        f"{', '.join(sorted(CHANNELS))}"
                    )
                if name in seen:
                    raise ValueError(f"trait source {name!r} listed twice")
                seen.append(name)
        return value

    @field_validator("limits")
    @classmethod
    def _known_types(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = set(value) - set(TYPES)
        if unknown:
            raise ValueError(f"unknown identifier type {sorted(unknown)[0]!r}")
        if any(v < 1 for v in value.values()):
            raise ValueError("a limit must be at least 1")
        return value

    @field_validator("priority")
    @classmethod
    def _complete_priority(cls, value: list[str]) -> list[str]:
        if sorted(value) != sorted(TYPES):
            raise ValueError(f"priority must list each of {', '.join(TYPES)} once")
        return value

    def norm(self, kind: str, value: str) -> str | None:
        """`tg_norm` in Python: the value normalised, or None when unusable or blocked."""
        cleaned = clean(kind, value, self.default_country)
        if cleaned is None:
            return None
        patterns = [*self.blocked, *self.blocked_by_type.get(kind, [])]
        if any(_compiled(p).fullmatch(cleaned) for p in patterns):
            return None
        return cleaned

    def limit(self, kind: str) -> int:
        return self.limits.get(kind, 5)

    def rank(self, kind: str) -> int:
        """0 for the highest priority."""
        return self.priority.index(kind)

    def trait_ranks(self) -> dict[str, int]:
        """Trait source -> rank (0 is the most trusted)."""
        return {
            name: rank
            for rank, item in enumerate(self.trait_sources)
            for name in ([item] if isinstance(item, str) else item)
        }

    def unlisted_trait_rank(self) -> int:
        return len(self.trait_sources)

    # -- SQL -----------------------------------------------------------------------------------
    def macros(self) -> str:
        """DuckDB macros: `tg_norm(type, value)` (NULL when the value is unusable or blocked) and
        `tg_rank(type)`."""
        blocked_any = " OR ".join(f"regexp_full_match(v, {sql_literal(p)})" for p in self.blocked)
        per_type = []
        for kind, patterns in self.blocked_by_type.items():
            cond = " OR ".join(f"regexp_full_match(v, {sql_literal(p)})" for p in patterns)
            per_type.append(f"(t = {sql_literal(kind)} AND ({cond}))")
        blocked = " OR ".join([f"({blocked_any})", *per_type]) if blocked_any else "false"
        ranks = " ".join(f"WHEN {sql_literal(k)} THEN {i}" for i, k in enumerate(self.priority))
        return (
            normalize_macros(self.default_country)
            + f"""
CREATE OR REPLACE TEMP MACRO tg_blocked(t, v) AS ({blocked});
CREATE OR REPLACE TEMP MACRO tg_norm(t, x) AS
    CASE WHEN tg_clean(t, x) IS NULL OR tg_blocked(t, tg_clean(t, x)) THEN NULL
         ELSE tg_clean(t, x) END;
CREATE OR REPLACE TEMP MACRO tg_rank(t) AS CASE t {ranks} ELSE 99 END;
"""
        )


def load_rules(data_dir: Path) -> IdentityRules:
    """`identity-rules.json` in the data dir, or the defaults."""
    path = data_dir / "identity-rules.json"
    if not path.exists():
        return IdentityRules()
    try:
        return IdentityRules.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "rules"
        raise InvalidInput(f"{path.name}: {where}: {first['msg']}", field=where) from None
    except ValueError as exc:  # not JSON
        raise InvalidInput(f"{path.name}: {exc}", field="rules") from None


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
