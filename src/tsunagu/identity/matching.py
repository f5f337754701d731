"""Probabilistic matching for records without a shared identifier (catalogue orders, call-centre
records, an old member list): a Fellegi–Sunter model, trained and run by Splink on DuckDB.

Records (`record_id` plus any of name, name_kana, birth_date, postcode, address, phone, email)
are linked to the member master and to each other. Each record ends in the profile of the
member its cluster holds, or a profile of its own cluster. Pairs scored between the review and
the match threshold are kept for a person to review (`identity_review`).

Names are compared on their core (`name_core`: no brackets, legal forms, "the" or accents),
then without spaces or punctuation, lower case; kana as katakana, mapped one character to one
byte before Jaro-Winkler because DuckDB's string similarities compare UTF-8 bytes. A place is
weak evidence of a person: where names disagree entirely only a phone, e-mail or birth date
can link (`_linkable`), and a shared address adds nothing beside a shared phone then
(`_person_weight`). See docs/identity.md.
"""

from __future__ import annotations

import logging
import math
import random
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import pyarrow as pa

from tsunagu.exceptions import InvalidInput
from tsunagu.identity.graph import profile_id_for
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store, columns, phones, utcnow
from tsunagu.store.files import Column, TableSpec, rejects_path, stage, write_rejects

FIELDS = ("name", "name_kana", "birth_date", "postcode", "address", "phone", "email")

ADDRESS_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("state", ("prefecture", "region", *columns.PREFECTURE)),
    ("city", ("suburb", "town", "locality", "市区町村")),
    ("street_number", ("house_number", "番地")),
    ("address_1", ("address1", "street", "street_address", "住所1")),
    ("address_2", ("address2", "住所2", "建物名")),
)

RECORDS = TableSpec(
    "match",
    (
        Column("record_id", required=True, aliases=("id", "rec_id", "record", "レコードID")),
        Column("name", aliases=columns.NAME),
        # A name in two columns is joined, surname first, before matching.
        Column("surname", aliases=("last_name", "family_name", "姓", "氏")),
        Column("given_name", aliases=("first_name", "forename", "名")),
        Column("name_kana", aliases=columns.NAME_KANA),
        Column("birth_date", aliases=columns.BIRTH_DATE),
        Column("postcode", aliases=columns.POSTCODE),
        Column("address", aliases=columns.ADDRESS),
        # An address in parts is joined, in this order, before matching.
        *(Column(part, aliases=aliases) for part, aliases in ADDRESS_PARTS),
        Column("phone", aliases=columns.PHONE),
        Column("email", aliases=columns.EMAIL),
    ),
    keep_extra=False,
)
"""A file of records to match; birth dates stay text (parsed leniently: a date nobody can read
is no evidence, not a reason to drop the record)."""

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
    email: str | None = None
    """The record's e-mail and phone, normalised: a member's record adds them to the profile."""
    phone: str | None = None


@dataclass(slots=True)
class MatchResult:
    records: int
    matches: list[Match] = field(default_factory=list)
    review: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    """Rows left out (no record_id, a record_id seen before, a broken line): see rejects_file."""
    rejects_file: str | None = None

    def public(self) -> dict[str, Any]:
        """What the CLI prints: each record's profile and score, not the contacts it holds."""
        hidden = {"email", "phone"}
        return {
            "records": self.records,
            "rejected": self.rejected,
            "rejects_file": self.rejects_file,
            "matches": [
                {k: v for k, v in asdict(m).items() if k not in hidden} for m in self.matches
            ],
            "review": self.review,
        }


def norm_name(value: str | None) -> str | None:
    if not value:
        return None
    text = _SPACES.sub("", unicodedata.normalize("NFKC", value)).lower()
    return text or None


_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|【[^【】]*】|「[^「」]*」")
_LEGAL_FORMS = re.compile(
    "株式会社|有限会社|合同会社|合資会社|合名会社|"
    "(一般|公益)?(社団|財団)法人|(医療|社会福祉|学校|宗教|特定非営利活動|npo)法人"
)
_WORDS = re.compile(r"[\s・･.,\-‐－()（）/]+")
"""What separates the words of a name (an apostrophe is dropped, not a separator)."""
_ACCENTED = re.compile("[\u00c0-\u024f\u1e00-\u1eff]")
"""Latin letters with diacritics (Café, Müller): only these lose their accents."""
_DECORATION_WORDS = frozenset(
    "the inc incorporated ltd limited llc llp plc co corp corporation company gmbh kk".split()
)


