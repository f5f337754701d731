"""`tsunagu backup DIR` while the server takes events: the restored store is one moment of the
live one (every batch acknowledged before that moment whole, none after it in part), every other
table and file equal; and `tsunagu restore` refuses what it should."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import duckdb
import httpx

from tests.e2e.processes import ServerProcess, cli
from tsunagu.store import Store

PER_BATCH = 40


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, sorted (JSON and lists as text, so that rows compare)."""
    with duckdb.connect(str(path), read_only=True) as con:
        names = [
            n
            for (n,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()
        ]
        return {
            name: sorted(
                (tuple(map(str, row)) for row in con.execute(f'SELECT * FROM "{name}"').fetchall()),
            )
            for name in names
        }


def test_backup_while_events_stream_in_then_restore(server: ServerProcess, tmp_path: Path) -> None:
    data = server.data_dir
    members = tmp_path / "members.csv"
    members.write_text(
        "member_id,name,email,phone\nM1,山田 太郎,taro@example.jp,090-1234-5678\n"
        "M2,ｻﾄｳ ﾊﾅｺ,hanako@example.jp,\n",
        encoding="utf-8",
    )
    assert cli(data, "import", "members", str(members)).returncode == 0
    (data / "fan-rules.json").write_text('{"levels": []}', encoding="utf-8")  # a file of its own

    acknowledged: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(timeout=30) as client:
            for number in range(100_000):
                if stop.is_set():
                    return
                batch = [
                    {"type": "track", "event": "Product Viewed", "anonymousId": f"a{number}",
                     "messageId": f"b{number}-{i}", "properties": {"batch": number}}
                    for i in range(PER_BATCH)
                ]  # fmt: skip
                answer = client.post(
                    server.url + "/v1/batch", json={"batch": batch}, auth=(server.write_key, "")
                )
                assert answer.status_code == 200, answer.text
                acknowledged.append(number)

    sender = threading.Thread(target=stream)
    sender.start()
    try:
        while len(acknowledged) < 20:
            threading.Event().wait(0.02)
        backup_dir = tmp_path / "backup"
        made = cli(data, "backup", str(backup_dir), "--json")
        assert made.returncode == 0, made.stderr
        assert "holds the store; asking it" in made.stderr  # it went through the server
        before_end = len(acknowledged)
        while len(acknowledged) < before_end + 10:  # the stream went on past the backup
            threading.Event().wait(0.02)
    finally:
        stop.set()
        sender.join()
    done = json.loads(made.stdout)
    manifest = json.loads((backup_dir / "backup.json").read_text(encoding="utf-8"))
    assert manifest["tables"] == done["tables"]
    assert {"files/fan-rules.json", "files/link-secret", "tsunagu.duckdb"} <= set(manifest["files"])

    refused = cli(data, "restore", str(backup_dir))
    assert refused.returncode == 2 and "stop it" in refused.stderr  # the server holds the store
    server.stop()

    restored_dir = tmp_path / "restored"
    back = cli(restored_dir, "restore", str(backup_dir), "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["tables"] == manifest["tables"]
    with Store(restored_dir / "tsunagu.duckdb") as restored:
        batches = restored.query(
            "SELECT (raw->>'$.properties.batch')::INT AS b, count(*) FROM events GROUP BY b ORDER BY b"
        )
    numbers = [b for b, _ in batches]
    assert numbers == list(range(len(numbers)))  # a moment: the first batches, no gap
    assert all(n == PER_BATCH for _, n in batches)  # none in part
    assert 20 <= len(numbers) < len(acknowledged)  # taken while the stream went on
    assert (restored_dir / "fan-rules.json").read_text() == '{"levels": []}'
    assert (restored_dir / "link-secret").read_bytes() == (data / "link-secret").read_bytes()

    live, again = _tables(data / "tsunagu.duckdb"), _tables(restored_dir / "tsunagu.duckdb")
    assert set(live) == set(again)
    for name in live:
        if name != "events":
            assert again[name] == live[name], name
    assert set(again["events"]) <= set(live["events"])
    assert len(again["events"]) == len(numbers) * PER_BATCH

    # A restore over a data dir keeps the database it replaces.
    over = cli(data, "restore", str(backup_dir))
    assert over.returncode == 0, over.stderr
    assert list(data.glob("tsunagu.duckdb.replaced-*"))
    assert _tables(data / "tsunagu.duckdb") == again


def test_backup_and_restore_refuse_what_they_should(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli(data, "sources", "create", "web").returncode == 0
    full = tmp_path / "full"
    full.mkdir()
    (full / "something").write_text("x")
    busy = cli(data, "backup", str(full))
    assert busy.returncode == 2 and "not an empty directory" in busy.stderr
    inside = cli(data, "backup", str(data / "b"))
    assert inside.returncode == 2 and "outside the data dir" in inside.stderr
    good = tmp_path / "good"
    assert cli(data, "backup", str(good)).returncode == 0
    nothing = cli(tmp_path / "other", "restore", str(tmp_path / "full"))
    assert nothing.returncode == 2 and "backup.json is missing" in nothing.stderr
    with (good / "tsunagu.duckdb").open("ab") as fh:
        fh.write(b"tampered")
    tampered = cli(tmp_path / "other", "restore", str(good))
    assert tampered.returncode == 2 and "does not match" in tampered.stderr
    assert not (tmp_path / "other" / "tsunagu.duckdb").exists()  # nothing was put in place


def test_a_restore_while_another_process_holds_the_store_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli(data, "sources", "create", "web").returncode == 0
    made = tmp_path / "backup"
    assert cli(data, "backup", str(made)).returncode == 0
    with Store(data / "tsunagu.duckdb"):  # this process holds it; no server file names it
        refused = cli(data, "restore", str(made))
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr and "error:" in refused.stderr
