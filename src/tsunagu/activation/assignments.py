"""Who is in which variant of a campaign, and since when.

Sends, coupon drops and journeys assign the customers they reach by `Campaign.variant` (a hash
of campaign and customer); a campaign run elsewhere (a catalogue mailing, another e-mail tool)
brings its own assignment as a CSV (`import_assignments`). A customer's first assignment holds:
the same customer again in the same variant is a duplicate, in another variant a reject.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from tsunagu.activation.campaigns import CONTROL, Campaign, get_campaign
from tsunagu.exceptions import InvalidInput
from tsunagu.store import Store, utcnow
from tsunagu.store.db import count
from tsunagu.store.files import Column, TableSpec, rejects_path, stage, write_rejects
from tsunagu.store.identifiers import normalize_macros
from tsunagu.store.sql import literal

IDENTIFIER_COLUMNS = ("user_id", "member_card", "email", "phone", "line_user_id")
"""The identifier columns an assignment file may name its customers by, as the imports do."""
_KNOWN_TYPES = (*IDENTIFIER_COLUMNS, "anonymous_id", "device_id")

SPEC = TableSpec(
    kind="campaign assignments",
    columns=(
        Column(
            "variant", required=True, may_be_absent=True, aliases=("group", "arm"), max_length=50
        ),
        Column("assigned_at", "timestamp", aliases=("sent_at", "mailed_at")),
        Column("user_id", aliases=("member_id", "会員id", "会員番号")),
        Column("member_card", aliases=("card", "会員カード")),
        Column("email", aliases=("mail", "メールアドレス")),
        Column("phone", aliases=("tel", "電話番号")),
        Column("line_user_id"),
        Column("identifier_type"),
        Column("identifier_value"),
    ),
    keep_extra=False,
)


@dataclass(slots=True)
class AssignResult:
    """What an assignment import did."""

    campaign_id: str
    file: str
    read: int = 0
    assigned: int = 0
    duplicates: int = 0
    """Customers already in the same variant (earlier in the file, or stored)."""
    rejected: int = 0
    rejects_file: str | None = None
    variants: dict[str, int] = field(default_factory=dict)
    """Customers per variant after the import."""


def assign(
    *,
    store: Store,
    campaign: Campaign,
    profile_ids: Sequence[str],
    at: datetime | None = None,
    origin: str = "send",
) -> dict[str, str]:
    """Each profile's variant (the one it already had, or the campaign's hash's, stored now)."""
    ids = list(dict.fromkeys(profile_ids))
    if not ids:
        return {}
    moment = (at or utcnow()).replace(tzinfo=None)
    with store.transaction() as cur:
        cur.register("_given", _variants(campaign, ids))
        cur.execute(
            "INSERT INTO campaign_assignments SELECT ?, profile_id, variant, ?, ? FROM _given "
            "ON CONFLICT DO NOTHING",
            [campaign.campaign_id, moment, origin],
        )
        rows = cur.execute(
            "SELECT a.profile_id, a.variant FROM campaign_assignments a JOIN _given g "
            "USING (profile_id) WHERE a.campaign_id = ?",
            [campaign.campaign_id],
        ).fetchall()
        cur.unregister("_given")
    return dict(rows)


def _variants(campaign: Campaign, ids: list[str]) -> pa.Table:
    """Each profile's variant by the campaign's hash (profile_id, variant)."""
    return pa.table(
        {
            "profile_id": pa.array(ids, pa.string()),
            "variant": pa.array([campaign.variant(p) for p in ids], pa.string()),
        }
    )


def variant_counts(store: Store, campaign_id: str) -> dict[str, int]:
    return dict(
        store.query(
            "SELECT variant, count(*) FROM campaign_assignments WHERE campaign_id = ? "
            "GROUP BY variant ORDER BY variant",
            [campaign_id],
        )
    )


def import_assignments(
    *,
    store: Store,
    campaign_id: str,
    path: Path,
    encoding: str | None = None,
    timezone: str = "Asia/Tokyo",
) -> AssignResult:
    """Assign the customers of `path` (see the module doc); rejects go to `FILE.rejects.csv`.
    Without a variant column, each customer's variant is the campaign's hash's."""
    campaign = get_campaign(store=store, campaign_id=campaign_id)
    result = AssignResult(campaign_id=campaign_id, file=str(path))
    with store.transaction() as cur:
        staged = stage(
            cur, path, SPEC, encoding=encoding, timezone=timezone, workdir=store.path.parent / "tmp"
        )
        given = [c for c in IDENTIFIER_COLUMNS if c in staged.mapping]
        pair = "identifier_type" in staged.mapping and "identifier_value" in staged.mapping
        if not given and not pair:
            raise InvalidInput(
                "header: no identifier column (one of "
                + ", ".join(IDENTIFIER_COLUMNS)
                + ", or identifier_type and identifier_value)",
                field="header",
            )
        cur.execute(normalize_macros(store.country))
        _find_customers(cur, given, pair)
        if "variant" not in staged.mapping:
            _hash_variants(cur, campaign)
        _leave_out_repeats(cur, campaign_id)
        result.read = staged.rows + len(staged.malformed)
        result.duplicates = count(cur, "SELECT count(*) FROM _in WHERE _reason = '~duplicate'")
        cur.execute(
            "INSERT INTO campaign_assignments SELECT ?, profile_id, variant, "
            "coalesce(assigned_at, ?), 'import' FROM _in WHERE _reason IS NULL ON CONFLICT DO NOTHING",
            [campaign_id, campaign.starts_at],
        )
        result.assigned = count(cur, "SELECT count(*) FROM _in WHERE _reason IS NULL")
        raw = {n: staged.raw_refs[n] for n in staged.mapping}
        result.rejected = write_rejects(
            cur,
            rejects_path(path),
            malformed=staged.malformed,
            where="_reason IS NOT NULL AND _reason <> '~duplicate'",
            columns=raw,
        )
        result.rejects_file = str(rejects_path(path)) if result.rejected else None
        cur.execute("DROP TABLE _in")
    if staged.temp_file is not None:
        staged.temp_file.unlink(missing_ok=True)
    result.variants = variant_counts(store, campaign_id)
    return result