def name_core(value: str | None) -> str | None:
    """A name without its decoration, lower case, words kept apart by one space: what is in
    brackets (a branch, a city, (株)), legal forms (株式会社, Inc., Ltd.), the article "the"
    wherever it stands ("Blue Door, The"), accents on Latin letters ("Café" is "cafe"); "&" is
    "and". The name itself when nothing is left.

    >>> name_core("Café Aoyama (Shibuya)"), name_core("(株)ニコニコ商店"), name_core("Blue Door, The")
    ('cafe aoyama', 'ニコニコ商店', 'blue door')
    """
    if not value:
        return None
    text = unicodedata.normalize("NFKC", value).lower()
    if _ACCENTED.search(text):
        text = unicodedata.normalize(
            "NFC",
            "".join(c for c in unicodedata.normalize("NFD", text) if not "\u0300" <= c <= "\u036f"),
        )
    text = text.replace("'", "").replace("\u2019", "")  # "Philippe's" is "philippes"
    core = _LEGAL_FORMS.sub(" ", _BRACKETED.sub(" ", text)).replace("&", " and ")
    words = [w for w in _WORDS.split(core) if w and w not in _DECORATION_WORDS]
    if not words:
        words = [w for w in _WORDS.split(text) if w]
    return " ".join(words) or None


def name_tokens(core: str | None) -> str | None:
    """The words of a name core in sorted order, so that "Huxley Claudia" meets "Claudia
    Huxley"."""
    words = sorted(core.split()) if core else []
    return " ".join(words) if len(words) > 1 else None


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
    cores = [name_core(v) for v in raw.column("name_raw").to_pylist()]
    kanas = [norm_kana(v) for v in raw.column("kana_raw").to_pylist()]
    addresses = [norm_name(v) for v in raw.column("address_raw").to_pylist()]
    table = raw.drop_columns(["name_raw", "kana_raw", "address_raw"])
    table = table.append_column("name", pa.array([norm_name(c) for c in cores], pa.string()))
    words = [c.split() if c else None for c in cores]
    table = table.append_column("name_words", pa.array(words, pa.list_(pa.string())))
    table = table.append_column("name_tokens", pa.array(map(name_tokens, cores), pa.string()))
    nationals = [phones.national(v) for v in raw.column("phone").to_pylist()]
    table = table.append_column("phone_national", pa.array(nationals, pa.string()))
    table = table.append_column("name_kana", pa.array(kanas, pa.string()))
    table = table.append_column("kana_key", pa.array([kana_key(k) for k in kanas], pa.string()))
    numbers = [_address_numbers(a) for a in addresses]
    table = table.append_column("address_numbers", pa.array(numbers, pa.string()))
    return table.append_column("address", pa.array(addresses, pa.string()))


_DIGITS = re.compile(r"\d+")


def _address_numbers(address: str | None) -> str | None:
    """The numbers of an address in order (block, building, room): "5-10-4 ...1006"."""
    found = _DIGITS.findall(address or "")
    return "-".join(found) if found else None


LinkType = Literal["link_only", "link_and_dedupe", "dedupe_only"]


class Pair(NamedTuple):
    """A scored candidate pair."""

    left: str
    right: str
    probability: float
    weight: float
    linkable: bool = True
    """False where the pair may not link whatever its score (see `_linkable`)."""


def _differing_words(threshold: float) -> Any:
    """Jaro-Winkler of what two names do not share, word for word: "Ritz-Carlton Cafe" and
    "Ritz-Carlton Dining Room" compare "cafe" with "diningroom" (a brand, a surname in
    common is not a name in common); names with no word in common compare whole."""
    import splink.comparison_level_library as cll

    def rest(side: str, other: str) -> str:
        return (
            f"array_to_string(list_filter(name_words_{side}, "
            f"lambda w: NOT list_contains(name_words_{other}, w)), '')"
        )

    # A name of one word (a Japanese name typed without a space) shares no word with another
    # name unless it is within it: compare it whole, without the lambdas (most pairs).
    return cll.CustomLevel(
        "CASE WHEN len(name_words_l) > 1 AND len(name_words_r) > 1 "
        f"THEN jaro_winkler_similarity({rest('l', 'r')}, {rest('r', 'l')}) "
        'ELSE jaro_winkler_similarity("name_l", "name_r") END '
        f">= {threshold}",
        label_for_charts=f"the words they do not share, Jaro-Winkler >= {threshold}",
    )


