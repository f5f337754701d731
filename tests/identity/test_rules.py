from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from tsunagu.identity.rules import TYPES, IdentityRules
from tsunagu.store.identifiers import add_functions

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
    ("phone", "03/3456-7890"),
    ("phone", "(03) 3456 7890"),
    ("phone", "03.3456.7890"),
    ("phone", "+81 (0)3-3456-7890"),
    ("phone", "212/555-0134"),
    ("phone", "010-1-212-555-0134"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "99999999"),
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


def connect(rules: IdentityRules) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    add_functions(con)
    con.execute(rules.macros())
    return con


def sql_norm(rules: IdentityRules, values: list[tuple[str, str]]) -> list[str | None]:
    con = connect(rules)
    return [con.execute("SELECT tg_norm(?, ?)", [t, v]).fetchall()[0][0] for t, v in values]


@pytest.mark.parametrize("country", ["JP", "US"])
def test_python_and_sql_normalise_alike_on_edge_cases(country: str) -> None:
    rules = IdentityRules(default_country=country)
    assert [rules.norm(t, v) for t, v in EDGES] == sql_norm(rules, EDGES)


SAME_TOKYO_NUMBER = [
    "03/3456-7890",
    "03-3456-7890",
    "(03) 3456 7890",
    "03.3456.7890",
    "+81 3-3456-7890",
    "０３－３４５６－７８９０",
    "+81 (0)3 3456 7890",
]


def test_a_phone_written_seven_ways_is_one_number() -> None:
    rules = IdentityRules()
    assert {rules.norm("phone", v) for v in SAME_TOKYO_NUMBER} == {"+81334567890"}
    assert set(sql_norm(rules, [("phone", v) for v in SAME_TOKYO_NUMBER])) == {"+81334567890"}


def test_a_foreign_number_is_e164_where_its_country_is_known_else_its_national_digits() -> None:
    japan, us = IdentityRules(), IdentityRules(default_country="us")
    # In a Japanese file nobody can tell 212/555-0134's country: its digits still compare.
    assert japan.norm("phone", "212/555-0134") == japan.norm("phone", "(212) 555-0134")
    assert japan.norm("phone", "212/555-0134") == "2125550134"
    assert us.norm("phone", "212/555-0134") == us.norm("phone", "+1 212-555-0134")
    assert us.norm("phone", "212/555-0134") == "+12125550134"
    # Dialled from Japan (010) or written with its country code, it is known everywhere.
    assert japan.norm("phone", "010-1-212-555-0134") == "+12125550134"
    assert japan.norm("phone", "+44 20 7946 0958") == us.norm("phone", "+44 20 7946 0958")
    # A Japanese number in a US file is Japanese once it says so.
    assert us.norm("phone", "+81 90-1234-5678") == "+819012345678"
    # Too short to be anyone's, or a placeholder.
    assert japan.norm("phone", "3456-789") is None
    assert japan.norm("phone", "99999999") is None


def test_an_unknown_default_country_is_refused() -> None:
    with pytest.raises(ValueError, match="default_country"):
        IdentityRules(default_country="XX")


def test_python_and_sql_normalise_alike_on_the_sample_retailer(retailer: tuple[Path, Path]) -> None:
    files, _ = retailer
    with (files / "truth.csv").open(encoding="utf-8") as fh:
        values = [(r["identifier_type"], r["identifier_value"]) for r in csv.DictReader(fh)][::7]
    rules = IdentityRules()
    con = connect(rules)
    con.execute("CREATE TABLE v (t VARCHAR, x VARCHAR)")
    con.executemany("INSERT INTO v VALUES (?, ?)", values)
    in_sql = [r[0] for r in con.execute("SELECT tg_norm(t, x) FROM v ORDER BY rowid").fetchall()]
    assert [rules.norm(t, v) for t, v in values] == in_sql
    assert {t for t, _ in values} <= set(TYPES)


@pytest.mark.parametrize("kind", TYPES)
def test_every_type_has_a_rank(kind: str) -> None:
    assert 0 <= IdentityRules().rank(kind) < len(TYPES)
