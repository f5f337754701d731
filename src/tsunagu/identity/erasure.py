"""Erasure: remove a person everywhere and keep them from coming back.

Every row that carries one of the profile's identifiers goes: events (a message from a shared
device that names this person's device goes too: the erased person's data wins over keeping
another person's event), member records, identity nodes, audit rows, matches and review
candidates, the profile's traits (and the traits of other profiles those events counted for
are recomputed). The identifiers are added to the suppression list as hashes, so a re-import of
the same files or a client re-sending old events does not bring the person back; the list
names no one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tsunagu.exceptions import NotFound
from tsunagu.identity.graph import mark_changed
from tsunagu.identity.rules import IdentityRules
from tsunagu.identity.traits import OWNING as _OWNING
from tsunagu.identity.traits import refresh_traits
from tsunagu.store import Store, count, utcnow
from tsunagu.store.identifiers import MEMBER_IDENTIFIER_COLUMNS, SUPPRESSIBLE_COLUMNS


@dataclass(slots=True)
class ErasureReport:
    profile_id: str
    identifiers: int
    deleted: dict[str, int] = field(default_factory=dict)


def erase_profile(*, store: Store, rules: IdentityRules, profile_id: str) -> ErasureReport:
    """Delete every row of the person behind `profile_id` and suppress their identifiers."""
    with store.transaction() as cur:
        cur.execute(rules.macros())
        # The graph's identifiers, and the contacts of matched records (a profile that
        # `identity match` made of records alone has nothing else).
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _erase AS SELECT type, value FROM identity_nodes "
            "WHERE profile_id = $1 UNION SELECT 'email', email FROM identity_matches "
            "WHERE profile_id = $1 AND email IS NOT NULL UNION SELECT 'phone', phone "
            "FROM identity_matches WHERE profile_id = $1 AND phone IS NOT NULL",
            [profile_id],
        )
        identifiers = count(cur, "SELECT count(*) FROM _erase")
        matched = count(
            cur, "SELECT count(*) FROM identity_matches WHERE profile_id = ?", [profile_id]
        )
        if not identifiers and not matched:
            raise NotFound(f"no profile {profile_id!r}", field="profile_id")
        report = ErasureReport(profile_id, identifiers)
        events = " OR ".join(
            f"tg_clean('{kind}', {column}) IN (SELECT value FROM _erase WHERE type = '{kind}')"
            for kind, column in SUPPRESSIBLE_COLUMNS
        )
        # Other profiles those events counted for (a shared device) get their traits again.
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _erase_events AS SELECT user_id, anonymous_id, "
            f"device_id FROM events WHERE {events}"
        )
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _erase_others AS SELECT profile_id FROM ("
            + " UNION ".join(
                f"SELECT n.profile_id FROM identity_nodes n JOIN _erase_events e "
                f"ON n.type = '{t}' AND n.value = tg_clean('{t}', e.{t})"
                for t in _OWNING
            )
            + ") WHERE profile_id <> ?",
            [profile_id],
        )
        cur.execute("DROP TABLE _erase_events")
        report.deleted["events"] = count(cur, f"DELETE FROM events WHERE {events}")
        mark_changed(cur)
        members = " OR ".join(
            f"tg_clean('{kind}', {column}) IN (SELECT value FROM _erase WHERE type = '{kind}')"
            for kind, column in MEMBER_IDENTIFIER_COLUMNS
        )
        erased_members = [
            r[0] for r in cur.execute(f"SELECT member_id FROM members WHERE {members}").fetchall()
        ]
        report.deleted["members"] = count(cur, f"DELETE FROM members WHERE {members}")
        report.deleted["identity_audit"] = count(
            cur,
            "DELETE FROM identity_audit WHERE (type, value) IN (SELECT (type, value) FROM _erase) "
            "OR (other_type, other_value) IN (SELECT (type, value) FROM _erase)",
        )
        report.deleted["identity_matches"] = count(
            cur,
            "DELETE FROM identity_matches WHERE profile_id = ? "
            "OR member_id IN (SELECT unnest(?::VARCHAR[]))",
            [profile_id, erased_members],
        )
        member_keys = [f"m:{m}" for m in erased_members]
        report.deleted["identity_review"] = count(
            cur,
            "DELETE FROM identity_review WHERE left_id IN (SELECT unnest(?::VARCHAR[])) "
            "OR right_id IN (SELECT unnest(?::VARCHAR[]))",
            [member_keys, member_keys],
        )
        report.deleted["identity_nodes"] = count(
            cur, "DELETE FROM identity_nodes WHERE profile_id = ?", [profile_id]
        )
        report.deleted["profile_traits"] = count(
            cur, "DELETE FROM profile_traits WHERE profile_id = ?", [profile_id]
        )
        # What acting on the customer kept: memberships, assignments, sends (their addresses),
        # consents by their identifiers; a coupon's redemption stays (the till's books), its
        # holder does not.
        for table in ("segment_members", "segment_changes", "campaign_assignments", "sends"):
            report.deleted[table] = count(
                cur, f"DELETE FROM {table} WHERE profile_id = ?", [profile_id]
            )
        report.deleted["consents"] = count(
            cur,
            "DELETE FROM consents WHERE (id_type, id_value) IN (SELECT (type, value) FROM _erase)",
        )
        cur.execute(
            "UPDATE coupons SET profile_id = NULL, holder = NULL WHERE profile_id = ?", [profile_id]
        )
        if count(cur, "SELECT count(*) FROM _erase_others"):
            refresh_traits(cur, rules, scope="_erase_others")
        cur.execute("DROP TABLE _erase_others")
        cur.execute(
            "INSERT INTO suppressed_identifiers "
            "SELECT type, sha256(type || ':' || value), ? FROM _erase",
            [utcnow()],
        )
        cur.execute("DROP TABLE _erase")
    store.suppression_changed()
    return report


def is_suppressed(*, store: Store, kind: str, value: str) -> bool:
    """Whether an identifier belongs to an erased person."""
    with store.transaction() as cur:
        cur.execute(IdentityRules().macros())
        return bool(
            count(
                cur,
                "SELECT count(*) FROM suppressed_identifiers "
                "WHERE type = ? AND value_hash = sha256(? || ':' || tg_clean(?, ?))",
                [kind, kind, kind, value],
            )
        )