def _settings(present: set[str], link_type: LinkType, blocking: list[tuple[str, ...]]) -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    comparisons: list[Any] = []
    if "name" in present or "name_kana" in present:
        # Kanji and kana are the same evidence: one comparison, not two.
        comparisons.append(
            cl.CustomComparison(
                output_column_name="name",
                comparison_levels=[
                    cll.And(cll.NullLevel("name"), cll.NullLevel("name_kana")),
                    cll.ExactMatchLevel("name", term_frequency_adjustments=True),
                    cll.Or(cll.ExactMatchLevel("name_kana"), cll.ExactMatchLevel("name_tokens")),
                    cll.Or(
                        cll.JaroWinklerLevel("kana_key", 0.92),
                        cll.JaroWinklerLevel("name", 0.92),
                        _differing_words(0.92),
                    ),
                    # One name is the other with words more: "Katsu" / "Restaurant Katsu".
                    # Not where the kana say otherwise: a surname alone (中島) is within every
                    # name of the household (中島 友美), the reading tells them apart.
                    cll.CustomLevel(
                        "(list_has_all(name_words_l, name_words_r) "
                        "OR list_has_all(name_words_r, name_words_l)) "
                        'AND coalesce(jaro_winkler_similarity("kana_key_l", "kana_key_r") '
                        ">= 0.85, true)",
                        label_for_charts="words of one within the other",
                    ),
                    cll.Or(cll.JaroWinklerLevel("kana_key", 0.85), _differing_words(0.85)),
                    cll.ElseLevel(),
                ],
            )
        )
    if "birth_date" in present:
        comparisons.append(
            cl.DateOfBirthComparison(
                "birth_date",
                input_is_string=True,
                datetime_thresholds=[1, 1],
                datetime_metrics=["month", "year"],
            )
        )
    if "postcode" in present:
        comparisons.append(cl.ExactMatch("postcode"))
    if "address" in present:
        # Addresses in one postcode share their town, so a loose similarity says little beyond
        # the postcode: below the exact level, the house numbers must agree too.
        comparisons.append(
            cl.CustomComparison(
                output_column_name="address",
                comparison_levels=[
                    cll.NullLevel("address"),
                    cll.ExactMatchLevel("address"),
                    cll.And(
                        cll.ExactMatchLevel("address_numbers"),
                        cll.JaroWinklerLevel("address", 0.85),
                    ),
                    cll.JaroWinklerLevel("address", 0.95),
                    cll.ElseLevel(),
                ],
            )
        )
    if "phone" in present:
        comparisons.append(
            cl.CustomComparison(
                output_column_name="phone",
                comparison_levels=[
                    cll.NullLevel("phone"),
                    cll.ExactMatchLevel("phone"),
                    # +1 212 555 0134 and 212/555-0134 in a file whose country is another.
                    cll.ExactMatchLevel("phone_national"),
                    cll.ElseLevel(),
                ],
            )
        )
    if "email" in present:
        comparisons.append(cl.LevenshteinAtThresholds("email", [1, 2]))
    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="unique_id",
        source_dataset_column_name="source_dataset",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[block_on(*rule) for rule in blocking],
        retain_intermediate_calculation_columns=True,
        additional_columns_to_retain=["phone_holders"] if "phone" in present else [],
    )