def _find_customers(cur, given: list[str], pair: bool) -> None:  # type: ignore[no-untyped-def]
    """`_type`, `_value` (cleaned) and `profile_id` of each row, or its reason."""
    cases = [f"WHEN {c} IS NOT NULL THEN {literal(c)}" for c in given]
    values = list(given)
    if pair:
        cases.append("WHEN identifier_value IS NOT NULL THEN lower(identifier_type)")
        values.append("identifier_value")
    type_sql, value_sql = " ".join(cases), ", ".join(values)
    known = ", ".join(map(literal, _KNOWN_TYPES))
    cur.execute(
        "ALTER TABLE _in ADD COLUMN _type VARCHAR; ALTER TABLE _in ADD COLUMN _value VARCHAR; "
        "ALTER TABLE _in ADD COLUMN profile_id VARCHAR"
    )
    cur.execute(f"UPDATE _in SET _type = CASE {type_sql} END, _value = coalesce({value_sql})")
    names = ", ".join(given + (["identifier_type and identifier_value"] if pair else []))
    cur.execute(
        f"UPDATE _in SET _reason = {literal('identifier: none given (' + names + ')')} "
        "WHERE _reason IS NULL AND _value IS NULL"
    )
    cur.execute(
        "UPDATE _in SET _reason = 'identifier_type: ' || _type || ' is not one of "
        + ", ".join(_KNOWN_TYPES)
        + f"' WHERE _reason IS NULL AND _type NOT IN ({known})"
    )
    cur.execute(
        "UPDATE _in SET _reason = 'identifier_type: required beside identifier_value' "
        "WHERE _reason IS NULL AND _type IS NULL"
    )
    cur.execute(
        "UPDATE _in SET _value = tg_clean(_type, _value) WHERE _reason IS NULL; "
        "UPDATE _in SET _reason = _type || ': not a valid ' || _type "
        "WHERE _reason IS NULL AND _value IS NULL"
    )
    cur.execute(
        "UPDATE _in SET profile_id = n.profile_id FROM identity_nodes n "
        "WHERE _in._reason IS NULL AND n.type = _in._type AND n.value = _in._value"
    )
    # A customer analytics knows by an identifier the graph has not taken in yet.
    cur.execute(
        "UPDATE _in SET profile_id = p.profile_id FROM analytics_profiles p "
        "WHERE _in._reason IS NULL AND _in.profile_id IS NULL "
        "AND p.profile_id = _in._type || ':' || _in._value"
    )
    cur.execute(
        "UPDATE _in SET _reason = _type || ': no customer has this identifier' "
        "WHERE _reason IS NULL AND profile_id IS NULL"
    )


def _hash_variants(cur, campaign: Campaign) -> None:  # type: ignore[no-untyped-def]
    ids = [
        r[0]
        for r in cur.execute(
            "SELECT DISTINCT profile_id FROM _in WHERE profile_id IS NOT NULL"
        ).fetchall()
    ]
    cur.register("_hashed", _variants(campaign, ids))
    cur.execute(
        "UPDATE _in SET variant = h.variant FROM _hashed h WHERE _in.profile_id = h.profile_id"
    )
    cur.unregister("_hashed")


def _leave_out_repeats(cur, campaign_id: str) -> None:  # type: ignore[no-untyped-def]
    """The control by its name in any case; a customer met before keeps the first variant."""
    cur.execute(
        f"UPDATE _in SET variant = {literal(CONTROL)} WHERE lower(variant) = {literal(CONTROL)}"
    )
    cur.execute(
        "UPDATE _in SET _reason = CASE WHEN a.variant = _in.variant THEN '~duplicate' ELSE "
        "'variant: the customer is already in variant ' || a.variant || ' of this campaign' END "
        "FROM campaign_assignments a WHERE _in._reason IS NULL AND a.campaign_id = ? "
        "AND a.profile_id = _in.profile_id",
        [campaign_id],
    )
    cur.execute(
        "UPDATE _in SET _reason = CASE WHEN f.variant = _in.variant THEN '~duplicate' ELSE "
        "'variant: the customer is in variant ' || f.variant || ' in row ' || f._row END "
        "FROM (SELECT profile_id, arg_min(variant, _row) AS variant, min(_row) AS _row FROM _in "
        "WHERE _reason IS NULL GROUP BY profile_id) f "
        "WHERE _in._reason IS NULL AND f.profile_id = _in.profile_id AND _in._row > f._row"
    )
