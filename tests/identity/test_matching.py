from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from tsunagu.exceptions import InvalidInput
from tsunagu.identity.graph import build_graph
from tsunagu.identity.matching import (
    kana_key,
    match_records,
    norm_kana,
    norm_name,
    review_candidates,
    save_matches,
)
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_names_are_compared_normalised() -> None:
    assert norm_name("山田　太郎") == norm_name("山田 太郎") == "山田太郎"
    assert norm_kana("ﾔﾏﾀﾞ ﾀﾛｳ") == norm_kana("やまだ たろう") == "ヤマダタロウ"
    assert norm_name("John  SMITH") == "johnsmith"
    # One byte per kana, so Jaro-Winkler compares characters.
    assert len(kana_key("ヤマダタロウ") or "") == 6


def test_call_centre_records_find_their_members(
    retailer: tuple[Path, Path], tmp_path: Path
) -> None:
    files, data = retailer
    with (files / "members.csv").open(encoding="utf-8") as fh:
        members = list(csv.DictReader(fh))
    rng = random.Random(3)
    sample = rng.sample(members, 40)
    rows = []
    for i, m in enumerate(sample):
        rows.append(
            {
                "record_id": f"C{i:03d}",
                # As a call-centre agent types it: no space, slashes in dates, phone half the time.
                "name": m["name"].replace("\u3000", "").replace(" ", ""),
                "name_kana": m["name_kana"],
                "birth_date": m["birth_date"].replace("-", "/"),
                "postcode": m["postcode"].replace("-", ""),
                "address": m["address"],
                "phone": m["phone"] if i % 2 else "",
                "email": "",
            }
        )
    rows.append(
        {
            "record_id": "X1",
            "name": "架空 一郎",
            "name_kana": "カクウ イチロウ",
            "birth_date": "1980-01-01",
            "postcode": "999-9999",
            "address": "どこか1-1",
            "phone": "",
            "email": "",
        }
    )
    rows.append(
        {
            "record_id": "X2",
            "name": "架空一郎",
            "name_kana": "ｶｸｳ ｲﾁﾛｳ",
            "birth_date": "1980/01/01",
            "postcode": "9999999",
            "address": "どこか 1-1",
            "phone": "",
            "email": "",
        }
    )
    path = write_csv(tmp_path / "calls.csv", rows)
    with Store(data / "tsunagu.duckdb") as store:
        build_graph(store=store, rules=IdentityRules())
        result = match_records(store=store, path=path, rules=IdentityRules())
        save_matches(store=store, file=str(path), result=result)
        stored = store.scalar("SELECT count(*) FROM identity_matches")
        profiles = dict(
            store.query("SELECT value, profile_id FROM identity_nodes WHERE type = 'user_id'")
        )
    by_record = {m.record_id: m for m in result.matches}
    assert result.records == stored == 42
    right = sum(
        1
        for i, m in enumerate(sample)
        if by_record[f"C{i:03d}"].profile_id == profiles[m["member_id"]]
    )
    assert right >= 38, right
    assert by_record["X1"].profile_id == by_record["X2"].profile_id
    assert by_record["X1"].matched == "records"
    assert all(m.match_probability is None or 0 <= m.match_probability <= 1 for m in result.matches)


def test_a_file_of_its_own_is_deduplicated(store: Store, tmp_path: Path) -> None:
    rng = random.Random(5)
    first = ["john", "mary", "peter", "susan", "david", "linda", "james", "karen", "paul", "nancy"]
    last = [
        "smith",
        "jones",
        "brown",
        "taylor",
        "wilson",
        "evans",
        "thomas",
        "roberts",
        "walker",
        "wright",
    ]
    rows, truth = [], {}
    for person in range(120):
        name = f"{rng.choice(first)} {rng.choice(last)}"
        born = f"19{rng.randint(40, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        postcode = f"{rng.randint(2000, 7999)}"
        copies = 2 if person % 3 == 0 else 1
        for copy in range(copies):
            typo = name if copy == 0 else name[:-1] + rng.choice("aeiou")
            rid = f"r{person}-{copy}"
            truth[rid] = person
            rows.append(
                {
                    "record_id": rid,
                    "name": typo,
                    "birth_date": born,
                    "postcode": postcode,
                    "address": f"{rng.randint(1, 99)} main st" if copy == 0 else "",
                }
            )
    path = write_csv(tmp_path / "people.csv", rows)
    result = match_records(store=store, path=path, rules=IdentityRules())
    profile = {m.record_id: m.profile_id for m in result.matches}
    pairs = [(a, b) for a in truth for b in truth if a < b]
    true_pairs = {(a, b) for a, b in pairs if truth[a] == truth[b]}
    found = {(a, b) for a, b in pairs if profile[a] == profile[b]}
    precision = len(found & true_pairs) / max(1, len(found))
    recall = len(found & true_pairs) / len(true_pairs)
    assert precision >= 0.9 and recall >= 0.8, (precision, recall)


def test_bad_match_files_are_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        match_records(
            store=store, path=write_csv(tmp_path / "a.csv", [{"name": "x"}]), rules=IdentityRules()
        )
    assert info.value.field == "record_id"
    with pytest.raises(InvalidInput) as info:
        match_records(
            store=store,
            path=write_csv(tmp_path / "b.csv", [{"record_id": "1", "shoe": "27"}]),
            rules=IdentityRules(),
        )
    assert info.value.field == "header"
    with pytest.raises(InvalidInput) as info:
        match_records(
            store=store,
            path=write_csv(
                tmp_path / "c.csv",
                [{"record_id": "1", "name": "a"}, {"record_id": "1", "name": "b"}],
            ),
            rules=IdentityRules(),
        )
    assert info.value.field == "record_id"
    assert review_candidates(store=store) == []