def match_records(
    *,
    store: Store,
    path: Path,
    rules: IdentityRules,
    country: str | None = None,
    threshold: float = 0.9,
    review_threshold: float = 0.5,
) -> MatchResult:
    """Link the records of `path` to members and to each other (see module doc). The file's
    phones without a country code are read as `country`'s (default: the rules'), the
    members' as the rules say."""
    logging.getLogger("splink").setLevel(logging.ERROR)
    file_rules = rules.model_copy(update={"default_country": country or rules.default_country})
    with store.transaction() as cur:
        cur.execute(file_rules.macros())
        staged = stage(cur, path, RECORDS, workdir=store.path.parent / "tmp")
        if staged.temp_file is not None:
            staged.temp_file.unlink(missing_ok=True)
        given = set(staged.mapping)
        if {"surname", "given_name"} & given:
            given.add("name")
        if {part for part, _ in ADDRESS_PARTS} & given:
            given.add("address")
        present = given & set(FIELDS)
        if not present:
            raise InvalidInput(
                f"header: needs at least one of {', '.join(FIELDS)} "
                f"(the file has: {', '.join([*staged.mapping.values(), *staged.extra])})",
                field="header",
            )
        cur.execute(
            "UPDATE _in SET _reason = 'record_id: appears on an earlier row of this file' "
            "WHERE _reason IS NULL AND _row > (SELECT min(b._row) FROM _in b "
            "WHERE b._reason IS NULL AND b.record_id = _in.record_id)"
        )
        rejects = rejects_path(path)
        rejected = write_rejects(
            cur,
            rejects,
            malformed=staged.malformed,
            columns={n: staged.raw_refs[n] for n in staged.mapping},
        )
        records = _prepared(
            cur,
            _PREPARE.format(
                id_expr="'r:' || record_id",
                source="'records'",
                name="coalesce(name, nullif(concat_ws(' ', surname, given_name), ''))",
                kana="name_kana",
                birth="birth_date",
                postcode="postcode",
                address="coalesce(address, nullif(concat_ws(' ', "
                + ", ".join(part for part, _ in ADDRESS_PARTS)
                + "), ''))",
                phone="phone",
                email="email",
                table="_in WHERE _reason IS NULL",
            ),
        )
        cur.execute("DROP TABLE _in")
        cur.execute(rules.macros())
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

    result = MatchResult(
        records=records.num_rows,
        rejected=rejected,
        rejects_file=str(rejects) if rejected else None,
    )
    if not records.num_rows:
        return result
    # Records against members (link only: members are not deduplicated here, the graph does
    # that), and records among themselves.
    scratch = store.path.parent / "tmp" / "matching"
    budget = str(store.scalar("SELECT current_setting('memory_limit')"))
    pairs = _scored_pairs(records, members, present, review_threshold, scratch, budget)

    record_ids = [str(r) for r in records.column("unique_id").to_pylist()]
    contacts = dict(
        zip(
            record_ids,
            zip(
                records.column("email").to_pylist(),
                records.column("phone").to_pylist(),
                strict=True,
            ),
            strict=True,
        )
    )
    clusters, best = _clusters(record_ids, pairs, threshold, result.review)
    for uids in clusters:
        member_ids = [u[2:] for u in uids if u.startswith("m:")]
        rids = sorted(u for u in uids if u.startswith("r:"))
        if member_ids:
            member: str | None = member_ids[0]
            # A member the graph has not seen yet gets the id the graph will give it.
            profile = profiles.get(member_ids[0]) or profile_id_for("user_id", member_ids[0])
            kind = "member"
        else:
            member = None
            profile = profile_id_for("record", rids[0][2:])
            kind = "records" if len(rids) > 1 else "new"
        for uid in rids:
            score = best.get(uid) if kind != "new" else None
            email, phone = contacts[uid]
            result.matches.append(Match(uid[2:], profile, score, kind, member, email, phone))
    result.matches.sort(key=lambda m: m.record_id)
    return result


def _clusters(
    record_ids: list[str],
    pairs: list[Pair],
    threshold: float,
    review: list[dict[str, Any]],
) -> tuple[list[list[str]], dict[str, float]]:
    """Records and members joined by pairs at or above `threshold`, the likeliest first, never
    putting two members in one cluster (one member id per profile, as the graph's limit says):
    a record that looks like two members goes to the likelier one, and the other pair is kept
    for review. Pairs below the threshold, or that may not link (`Pair.linkable`), are kept
    for review too.

    Returns the clusters holding records, and each record's best accepted match probability.
    """
    parent: dict[str, str] = {}
    member_of: dict[str, str] = {}
    best: dict[str, float] = {}

    def find(uid: str) -> str:
        while parent.setdefault(uid, uid) != uid:
            parent[uid] = parent[parent[uid]]
            uid = parent[uid]
        return uid

    for left, right, p, weight, linkable in sorted(
        pairs, key=lambda x: (-x.probability, -x.weight, x.left, x.right)
    ):
        a, b = find(left), find(right)
        for root, uid in ((a, left), (b, right)):
            if uid.startswith("m:"):
                member_of.setdefault(root, uid)
        joined = a == b
        accepted = p >= threshold and linkable
        if joined and not accepted:
            continue  # already one profile through likelier pairs: nothing to review
        if accepted and not joined:
            ma, mb = member_of.get(a), member_of.get(b)
            if ma is None or mb is None or ma == mb:
                parent[a] = b
                if ma is not None:
                    member_of[b] = ma
                joined = True
        if accepted and joined:
            for uid in (left, right):
                best[uid] = max(best.get(uid, 0.0), p)
        else:
            review.append(
                {"left": left, "right": right, "match_probability": p, "match_weight": weight}
            )
    clusters: dict[str, list[str]] = {}
    for uid in record_ids + list(parent):
        clusters.setdefault(find(uid), []).append(uid)
    out = [sorted(set(uids)) for uids in clusters.values() if any(u.startswith("r:") for u in uids)]
    return out, best


