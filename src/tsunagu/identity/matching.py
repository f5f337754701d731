"""Probabilistic matching for records without a shared identifier (catalogue orders, call-centre
records, an old member list): a Fellegi–Sunter model, trained and run by Splink on DuckDB.

Records (`record_id` plus any of name, name_kana, birth_date, postcode, address, phone, email)
are linked to the member master and to each other. Each record ends in the profile of the
member its cluster holds, or a profile of its own cluster. Pairs scored between the review and
the match threshold are kept for a person to review (`identity_review`).

Names are compared normalised: NFKC (full/half width), no spaces or punctuation, lower case;
kana as katakana, mapped one character to one byte before Jaro-Winkler because DuckDB's string
similarities compare UTF-8 bytes.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from tsunagu.exceptions import InvalidInput
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store, utcnow
from tsunagu.store.sql import literal as sql_literal

FIELDS = ("name", "name_kana", "birth_date", "postcode", "address", "phone", "email")

_KATAKANA = "".join(chr(c) for c in range(0x30A1, 0x30FD))
_ASCII = "".join(ch for ch in map(chr, range(33, 127)) if ch not in "'\\")
_KANA_KEY = str.maketrans(_KATAKANA, _ASCII)
_SPACES = re.compile(r"[\s・･.,'\-‐－ー()（）]+")


@dataclass(slots=True)
class Match:
    record_id: str
    profile_id: str
    match_probability: float | None
    matched: str
    """'member' (linked to a member's profile), 'records' (to other records) or 'new'."""
    member_id: str | None = None


@dataclass(slots=True)
class MatchResult:
    records: int
    matches: list[Match] = field(default_factory=list)
    review: list[dict[str, Any]] = field(default_factory=list)


def norm_name(value: str | None) -> str | None:
    if not value:
        return None
    text = _SPACES.sub("", unicodedata.normalize("NFKC", value)).lower()
    return text or None


def norm_kana(value: str | None) -> str | None:
    """Katakana, full width, no spaces; hiragana becomes katakana."""
    text = norm_name(value)
    if not text:
        return None
    return "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)


def kana_key(kana: str | None) -> str | None:
    return kana.translate(_KANA_KEY) if kana else None


_PREPARE = """
SELECT {id_expr} AS unique_id, {source} AS source_dataset,
       {name} AS name_raw, {kana} AS kana_raw,
       strftime(coalesce(try_cast({birth} AS DATE),
                         try_strptime({birth}, ['%Y/%m/%d', '%Y%m%d', '%m/%d/%Y', '%d/%m/%Y'])::DATE),
                '%Y-%m-%d') AS birth_date,
       nullif(regexp_replace(tg_halfwidth(coalesce({postcode}, '')), '[^0-9A-Za-z]', '', 'g'), '') AS postcode,
       {address} AS address_raw,
       tg_norm('phone', {phone}) AS phone,
       tg_norm('email', {email}) AS email
FROM {table}
"""


def _prepared(cur: Any, sql: str) -> pa.Table:
    raw = cur.sql(sql).to_arrow_table()
    names = [norm_name(v) for v in raw.column("name_raw").to_pylist()]
    kanas = [norm_kana(v) for v in raw.column("kana_raw").to_pylist()]
    addresses = [norm_name(v) for v in raw.column("address_raw").to_pylist()]
    table = raw.drop_columns(["name_raw", "kana_raw", "address_raw"])
    table = table.append_column("name", pa.array(names, pa.string()))
    table = table.append_column("name_kana", pa.array(kanas, pa.string()))
    table = table.append_column("kana_key", pa.array([kana_key(k) for k in kanas], pa.string()))
    return table.append_column("address", pa.array(addresses, pa.string()))


LinkType = Literal["link_only", "link_and_dedupe", "dedupe_only"]


def _settings(present: set[str], link_type: LinkType) -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    comparisons: list[Any] = []
    blocking: list[Any] = []
    if "name" in present or "name_kana" in present:
        # Kanji and kana are the same evidence: one comparison, not two.
        comparisons.append(
            cl.CustomComparison(
                output_column_name="name",
                comparison_levels=[
                    cll.And(cll.NullLevel("name"), cll.NullLevel("name_kana")),
                    cll.ExactMatchLevel("name", term_frequency_adjustments=True),
                    cll.ExactMatchLevel("name_kana"),
                    cll.Or(
                        cll.JaroWinklerLevel("kana_key", 0.92), cll.JaroWinklerLevel("name", 0.92)
                    ),
                    cll.Or(
                        cll.JaroWinklerLevel("kana_key", 0.85), cll.JaroWinklerLevel("name", 0.85)
                    ),
                    cll.ElseLevel(),
                ],
            )
        )
        blocking.append(block_on("substr(coalesce(name_kana, name), 1, 2)", "postcode"))
    if "birth_date" in present:
        comparisons.append(
            cl.DateOfBirthComparison(
                "birth_date",
                input_is_string=True,
                datetime_thresholds=[1, 1],
                datetime_metrics=["month", "year"],
            )
        )
        blocking.append(block_on("birth_date"))
    if "postcode" in present:
        comparisons.append(cl.ExactMatch("postcode"))
    if "address" in present:
        comparisons.append(cl.JaroWinklerAtThresholds("address", [0.95, 0.85]))
    if "phone" in present:
        comparisons.append(cl.ExactMatch("phone"))
        blocking.append(block_on("phone"))
    if "email" in present:
        comparisons.append(cl.LevenshteinAtThresholds("email", [1, 2]))
        blocking.append(block_on("email"))
    if "name" in present:
        blocking.append(block_on("name"))
    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="unique_id",
        source_dataset_column_name="source_dataset",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking,
        retain_intermediate_calculation_columns=False,
    )


