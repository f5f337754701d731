from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.identity.test_graph import MEMBERS, T0, events
from tsunagu.catalog.imports import import_master
from tsunagu.exceptions import NotFound
from tsunagu.identity.erasure import erase_profile, is_suppressed
from tsunagu.identity.graph import build_graph
from tsunagu.identity.profiles import lookup
from tsunagu.identity.rules import IdentityRules
from tsunagu.keys import create_key
from tsunagu.store import Store

BIN = str(Path(sys.executable).parent / "tsunagu")
# Everything that names M1 in the data below, as written there.
TRACES = [
    "M1",
    "2000000000011",
    "Taro@Example.jp",
    "taro@example.jp",
    "090-1234-5678",
    "+819012345678",
    "anon-web-m1",
    "anon-m1",
    "山田 太郎",
]


def m1_events() -> list:  # type: ignore[type-arg]
    return events(
        {
            "type": "identify",
            "userId": "M1",
            "anonymousId": "anon-web-m1",
            "traits": {"email": "Taro@Example.jp"},
        },
        {
            "type": "track",
            "event": "Order Completed",
            "anonymousId": "anon-web-m1",
            "properties": {"revenue": 5400},
        },
        {
            "type": "screen",
            "anonymousId": "anon-m1",
            "name": "Home",
            "context": {"device": {"id": "D1"}},
        },
        {
            "type": "identify",
            "userId": "M1",
            "anonymousId": "anon-m1",
            "context": {"device": {"id": "D1"}},
        },
        {
            "type": "track",
            "event": "Order Completed",
            "anonymousId": "card:2000000000011",
            "context": {"channel": "store", "traits": {"member_card": "2000000000011"}},
        },
        {"type": "identify", "userId": "M2", "anonymousId": "m2-web"},
    )


@pytest.fixture
def people(store: Store, tmp_path: Path) -> tuple[Store, Path]:
    members = tmp_path / "members.csv"
    members.write_text(MEMBERS, encoding="utf-8")
    import_master(store=store, kind="members", path=members)
    store.insert_events(m1_events())
    build_graph(store=store, rules=IdentityRules())
    return store, members


def remaining(store: Store, traces: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, trace) for every cell in every table that still contains a trace."""
    hits = []
    tables = [
        r[0]
        for r in store.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        )
    ]
    for table in tables:
        cols = [
            r[0]
            for r in store.query(
                f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'"
            )
        ]
        for col in cols:
            for trace in traces:
                if store.scalar(
                    f'SELECT count(*) FROM "{table}" WHERE contains(CAST("{col}" AS VARCHAR), ?)',
                    [trace],
                ):
                    hits.append((table, col, trace))
    return hits


def test_no_row_of_the_person_remains_and_others_are_kept(people: tuple[Store, Path]) -> None:
    store, _ = people
    rules = IdentityRules()
    assert remaining(store, ["M1"])  # the check finds what is there
    m2 = lookup(store=store, rules=rules, kind="user_id", value="M2")
    report = erase_profile(
        store=store,
        rules=rules,
        profile_id=lookup(store=store, rules=rules, kind="user_id", value="M1"),
    )
    assert report.deleted["events"] == 5 and report.deleted["members"] == 1
    assert remaining(store, TRACES) == []
    assert store.scalar("SELECT count(*) FROM events WHERE device_id = 'D1'") == 0
    assert store.scalar("SELECT count(*) FROM identity_nodes WHERE value = 'D1'") == 0
    assert lookup(store=store, rules=rules, kind="user_id", value="M2") == m2
    assert store.scalar("SELECT count(*) FROM events WHERE user_id = 'M2'") == 1
    assert is_suppressed(store=store, kind="email", value=" TARO@example.jp ")
    with pytest.raises(NotFound):
        lookup(store=store, rules=rules, kind="user_id", value="M1")


def test_re_imports_do_not_bring_the_person_back(people: tuple[Store, Path]) -> None:
    store, members = people
    rules = IdentityRules()
    erase_profile(
        store=store,
        rules=rules,
        profile_id=lookup(store=store, rules=rules, kind="user_id", value="M1"),
    )
    result = import_master(store=store, kind="members", path=members)
    assert result.suppressed == 1 and "erased" in result.warnings[-1]
    store.insert_events(m1_events())  # a client re-sending old events
    # M2's identify comes back as a duplicate; nothing of M1 is stored again.
    assert remaining(store, ["M1", "2000000000011", "anon-m1", "taro@example.jp"]) == []
    build_graph(store=store, rules=rules)
    with pytest.raises(NotFound):
        lookup(store=store, rules=rules, kind="member_card", value="2000000000011")


def test_erasure_over_http_needs_an_admin_key_and_the_cli_asks(
    people: tuple[Store, Path], live_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    store, _ = people
    _, read = create_key(store=store, name="bi", scope="read")
    _, admin = create_key(store=store, name="dpo", scope="admin")
    pid = lookup(store=store, rules=IdentityRules(), kind="user_id", value="M2")
    url = f"{live_server.url}/v1/profiles/{pid}"
    assert httpx.delete(url).status_code == 401
    assert httpx.delete(url, headers={"Authorization": f"Bearer {read}"}).status_code == 403
    done = httpx.delete(url, headers={"Authorization": f"Bearer {admin}"})
    assert done.status_code == 200 and done.json()["deleted"]["members"] == 1
    assert httpx.delete(url, headers={"Authorization": f"Bearer {admin}"}).status_code == 404
    assert T0  # the shared fixture's clock


def test_cli_erase(tmp_path: Path) -> None:
    data = tmp_path / "d"
    members = tmp_path / "members.csv"
    members.write_text(MEMBERS, encoding="utf-8")
    for args in (["import", "members", str(members)], ["identity", "build"]):
        assert (
            subprocess.run(
                [BIN, "--data-dir", str(data), *args], capture_output=True, timeout=120
            ).returncode
            == 0
        )
    refused = subprocess.run(
        [BIN, "--data-dir", str(data), "profile", "erase", "member_card:2000000000028"],
        input="n\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
    done = subprocess.run(
        [BIN, "--data-dir", str(data), "profile", "erase", "hanako@example.jp", "--yes", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deleted"]["members"] == 1