def _scored_pairs(
    records: pa.Table,
    members: pa.Table,
    present: set[str],
    review_threshold: float,
    scratch: Path,
    memory_limit: str,
) -> list[Pair]:
    """Score candidate pairs of records with members and with each other: (left id, right id,
    match probability, match weight), probability >= `review_threshold`.

    One Fellegi–Sunter model is trained on records against members (where most true matches
    are) and scores both; a file with no members around trains on itself. Training sees a
    sample of the records: the parameters are the same, the cost is bounded. Blocking rules
    whose pairs would exceed a budget (a postcode shared by thousands) are left out rather than
    letting one rule run for hours; the budget scales with the number of records.
    Runs on a DuckDB of its own (Splink creates tables wherever it runs), spilling to `scratch`.
    """
    import duckdb
    from splink import DuckDBAPI

    scratch.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"temp_directory": str(scratch), "memory_limit": memory_limit})
    api = DuckDBAPI(connection=con)
    budget = _budget(records.num_rows)
    records, members = _with_phone_holders(records, members)
    sample = records
    if records.num_rows > TRAINING_RECORDS:
        rows = sorted(random.Random(7).sample(range(records.num_rows), TRAINING_RECORDS))
        sample = records.take(rows)

    def settings(tables: list[pa.Table], link_type: LinkType) -> Any:
        rules = _within_budget(con, tables, _prediction_rules(present), link_type, budget)
        return _settings(present, link_type, rules)

    pairs: list[Pair] = []
    dedupe = settings([records], "dedupe_only")
    if members.num_rows:
        linking = settings([records, members], "link_only")
        model = _trained_model(api, con, [sample, members], linking, "link_only", present)
        pairs += _predict(api, con, [records, members], model, review_threshold, present)
        model = _with_prior(api, [records], dedupe, model["comparisons"], present)
    elif records.num_rows < SMALL_FILE:
        model = _stated_model(api, records, dedupe)
    else:
        model = _trained_model(api, con, [sample], dedupe, "dedupe_only", present)
    pairs += _predict(api, con, [records], model, review_threshold, present)
    con.close()
    return pairs


def _linkable(present: set[str]) -> str:
    """SQL over a prediction's comparison levels: whether the pair may link at all.

    Where both names are given and disagree entirely, only an identifier of a person can
    link: the same phone (that no third record holds), e-mail (one typo allowed) or birth
    date. An address or a postcode, shared by a building, a mall or a household, never does.
    """
    if not present & {"name", "name_kana"}:
        return "true"
    support = {
        # A phone that a third record holds too (a switchboard, a landline) is a place's.
        "phone": "(gamma_phone >= 1 AND phone_holders_l <= 2)",
        "email": "gamma_email >= 2",
        "birth_date": "birth_date_l = birth_date_r",
    }
    return "gamma_name <> 0" + "".join(f" OR {support[f]}" for f in support if f in present)