def match_records(
    *,
    store: Store,
    path: Path,
    rules: IdentityRules,
    threshold: float = 0.9,
    review_threshold: float = 0.5,
) -> MatchResult:
    """Link the records of `path` to members and to each other (see module doc)."""
    if not path.exists():
        raise InvalidInput(f"file: {path} does not exist", field="file")
    logging.getLogger("splink").setLevel(logging.ERROR)
    with store.transaction() as cur:
        cur.execute(rules.macros())
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _match_in AS SELECT * FROM "
            f"read_csv({sql_literal(str(path))}, header = true, all_varchar = true)"
        )
        columns = {
            c.lower()
            for (c,) in cur.execute("SELECT column_name FROM (DESCRIBE _match_in)").fetchall()
        }
        if "record_id" not in columns:
            raise InvalidInput("header: a record_id column is required", field="record_id")
        present = {f for f in FIELDS if f in columns}
        if not present:
            raise InvalidInput(f"header: needs at least one of {', '.join(FIELDS)}", field="header")
        dupes = cur.execute(
            "SELECT record_id FROM _match_in GROUP BY record_id HAVING count(*) > 1 LIMIT 1"
        ).fetchall()
        if dupes:
            raise InvalidInput(f"record_id: {dupes[0][0]!r} appears twice", field="record_id")

        def col(name: str) -> str:
            return f'"{name}"' if name in present else "CAST(NULL AS VARCHAR)"

        records = _prepared(
            cur,
            _PREPARE.format(
                id_expr="'r:' || record_id",
                source="'records'",
                name=col("name"),
                kana=col("name_kana"),
                birth=col("birth_date"),
                postcode=col("postcode"),
                address=col("address"),
                phone=col("phone"),
                email=col("email"),
                table="_match_in WHERE record_id IS NOT NULL",
            ),
        )
        members = _prepared(
            cur,
            _PREPARE.format(
                id_expr="'m:' || member_id",
                source="'members'",
                name="name",
                kana="name_kana",
                birth="CAST(birth_date AS VARCHAR)",
                postcode="postcode",
                address="address",
                phone="phone",
                email="email",
                table="members",
            ),
        )
        profiles = dict(
            cur.execute(
                "SELECT value, profile_id FROM identity_nodes WHERE type = 'user_id'"
            ).fetchall()
        )
        cur.execute("DROP TABLE _match_in")

    result = MatchResult(records=records.num_rows)
    # Records against members (link only: members are not deduplicated here, the graph does
    # that), and records among themselves.
    scratch = store.path.parent / "tmp" / "matching"
    pairs = _scored_pairs([records], "dedupe_only", present, review_threshold, scratch)
    if members.num_rows:
        pairs += _scored_pairs([records, members], "link_only", present, review_threshold, scratch)
    best: dict[str, float] = {}
    parent: dict[str, str] = {}

    def find(uid: str) -> str:
        while parent.setdefault(uid, uid) != uid:
            parent[uid] = parent[parent[uid]]
            uid = parent[uid]
        return uid

    for left, right, p, weight in pairs:
        for uid in (left, right):
            best[uid] = max(best.get(uid, 0.0), p)
        if p >= threshold:
            parent[find(left)] = find(right)
        else:
            result.review.append(
                {"left": left, "right": right, "match_probability": p, "match_weight": weight}
            )
    clusters: dict[str, list[str]] = {}
    for uid in [str(r) for r in records.column("unique_id").to_pylist()] + list(parent):
        members_of = clusters.setdefault(find(uid), [])
        if uid not in members_of:
            members_of.append(uid)
    by_cluster = clusters
    for members_and_records in by_cluster.values():
        member_ids = sorted(u[2:] for u in members_and_records if u.startswith("m:"))
        record_ids = sorted(u for u in members_and_records if u.startswith("r:"))
        if not record_ids:
            continue
        if member_ids:
            member = member_ids[0]
            profile = (
                profiles.get(member)
                or "p_" + hashlib.md5(f"user_id:{member}".encode()).hexdigest()[:16]
            )
            kind = "member"
        else:
            member = None
            profile = "p_" + hashlib.md5(f"record:{record_ids[0][2:]}".encode()).hexdigest()[:16]
            kind = "records" if len(record_ids) > 1 else "new"
        for uid in record_ids:
            score = best.get(uid) if kind != "new" else None
            result.matches.append(Match(uid[2:], profile, score, kind, member))
    result.matches.sort(key=lambda m: m.record_id)
    return result


