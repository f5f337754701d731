"""Accuracy of the profiles against a truth file, and the export the data team uses.

Pairwise precision and recall over identifiers: a pair of identifiers is predicted together when
one profile holds both, and truly together when the truth file gives them one person.
Identifiers are compared normalised (as the graph stores them); a truth identifier the graph
does not hold (a blocked placeholder, a value never imported) counts as a profile of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tsunagu.exceptions import InvalidInput
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store, count
from tsunagu.store.sql import literal as sql_literal


@dataclass(slots=True)
class Evaluation:
    identifiers: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    precision: float
    recall: float
    f1: float
    by_type: dict[str, dict[str, float]] = field(default_factory=dict)
    """Recall of the pairs that involve each identifier type."""


def export_identifiers(*, store: Store, path: Path) -> int:
    """Write `identifier_type,identifier_value,profile_id` for every identifier; returns rows."""
    with store.transaction() as cur:
        n = count(cur, "SELECT count(*) FROM identity_nodes")
        cur.execute(
            "COPY (SELECT type AS identifier_type, value AS identifier_value, profile_id "
            f"FROM identity_nodes ORDER BY profile_id, type, value) TO {sql_literal(str(path))} (HEADER)"
        )
    return n


def evaluate(*, store: Store, truth: Path, rules: IdentityRules) -> Evaluation:
    """Pairwise precision, recall and F1 of the current profiles against `truth`
    (`identifier_type,identifier_value,person_id`)."""
    if not truth.exists():
        raise InvalidInput(f"truth: {truth} does not exist", field="truth")
    with store.transaction() as cur:
        cur.execute(rules.macros())
        try:
            cur.execute(
                "CREATE OR REPLACE TEMP TABLE _truth AS "
                "SELECT identifier_type AS t, "
                "coalesce(tg_norm(identifier_type, identifier_value), "
                "         '~raw:' || identifier_value) AS v, "
                "any_value(person_id) AS person "
                f"FROM read_csv({sql_literal(str(truth))}, header = true, all_varchar = true) "
                "WHERE identifier_value IS NOT NULL GROUP BY ALL"
            )
        except Exception as exc:  # noqa: BLE001 - a truth file without the columns
            raise InvalidInput(
                f"truth: needs columns identifier_type, identifier_value, person_id ({exc})",
                field="truth",
            ) from None
        # One row per distinct truth identifier (a value given two persons keeps one).
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _pairs AS "
            "SELECT t.t, t.v, any_value(t.person) AS person, "
            "coalesce(any_value(n.profile_id), 'single:' || t.t || ':' || t.v) AS profile "
            "FROM _truth t LEFT JOIN identity_nodes n ON n.type = t.t AND n.value = t.v "
            "GROUP BY t.t, t.v"
        )
        identifiers = count(cur, "SELECT count(*) FROM _pairs")
        true_pairs = _pairs(cur, "person")
        predicted = _pairs(cur, "profile")
        correct = _pairs(cur, "person, profile")
        by_type: dict[str, dict[str, float]] = {}
        for (kind,) in cur.execute("SELECT DISTINCT t FROM _pairs ORDER BY t").fetchall():
            # Recall of pairs with at least one identifier of this type.
            total = _pairs(cur, "person") - _pairs(cur, "person", where=f"t <> {sql_literal(kind)}")
            hit = _pairs(cur, "person, profile") - _pairs(
                cur, "person, profile", where=f"t <> {sql_literal(kind)}"
            )
            by_type[kind] = {"pairs": float(total), "recall": hit / total if total else 1.0}
        cur.execute("DROP TABLE _truth")
        cur.execute("DROP TABLE _pairs")
    precision = correct / predicted if predicted else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Evaluation(identifiers, true_pairs, predicted, correct, precision, recall, f1, by_type)


def _pairs(cur: object, group: str, where: str = "true") -> int:
    return count(
        cur,  # type: ignore[arg-type]
        f"SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM "
        f"(SELECT count(*) AS n FROM _pairs WHERE {where} GROUP BY {group})",
    )