def _with_phone_holders(records: pa.Table, members: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Both tables with `phone_holders`: how many records and members hold each one's phone
    (a switchboard, a household's landline, a shop's number written on every order)."""
    import pyarrow.compute as pc

    phones_ = pa.concat_arrays(
        [t.column("phone").combine_chunks().cast(pa.string()) for t in (records, members)]
    )
    counts = pc.value_counts(phones_.drop_null())
    held = dict(
        zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
    )

    def holders(table: pa.Table) -> pa.Table:
        values = [held.get(v) for v in table.column("phone").to_pylist()]
        return table.append_column("phone_holders", pa.array(values, pa.int64()))

    return holders(records), holders(members)


def _predict(
    api: Any,
    con: Any,
    tables: list[pa.Table],
    model: dict[str, Any],
    review_threshold: float,
    present: set[str],
) -> list[Pair]:
    from splink import Linker

    names = [f"__splink__all_{len(tables)}_{i}" for i in range(len(tables))]
    inputs = [api.register(t, table_name=n) for t, n in zip(tables, names, strict=True)]
    linker = Linker(inputs, model, log_level=None)
    predictions = linker.inference.predict(threshold_match_probability=review_threshold)
    table = predictions.physical_name
    weight = _person_weight(model)
    rows = con.sql(
        f"SELECT unique_id_l, unique_id_r, {weight} AS w, {_linkable(present)} FROM {table}"
    ).fetchall()
    return [Pair(str(a), str(b), _probability(w), w, bool(ok)) for a, b, w, ok in rows]


def _probability(weight: float) -> float:
    """A match weight (log2 of the odds) as a probability."""
    return 1.0 / (1.0 + 2.0 ** -min(max(weight, -1000.0), 1000.0))


PLACE = ("address", "postcode")
"""Comparisons of where a record is, not who it is."""


def _person_weight(model: dict[str, Any]) -> str:
    """SQL: a prediction's match weight, less what the place said for it where the names
    disagree entirely and the phone agrees. A shared address (or postcode) and a shared phone
    are then one fact, a place in common (a hotel's restaurants, a household's landline), and
    counting both as independent evidence outweighs the names; the phone alone stands for the
    place."""
    names = {c["output_column_name"] for c in model["comparisons"]}
    place = []
    for comparison in model["comparisons"]:
        if comparison["output_column_name"] not in PLACE:
            continue
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        cases = " ".join(
            f"WHEN {len(levels) - 1 - i} THEN {math.log2(lv['m_probability'] / lv['u_probability'])}"
            for i, lv in enumerate(levels)
            if lv["m_probability"] > lv["u_probability"]
        )
        if cases:
            place.append(f"coalesce(CASE gamma_{comparison['output_column_name']} {cases} END, 0)")
    if not {"name", "phone"} <= names or not place:
        return "match_weight"
    return f"CASE WHEN gamma_name = 0 AND gamma_phone >= 1 THEN match_weight - {' - '.join(place)} ELSE match_weight END"


def _with_prior(
    api: Any, tables: list[pa.Table], settings: Any, comparisons: Any, present: set[str]
) -> dict[str, Any]:
    """A trained model's comparisons under `settings`, with a prior estimated on `tables`."""

    inputs = [api.register(t, table_name=f"__splink__prior_{i}") for i, t in enumerate(tables)]
    linker = _linker_with_prior(inputs, settings, present)
    model = linker.misc.save_model_to_json()
    model["comparisons"] = comparisons
    return _regularised(model)


def _linker_with_prior(inputs: list[Any], settings: Any, present: set[str]) -> Any:
    """A linker whose prior is how many pairs near-certain rules find, read as 70% of the
    true matches (Splink's default prior when no pair meets them)."""
    from splink import Linker, block_on

    linker = Linker(inputs, settings, log_level=None)
    deterministic: list[Any] = [block_on(f) for f in ("email", "phone") if f in present]
    if {"name", "birth_date"} <= present:
        deterministic.append(block_on("name", "birth_date"))
    elif {"birth_date", "postcode"} <= present:
        deterministic.append(block_on("birth_date", "postcode"))
    try:
        linker.training.estimate_probability_two_random_records_match(
            deterministic or [block_on(sorted(present)[0])], recall=0.7
        )
    except (ValueError, ZeroDivisionError):
        # No pair met those rules: the prior stays Splink's default. (A second Linker from
        # the same settings would come without comparisons: building one consumes them.)
        pass
    return linker


SMALL_FILE = 100
"""Fewer records than this, and no members: too few pairs to learn from; use `STATED`."""

STATED: dict[str, list[tuple[float, float]]] = {
    # (m, u) of each non-null level of a comparison, in the order `_settings` writes them: what
    # a file too small to learn from is scored with. Rough figures for Japanese retail data.
    "name": [(0.8, 1e-4), (0.08, 1e-4), (0.05, 1e-3), (0.03, 2e-3), (0.02, 1e-2), (0.02, 0.9869)],
    "birth_date": [(0.9, 5e-5), (0.05, 2e-3), (0.02, 4e-3), (0.02, 5e-2), (0.01, 0.95)],
    "postcode": [(0.95, 1e-3), (0.05, 0.999)],
    # An address is shared by a household, a building, a mall: its agreement is evidence of a
    # place, not of a person.
    "address": [(0.7, 1e-3), (0.2, 2e-3), (0.05, 5e-3), (0.05, 0.99)],
    "phone": [(0.9, 1e-4), (0.02, 1e-4), (0.08, 0.9998)],
    "email": [(0.85, 1e-7), (0.08, 1e-6), (0.03, 1e-5), (0.04, 1.0)],
}


def _stated_model(api: Any, records: pa.Table, settings: Any) -> dict[str, Any]:
    """`settings` with the `STATED` parameters and a prior of one record in ten having a
    duplicate in the file."""
    from splink import Linker

    linker = Linker([api.register(records, table_name="__splink__small")], settings, log_level=None)
    model = linker.misc.save_model_to_json()
    for comparison in model["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        for level, (m, u) in zip(levels, STATED[comparison["output_column_name"]], strict=True):
            level["m_probability"], level["u_probability"] = m, u
    n = max(records.num_rows, 2)
    model["probability_two_random_records_match"] = min(0.1 * n / (n * (n - 1) / 2), PRIOR_CAP)
    return model


TRAINING_RECORDS = 20_000
"""Records a model is trained on at most (against all members)."""


def _budget(records: int) -> int:
    """Pairs one blocking rule may produce: 300 a record on average, at least 2 million."""
    return max(2_000_000, 300 * records)


def _prediction_rules(present: set[str]) -> list[tuple[str, ...]]:
    """Blocking rules for prediction, as SQL expressions compared for equality."""
    rules: list[tuple[str, ...]] = []
    if present & {"name", "name_kana"}:
        rules.append(("substr(coalesce(kana_key, name), 1, 2)", "postcode"))
        rules.extend([("kana_key",), ("name",), ("name_tokens",)])
    for f in ("birth_date", "phone", "email"):
        if f in present:
            rules.append((f,))
    if "address" in present:
        rules.append(("address",))
    if not rules and "postcode" in present:
        rules.append(("postcode",))  # nothing else to block on
    return [r for r in rules if all(_uses_present(e, present) for e in r)]


def _training_rules(present: set[str]) -> list[tuple[str, ...]]:
    """Blocking rules for EM sessions: between them, each comparison is left free by one.

    Only identifiers of a person: a session blocked on an address or a postcode is full of
    households (same address, other names), and EM then learns that a match often has another
    name.
    """
    rules = [("birth_date",), ("name",), ("phone",), ("email",)]
    return [r for r in rules if all(_uses_present(e, present) for e in r)]


def _uses_present(expr: str, present: set[str]) -> bool:
    if "kana_key" in expr or "name_tokens" in expr or re.search(r"\bname\b", expr):
        return bool(present & {"name", "name_kana"})
    return any(re.search(rf"\b{f}\b", expr) for f in present)


def _comparisons(
    con: Any, tables: list[pa.Table], rule: tuple[str, ...], link_type: LinkType
) -> int:
    """How many pairs an equality blocking rule yields (counted, not built)."""
    key = ", ".join(f"{e} AS k{i}" for i, e in enumerate(rule))
    where = " AND ".join(f"({e}) IS NOT NULL" for e in rule)
    names = [f"k{i}" for i in range(len(rule))]
    for i, table in enumerate(tables):
        con.register(f"_count_{i}", table)
    groups = [
        f"(SELECT {key}, count(*) AS n FROM _count_{i} WHERE {where} GROUP BY ALL)"
        for i in range(len(tables))
    ]
    if link_type == "dedupe_only":
        sql = f"SELECT sum(n * (n - 1) / 2) FROM {groups[0]}"
    else:
        sql = f"SELECT sum(a.n * b.n) FROM {groups[0]} a JOIN {groups[1]} b USING ({', '.join(names)})"
    ((count,),) = con.sql(sql).fetchall()
    for i in range(len(tables)):
        con.unregister(f"_count_{i}")
    return int(count or 0)


def _within_budget(
    con: Any,
    tables: list[pa.Table],
    rules: list[tuple[str, ...]],
    link_type: LinkType,
    budget: int,
) -> list[tuple[str, ...]]:
    pairs = {rule: _comparisons(con, tables, rule, link_type) for rule in rules}
    kept = [rule for rule, n in pairs.items() if n <= budget]
    if not kept:
        # Every rule is too coarse (a file of common names only): keep the tightest one.
        kept = [min(pairs, key=lambda rule: pairs[rule])]
    return kept


def _trained_model(
    api: Any,
    con: Any,
    tables: list[pa.Table],
    settings: Any,
    link_type: LinkType,
    present: set[str],
) -> dict[str, Any]:
    """The model's settings with m and u probabilities and the prior, as a dict."""
    from splink import Linker, block_on

    inputs = [api.register(t, table_name=f"__splink__train_{i}") for i, t in enumerate(tables)]
    linker = _linker_with_prior(inputs, settings, present)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=7)
    # One EM session per rule within the budget; a session cannot train what it blocks on.
    budget = _budget(tables[0].num_rows) // 3
    for rule in _training_rules(present):
        if _comparisons(con, tables, rule, link_type) > budget:
            continue
        before = linker.misc.save_model_to_json()
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(*rule), estimate_without_term_frequencies=True
            )
        except Exception:  # noqa: BLE001 - a block with too few pairs trains nothing
            # A failed session can leave the linker without the comparisons it set aside.
            linker = Linker(inputs, before, log_level=None)
    return _regularised(linker.misc.save_model_to_json())