def _scored_pairs(
    tables: list[pa.Table],
    link_type: LinkType,
    present: set[str],
    review_threshold: float,
    scratch: Path,
) -> list[tuple[str, str, float, float]]:
    """Train a Fellegi–Sunter model on `tables` and score candidate pairs:
    (left id, right id, match probability, match weight), probability >= `review_threshold`.

    Runs on a DuckDB of its own (Splink creates tables wherever it runs), spilling to `scratch`.
    """
    import duckdb
    from splink import DuckDBAPI, Linker, block_on

    scratch.mkdir(parents=True, exist_ok=True)
    api = DuckDBAPI(connection=duckdb.connect(config={"temp_directory": str(scratch)}))
    inputs = [api.register(t, table_name=f"__splink__in_{i}") for i, t in enumerate(tables)]
    linker = Linker(inputs, _settings(present, link_type), log_level=None)
    # The prior: how many pairs near-certain rules find, read as 70% of the true matches.
    deterministic: list[Any] = [block_on(f) for f in ("email", "phone") if f in present]
    for a, b in (("name", "birth_date"), ("birth_date", "postcode")):
        if a in present and b in present:
            deterministic.append(block_on(a, b))
    try:
        linker.training.estimate_probability_two_random_records_match(
            deterministic or [block_on(sorted(present)[0])], recall=0.7
        )
    except (ValueError, ZeroDivisionError):
        # No pair met those rules: keep Splink's default prior.
        linker = Linker(inputs, _settings(present, link_type), log_level=None)
    training = linker.training
    training.estimate_u_using_random_sampling(max_pairs=2e6, seed=7)
    for rule in ("birth_date", "postcode", "phone", "email", "name"):
        if rule in present:
            try:
                training.estimate_parameters_using_expectation_maximisation(block_on(rule))
            except Exception:  # noqa: BLE001, S112 - a block with no pairs trains nothing
                continue
    predictions = linker.inference.predict(threshold_match_probability=review_threshold)
    return [
        (
            str(p["unique_id_l"]),
            str(p["unique_id_r"]),
            float(p["match_probability"]),
            float(p["match_weight"]),
        )
        for p in predictions.as_record_list()
    ]


def save_matches(*, store: Store, file: str, result: MatchResult) -> None:
    """Keep the matches and review candidates of one file (a re-run replaces them)."""
    now = utcnow()
    with store.transaction() as cur:
        cur.execute("DELETE FROM identity_matches WHERE file = ?", [file])
        cur.execute("DELETE FROM identity_review WHERE file = ?", [file])
        if result.matches:
            cur.executemany(
                "INSERT INTO identity_matches VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        file,
                        m.record_id,
                        m.profile_id,
                        m.match_probability,
                        m.matched,
                        m.member_id,
                        now,
                    )
                    for m in result.matches
                ],
            )
        if result.review:
            cur.executemany(
                "INSERT INTO identity_review VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (file, r["left"], r["right"], r["match_probability"], r["match_weight"], now)
                    for r in result.review
                ],
            )


def review_candidates(*, store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """Pairs waiting for a person's decision, the most likely first."""
    result = store.query(
        "SELECT file, left_id, right_id, match_probability, match_weight FROM identity_review "
        "ORDER BY match_probability DESC, file, left_id, right_id LIMIT ?",
        [limit],
    )
    keys = ("file", "left", "right", "match_probability", "match_weight")
    return [dict(zip(keys, row, strict=True)) for row in result]
