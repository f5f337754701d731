from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from tsunagu.identity.rules import TYPES, IdentityRules

EDGES = [
    ("email", " Taro@Example.JP "),
    ("email", "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ"),
    ("email", "noemail@example.com"),
    ("email", "not-an-address"),
    ("phone", "090-1234-5678"),
    ("phone", "０９０－１２３４－５６７８"),
    ("phone", "+81 90 1234 5678"),
    ("phone", "819012345678"),
    ("phone", "000-0000-0000"),
    ("phone", "090-0000-0000"),
    ("phone", "03-1234-5678"),
    ("phone", "00-1-212-555-0100"),
    ("phone", "+1 212 555 0100"),
    ("phone", "12345"),
    ("member_card", "2000-0000-0001 1"),
    ("member_card", "0000000000000"),
    ("member_card", "２０００　０００"),
    ("user_id", " M1 "),
    ("user_id", ""),
    ("anonymous_id", "unknown"),
    ("anonymous_id", "NULL"),
    ("device_id", "0"),
    ("line_user_id", "U1234abcd"),
]


def sql_norm(rules: IdentityRules, values: list[tuple[str, str]]) -> list[str | None]:
    con = duckdb.connect()
    con.execute(rules.macros())
    return [con.execute("SELECT tg_norm(?, ?)", [t, v]).fetchall()[0][0] for t, v in values]


def test_python_and_sql_normalise_alike_on_edge_cases() -> None:
    rules = IdentityRules()
    assert [rules.norm(t, v) for t, v in EDGES] == sql_norm(rules, EDGES)


def test_python_and_sql_normalise_alike_on_the_sample_retailer(retailer: tuple[Path, Path]) -> None:
    files, _ = retailer
    with (files / "truth.csv").open(encoding="utf-8") as fh:
        values = [(r["identifier_type"], r["identifier_value"]) for r in csv.DictReader(fh)][::7]
    rules = IdentityRules()
    con = duckdb.connect()
    con.execute(rules.macros())
    con.execute("CREATE TABLE v (t VARCHAR, x VARCHAR)")
    con.executemany("INSERT INTO v VALUES (?, ?)", values)
    in_sql = [r[0] for r in con.execute("SELECT tg_norm(t, x) FROM v ORDER BY rowid").fetchall()]
    assert [rules.norm(t, v) for t, v in values] == in_sql
    assert {t for t, _ in values} <= set(TYPES)


@pytest.mark.parametrize("kind", TYPES)
def test_every_type_has_a_rank(kind: str) -> None:
    assert 0 <= IdentityRules().rank(kind) < len(TYPES)
