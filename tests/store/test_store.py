from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tsunagu.events.normalize import normalize
from tsunagu.exceptions import StoreBusy
from tsunagu.store import Store
from tsunagu.store.schema import SCHEMA_VERSION

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def rows(*ids: str):  # type: ignore[no-untyped-def]
    return [
        normalize(
            {"type": "track", "event": "e", "userId": "u", "messageId": i},
            received_at=NOW,
            source="t",
        )
        for i in ids
    ]


def test_new_store_is_migrated_to_the_latest_version(store: Store) -> None:
    assert store.schema_version == SCHEMA_VERSION
    tables = {r[0] for r in store.query("SELECT table_name FROM information_schema.tables")}
    assert {"events", "members", "products", "stores", "inventory", "sources", "imports"} <= tables


def test_reopening_keeps_data_and_runs_no_migration_twice(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    with Store(path) as s:
        s.insert_events(rows("a"))
    with Store(path) as s:
        assert s.scalar("SELECT count(*) FROM schema_version") == SCHEMA_VERSION
        assert s.scalar("SELECT count(*) FROM events") == 1


def test_insert_skips_message_ids_already_stored_or_repeated(store: Store) -> None:
    assert store.insert_events(rows("a", "b", "b")) == 2
    assert store.insert_events(rows("b", "c")) == 1
    assert sorted(r[0] for r in store.query("SELECT message_id FROM events")) == ["a", "b", "c"]


def test_of_two_rows_with_one_message_id_the_first_is_stored_and_the_order_kept(
    store: Store,
) -> None:
    import numpy as np

    batch = rows("c", "b", "a", "b", "d")
    batch[3] = normalize(
        {"type": "track", "event": "e", "userId": "later", "messageId": "b"},
        received_at=NOW,
        source="t",
    )
    assert store.insert_events(batch) == 4
    assert store.query("SELECT message_id, user_id FROM events ORDER BY rowid") == [
        ("c", "u"),
        ("b", "u"),
        ("a", "u"),
        ("d", "u"),
    ]
    # Two ids given one hash (a collision inside a batch) are both new: compared exactly.
    same = np.array([7, 7, 7], dtype=np.uint64)
    assert store.insert_events(rows("e", "f", "e"), hashes=same) == 2
    assert store.scalar("SELECT count(*) FROM events WHERE message_id IN ('e', 'f')") == 2


def test_events_of_a_rolled_back_insert_can_be_stored_later(store: Store) -> None:
    # All new: indexed before the insert, which is then rolled back. The index now holds
    # hashes of ids the table lacks; they must be checked exactly, not skipped.
    with pytest.raises(RuntimeError), store.transaction() as cur:
        assert store.add_events(cur, rows("x", "y")) == 2
        raise RuntimeError("boom")
    assert store.insert_events(rows("x", "y", "z")) == 3
    assert store.scalar("SELECT count(*) FROM events") == 3


def test_second_writer_process_gets_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "db.duckdb"
    with Store(path):
        code = (
            "import sys; from tsunagu.store import Store; from tsunagu.exceptions import StoreBusy\n"
            f"try:\n    Store(__import__('pathlib').Path({str(path)!r}))\n"
            "except StoreBusy as e:\n    print(e.message); sys.exit(3)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 3, done.stderr
    assert "another process" in done.stdout or "server" in done.stdout
    assert issubclass(StoreBusy, Exception)


def test_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as cur:
        cur.execute("INSERT INTO sources VALUES ('s', 'n', 'h', 'p', now()::timestamp, NULL, NULL)")
        raise RuntimeError("boom")
    assert store.scalar("SELECT count(*) FROM sources") == 0


def test_message_id_index_catches_repeats_across_reopen_and_hash_collisions(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "db.duckdb"
    with Store(path) as s:
        assert s.insert_events(rows("a", "b")) == 2
    with Store(path) as s:  # the index is rebuilt from the table
        assert s.insert_events(rows("b", "c", "c")) == 1
        # A hash that is present for a different id (as a collision would be) must not drop it.
        with s.transaction() as cur:
            s._message_ids(cur).add(np.array([hash_of(cur, "d")], dtype=np.uint64))
        assert s.insert_events(rows("d")) == 1
        assert s.insert_events(rows("d")) == 0
        assert sorted(r[0] for r in s.query("SELECT message_id FROM events")) == [
            "a",
            "b",
            "c",
            "d",
        ]


def hash_of(cur, message_id: str) -> int:  # type: ignore[no-untyped-def]
    return int(cur.execute("SELECT hash(?::VARCHAR)", [message_id]).fetchone()[0])


def test_identifier_columns_are_backfilled_from_raw_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa

    from tsunagu.store import db
    from tsunagu.store.schema import MIGRATIONS

    path = tmp_path / "db.duckdb"
    # A database written before the identifier columns existed: schema 2.
    monkeypatch.setattr(db, "MIGRATIONS", MIGRATIONS[:2])
    with Store(path) as s:
        row = normalize(
            {
                "type": "track",
                "event": "e",
                "anonymousId": "a",
                "context": {"device": {"id": "D9"}, "traits": {"member_card": "123"}},
            },
            received_at=NOW,
            source="t",
        )
        old = (
            "message_id",
            "type",
            "event",
            "user_id",
            "anonymous_id",
            "channel",
            "store_id",
            "timestamp",
            "received_at",
            "source",
            "raw",
        )
        with s.transaction() as cur:
            values = {c: [getattr(row, c)] for c in old} | {"raw": [row.raw.decode()]}
            cur.register("_old", pa.table(values))
            cur.execute(f"INSERT INTO events ({', '.join(old)}) SELECT * FROM _old")
    monkeypatch.undo()
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.query("SELECT device_id, member_card, stored_at IS NOT NULL FROM events") == [
            ("D9", "123", True)
        ]
