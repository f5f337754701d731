"""Probabilistic matching at scale: N call-centre style records against an imported member master.

Makes the records from the sample retailer's `members.csv` as an agent would type them (no space
in the name, slashes in the date, postcode without its hyphen, the phone on half of them, kana
in half width now and then, a typo in a third of the kana, a wrong digit in some birth dates),
and with the name itself not as the member wrote it (`mistyped_name`: old and new forms of a
character in a fifth, an input-method homophone in a tenth of the given names, a character
left out in 1 in 50), so the figure is how many people are found when no field is exact,
not how many exact names are found again;
plus a share of people who are not members: namesakes (a member's name, another birth date and
town) and household members (a member's surname and address, another given name and birth
date). Times `match_records` on the store and prints, against `truth.csv` (a person may hold two
member ids), how many records found their person, how many non-members were wrongly linked, and
peak memory.

    .venv/bin/python benchmarks/matching.py --data-dir STORE_DIR --retailer RETAILER_DIR \
        [--records 100000] [--strangers 0.3]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import tempfile
import time
import unicodedata
from pathlib import Path

from tsunagu.identity.matching import match_records
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store

FIELDS = ["record_id", "name", "name_kana", "birth_date", "postcode", "address", "phone", "email"]


def typo(rng: random.Random, text: str) -> str:
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


# Old and new forms of characters common in names (異体字): registries keep one, people and
# input methods write the other.
VARIANTS = str.maketrans("高崎辺沢斎浜徳桜広恵竜島国", "髙﨑邊澤齋濱德櫻廣惠龍嶋國")
# Input-method slips in given names: the same reading, another character.
HOMOPHONES = {
    "裕": "祐", "祐": "裕", "也": "哉", "哉": "也", "美": "実", "司": "士",
    "弘": "宏", "宏": "弘", "浩": "博", "博": "浩", "洋": "陽", "彩": "綾",
}  # fmt: skip


def mistyped_name(rng: random.Random, name: str) -> str:
    """A name as typed by someone else: an old or new form of a character (a fifth of the
    records), a homophone in the given name (a tenth), a character left out (1 in 50)."""
    if rng.random() < 0.2:
        name = name.translate(VARIANTS)
    if rng.random() < 0.1:
        at = [i for i, c in enumerate(name) if i >= 2 and c in HOMOPHONES]
        if at:
            i = rng.choice(at)
            name = name[:i] + HOMOPHONES[name[i]] + name[i + 1 :]
    if rng.random() < 0.02 and len(name) > 3:
        i = rng.randrange(1, len(name))
        name = name[:i] + name[i + 1 :]
    return name


def as_typed(rng: random.Random, m: dict[str, str], record_id: str) -> dict[str, str]:
    name = mistyped_name(rng, m["name"].replace("\u3000", "").replace(" ", ""))
    kana = m["name_kana"]
    if rng.random() < 0.3:
        kana = typo(rng, kana)
    if rng.random() < 0.3:
        kana = unicodedata.normalize("NFKC", kana).translate(HALF_WIDTH)
    birth = m["birth_date"]
    if birth and rng.random() < 0.05:
        i = rng.choice([2, 3, 6, 9])
        birth = birth[:i] + str((int(birth[i]) + 1) % 10) + birth[i + 1 :]
    return {
        "record_id": record_id,
        "name": name,
        "name_kana": kana,
        "birth_date": birth.replace("-", "/"),
        "postcode": m["postcode"].replace("-", ""),
        "address": m["address"] if rng.random() < 0.8 else "",
        "phone": m["phone"] if rng.random() < 0.5 else "",
        "email": m["email"] if rng.random() < 0.2 else "",
    }


def halves(name: str) -> tuple[str, str]:
    """Surname and given name (written without a space: the first two characters)."""
    words = name.split()
    return (words[0], words[-1]) if len(words) > 1 else (name[:2], name[2:])


def household(m: dict[str, str], other: dict[str, str]) -> dict[str, str]:
    """One of `m`'s household: surname, postcode and address; given name and birth date of
    `other`; no phone or e-mail."""
    return dict(
        m,
        name=halves(m["name"])[0] + halves(other["name"])[1],
        name_kana=halves(m["name_kana"])[0] + halves(other["name_kana"])[1],
        birth_date=other["birth_date"],
        phone="",
        email="",
    )


def write_records(folder: Path, rows: list[dict[str, str]]) -> Path:
    path = folder / "records.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


# Full-width katakana to half width (what an old till or a fax-to-text system writes).
_FULL = (
    "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン"
)
_HALF = "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜｦﾝ"
HALF_WIDTH = str.maketrans(_FULL, _HALF)


def dedupe(args: argparse.Namespace, rng: random.Random, members: list[dict[str, str]]) -> None:
    """People typed once, twice or three times (plus namesakes and households of theirs, who are
    other people), matched on an empty store; pairwise precision and recall over records."""
    rows: list[dict[str, str]] = []
    person: dict[str, int] = {}
    for i, m in enumerate(rng.sample(members, args.records // 2)):
        copies = 1 + (rng.random() < 0.4) + (rng.random() < 0.1)
        for c in range(copies):
            rows.append(as_typed(rng, m, f"P{i}-{c}"))
            person[f"P{i}-{c}"] = i
        if rng.random() < 0.1:
            rows.append(as_typed(rng, household(m, rng.choice(members)), f"H{i}"))
            person[f"H{i}"] = -1 - i
        if len(rows) >= args.records:
            break
    rng.shuffle(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_records(Path(tmp), rows)
        with Store(Path(tmp) / "store" / "tsunagu.duckdb") as store:
            start = time.perf_counter()
            result = match_records(store=store, path=path, rules=IdentityRules())
            seconds = time.perf_counter() - start

    def pairs(groups: dict[object, list[str]]) -> set[tuple[str, str]]:
        return {(a, b) for ids in groups.values() for a in ids for b in ids if a < b}

    found: dict[object, list[str]] = {}
    truth: dict[object, list[str]] = {}
    for m in result.matches:
        found.setdefault(m.profile_id, []).append(m.record_id)
        truth.setdefault(person[m.record_id], []).append(m.record_id)
    got, want = pairs(found), pairs(truth)
    hit = len(got & want)
    precision, recall = hit / max(len(got), 1), hit / max(len(want), 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"dedupe {result.records:,} records ({len(want):,} true pairs): {seconds:.1f} s on "
        f"{os.cpu_count()} cores, peak RSS {peak:,.0f} MB; precision {precision:.3f} "
        f"recall {recall:.3f} F1 {2 * precision * recall / max(precision + recall, 1e-9):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, required=True, help="a store with members")
    parser.add_argument("--retailer", type=Path, required=True, help="members.csv, truth.csv")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--strangers", type=float, default=0.3, help="share of non-members")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--dedupe",
        action="store_true",
        help="no members: a file of its own, 40%% of people twice or three times, deduplicated",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with (args.retailer / "members.csv").open(encoding="utf-8") as fh:
        members = list(csv.DictReader(fh))
    with (args.retailer / "truth.csv").open(encoding="utf-8") as fh:
        person = {
            r["identifier_value"]: r["person_id"]
            for r in csv.DictReader(fh)
            if r["identifier_type"] == "user_id"
        }
    if args.dedupe:
        return dedupe(args, rng, members)
    known = int(args.records * (1 - args.strangers))
    source: dict[str, str] = {}
    rows = []
    for i, m in enumerate(rng.sample(members, known)):
        rows.append(as_typed(rng, m, f"K{i}"))
        source[f"K{i}"] = m["member_id"]
    for i in range(args.records - known):
        a, b, c = rng.sample(members, 3)
        if i % 2:  # a namesake: same name, another birth date and town
            other = dict(
                a, birth_date=b["birth_date"], postcode=c["postcode"], address=c["address"]
            )
        else:  # one of a's household: surname, postcode, address; own given name and birth date
            other = household(a, b)
        rows.append(as_typed(rng, dict(other, phone="", email=""), f"S{i}"))
    rng.shuffle(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_records(Path(tmp), rows)
        with Store(args.data_dir / "tsunagu.duckdb") as store:
            members_n = store.scalar("SELECT count(*) FROM members")
            start = time.perf_counter()
            result = match_records(store=store, path=path, rules=IdentityRules())
            seconds = time.perf_counter() - start
    found = {m.record_id: m for m in result.matches}

    def same(a: str | None, b: str) -> bool:
        return a is not None and person.get(a) == person.get(b)

    right = sum(1 for rid, member in source.items() if same(found[rid].member_id, member))
    wrong = sum(
        1
        for rid, member in source.items()
        if found[rid].member_id is not None and not same(found[rid].member_id, member)
    )
    strangers = [m for rid, m in found.items() if rid.startswith("S")]
    linked = sum(1 for m in strangers if m.member_id is not None)
    if os.environ.get("SHOW_WRONG"):
        by_id = {m["member_id"]: m for m in members}
        records = {r["record_id"]: r for r in rows}
        shown = [m for rid, m in found.items() if rid.startswith("S") and m.member_id][:8]
        shown += [
            m
            for rid, m in found.items()
            if rid.startswith("K") and not same(m.member_id, source[rid])
        ][:8]
        for m in shown:
            r = records[m.record_id]
            o = by_id.get(m.member_id or "") or by_id[source[m.record_id]]
            print(
                m.record_id,
                round(m.match_probability or 0, 3),
                " | ".join(f"{r[k]} / {o.get(k)}" for k in FIELDS[1:]),
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"match {result.records:,} records against {members_n:,} members: {seconds:.1f} s "
        f"on {os.cpu_count()} cores, peak RSS {peak:,.0f} MB"
    )
    print(
        f"members' records: {right:,} of {len(source):,} found their person "
        f"({right / len(source):.3f}), {wrong:,} linked to another person; "
        f"non-members: {linked:,} of {len(strangers):,} linked to a member; "
        f"{len(result.review):,} pairs to review"
    )


if __name__ == "__main__":
    main()