M_FLOOR = 1e-3
"""No level is impossible for a true match: one typo in a postcode must not veto a match."""
U_FLOOR = 1e-6
"""A level no random pair reached (about one in the million sampled)."""
PRIOR_CAP = 0.1


def _regularised(model: dict[str, Any]) -> dict[str, Any]:
    """The trained model with every m and u probability floored.

    EM drives the m of a level it never saw among matches to zero (or leaves it unset), which
    reads as "a match never looks like this" and, for a level no random pair reached, u unset
    makes Splink ignore the level. Both turn one unlucky sample into a veto or a blind spot.
    """
    for comparison in model["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        for key, floor in (("m_probability", M_FLOOR), ("u_probability", U_FLOOR)):
            values = [max(lv.get(key) or 0.0, floor) for lv in levels]
            total = sum(values)
            for lv, value in zip(levels, values, strict=True):
                lv[key] = value / total
    # A small file full of duplicates can read as "every pair matches": keep the prior a prior.
    prior = model.get("probability_two_random_records_match") or PRIOR_CAP
    model["probability_two_random_records_match"] = min(max(prior, 1e-12), PRIOR_CAP)
    return model


def save_matches(*, store: Store, file: str, result: MatchResult) -> None:
    """Keep the matches and review candidates of one file (a re-run replaces them).

    Written as Arrow tables: row-by-row inserts of 100k matches took a minute.
    """
    now = utcnow()
    types = {
        "record_id": pa.string(),
        "profile_id": pa.string(),
        "match_probability": pa.float64(),
        "matched": pa.string(),
        "member_id": pa.string(),
        "email": pa.string(),
        "phone": pa.string(),
    }
    matches = pa.table(
        {c: pa.array([getattr(m, c) for m in result.matches], t) for c, t in types.items()}
    )
    review = pa.table(
        {
            "left_id": pa.array([r["left"] for r in result.review], pa.string()),
            "right_id": pa.array([r["right"] for r in result.review], pa.string()),
            "match_probability": pa.array(
                [r["match_probability"] for r in result.review], pa.float64()
            ),
            "match_weight": pa.array([r["match_weight"] for r in result.review], pa.float64()),
        }
    )
    with store.transaction() as cur:
        cur.execute("DELETE FROM identity_matches WHERE file = ?", [file])
        cur.execute("DELETE FROM identity_review WHERE file = ?", [file])
        cur.register("_matches", matches)
        cur.register("_review", review)
        cur.execute(
            "INSERT INTO identity_matches (file, record_id, profile_id, match_probability, "
            "matched, member_id, matched_at, email, phone) SELECT ?, record_id, profile_id, "
            "match_probability, matched, member_id, ?, email, phone FROM _matches",
            [file, now],
        )
        cur.execute(
            "INSERT INTO identity_review (file, left_id, right_id, match_probability, "
            "match_weight, found_at) SELECT ?, left_id, right_id, match_probability, "
            "match_weight, ? FROM _review",
            [file, now],
        )
        cur.unregister("_matches")
        cur.unregister("_review")


def review_candidates(*, store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """Pairs waiting for a person's decision, the most likely first."""
    result = store.query(
        "SELECT file, left_id, right_id, match_probability, match_weight FROM identity_review "
        "ORDER BY match_probability DESC, file, left_id, right_id LIMIT ?",
        [limit],
    )
    keys = ("file", "left", "right", "match_probability", "match_weight")
    return [dict(zip(keys, row, strict=True)) for row in result]
