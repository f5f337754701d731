from __future__ import annotations

import csv
from pathlib import Path

import orjson

from tsunagu.events.bulk import flat_to_message, import_events
from tsunagu.store import Store


def line(**kw: object) -> bytes:
    return orjson.dumps(kw) + b"\n"


def test_jsonl_import_rejects_bad_lines_and_keeps_the_rest(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        line(
            type="track",
            event="Product Viewed",
            userId="M1",
            messageId="m1",
            timestamp="2026-03-01T00:00:00Z",
        )
        + b"{broken json\n"
        + b"\n"
        + line(type="track", userId="M1", messageId="m2")  # no event
        + b'{"type":"track","event":"x","userId":"\xff\xfe"}\n'  # not UTF-8
        + line(type="page", anonymousId="a1", name="Top", messageId="m3", properties={"url": "/"})
        + line(type="track", event="Product Viewed", userId="M1", messageId="m1")  # repeat of m1
        + line(type="track", event="Big", userId="M1", properties={"s": "x" * 1_000_000})
    )
    result = import_events(store=store, path=path)
    assert (result.read, result.imported, result.rejected, result.duplicates) == (7, 2, 4, 1)
    with open(result.rejects_file or "", encoding="utf-8") as fh:
        rejects = {int(r["row"]): r["reason"] for r in csv.DictReader(fh)}
    assert set(rejects) == {2, 4, 5, 8}
    assert rejects[2].startswith("message: not valid JSON")
    assert rejects[4] == "event: required"
    assert "32 KB" in rejects[8]
    assert store.scalar("SELECT count(*) FROM events") == 2


def test_reimport_is_idempotent_and_clears_stale_rejects(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(line(type="track", event="e", userId="u") + b"oops\n")
    first = import_events(store=store, path=path)
    assert first.rejects_file
    path.write_bytes(line(type="track", event="e", userId="u"))
    second = import_events(store=store, path=path)
    assert (second.imported, second.duplicates, second.rejected) == (0, 1, 0)
    assert not Path(first.rejects_file).exists()
    assert store.scalar("SELECT count(*) FROM events") == 1


def test_flat_rows_map_onto_segment_messages() -> None:
    msg = flat_to_message(
        {
            "type": "track",
            "event": "Store Visited",
            "user_id": "M1",
            "timestamp": "2026-03-01T00:00:00Z",
            "channel": "store",
            "store_id": "S001",
            "context.beacon": "B-12",
            "dwell_seconds": "300",
            "empty": "",
        }
    )
    assert msg == {
        "type": "track",
        "event": "Store Visited",
        "userId": "M1",
        "timestamp": "2026-03-01T00:00:00Z",
        "context": {"channel": "store", "beacon": "B-12"},
        "properties": {"store_id": "S001", "dwell_seconds": "300"},
    }
    identify = flat_to_message({"type": "identify", "userId": "M1", "email": "a@example.jp"})
    assert identify["traits"] == {"email": "a@example.jp"}


def test_csv_and_parquet_event_files(store: Store, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv_path = tmp_path / "visits.csv"
    csv_path.write_text(
        "event,userId,timestamp,channel,store_id\n"
        "Store Visited,M1,2026-03-01T01:00:00Z,store,S001\n"
        "Store Visited,,2026-03-01T02:00:00Z,store,S001\n",
        encoding="utf-8",
    )
    result = import_events(store=store, path=csv_path)
    assert (result.imported, result.rejected) == (1, 1)
    pq_path = tmp_path / "views.parquet"
    pq.write_table(
        pa.table(
            {"event": ["Product Viewed"] * 2, "anonymousId": ["a1", "a2"], "sku": ["P1", "P2"]}
        ),
        pq_path,
    )
    assert import_events(store=store, path=pq_path).imported == 2
    assert store.query(
        "SELECT json_extract_string(raw, '$.properties.sku') FROM events WHERE anonymous_id = 'a2'"
    ) == [("P2",)]


def test_worker_processes_give_the_same_result_as_inline(tmp_path: Path) -> None:
    lines = []
    for i in range(3000):
        if i % 500 == 7:
            lines.append(b"{not json\n")
        elif i % 500 == 9:
            lines.append(line(type="track", userId=f"u{i}"))  # no event
        else:
            lines.append(
                line(
                    type="track",
                    event="Product Viewed",
                    userId=f"u{i % 40}",
                    messageId=f"m{i % 2900}",
                )
            )
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(lines))
    answers = []
    for workers in (0, 2):
        with Store(tmp_path / f"w{workers}" / "db.duckdb") as store:
            result = import_events(store=store, path=path, workers=workers)
            ids = [r[0] for r in store.query("SELECT message_id FROM events ORDER BY message_id")]
        rejects = Path(result.rejects_file or "").read_text(encoding="utf-8")
        answers.append(
            (result.read, result.imported, result.rejected, result.duplicates, ids, rejects)
        )
    assert answers[0] == answers[1]
    # m7 and m9 first appear at rows 2907 and 2909 (rows 7 and 9 were rejected).
    assert answers[0][:4] == (3000, 2890, 12, 98)


def test_gzipped_jsonl(store: Store, tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(line(type="track", event="e", userId="u") + b"oops\n"))
    result = import_events(store=store, path=path)
    assert (result.read, result.imported, result.rejected) == (2, 1, 1)
