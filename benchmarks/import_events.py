"""Lines/s for `tsunagu import events` of a JSONL file, beside DuckDB's own `read_json` into
the same events table, measured in the same run.

The file is N Segment messages as web and app trackers and a POS bridge send them (track with
properties and line items, page, screen, identify with traits; context with library, page,
user agent, device; about one in eight without a messageId), or `--file` an existing JSONL
(`--lines` of it). tsunagu imports it into a fresh store with every rule of the collector (one
code path), then again (every line a duplicate). The floor is DuckDB alone: the lines read by
`read_ndjson_objects`, the columns taken out with JSON paths, inserted into an events table of
the same definition and committed: no checks, no rejects, no dedupe.

    .venv/bin/python benchmarks/import_events.py [--lines 1000000] [--file events.jsonl]
"""

from __future__ import annotations

import argparse
import itertools
import random
import tempfile
import time
from pathlib import Path

import orjson
from timing import committed_seconds, imports_beside_floor

from tsunagu.events.bulk import import_events
from tsunagu.store import Store

_FLOOR = """
INSERT INTO events BY NAME
SELECT coalesce(j->>'$.messageId', md5(j)) AS message_id, j->>'$.type' AS type,
       coalesce(j->>'$.event', j->>'$.name') AS event, j->>'$.userId' AS user_id,
       j->>'$.anonymousId' AS anonymous_id, coalesce(j->>'$.context.channel', 'web') AS channel,
       j->>'$.properties.store_id' AS store_id,
       coalesce(try_cast(j->>'$.timestamp' AS TIMESTAMPTZ), now())::TIMESTAMP AS timestamp,
       now()::TIMESTAMP AS received_at, 'floor' AS source, j AS raw,
       j->>'$.context.device.id' AS device_id,
       coalesce(j->>'$.traits.email', j->>'$.context.traits.email') AS email,
       coalesce(j->>'$.traits.phone', j->>'$.context.traits.phone') AS phone,
       coalesce(j->>'$.traits.line_user_id', j->>'$.context.traits.line_user_id') AS line_user_id,
       coalesce(j->>'$.traits.member_card', j->>'$.context.traits.member_card') AS member_card,
       j->>'$.previousId' AS previous_id, now()::TIMESTAMP AS stored_at
FROM read_ndjson_objects('{path}') t(j)
"""


def messages(n: int, seed: int = 1) -> bytes:
    """N messages, one JSON a line."""
    rng = random.Random(seed)
    t0 = 1_767_225_600  # 2026-01-01 UTC
    lines = []
    for i in range(n):
        person = rng.randrange(n // 6 + 1)
        app = rng.random() < 0.35
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t0 + i * 3)) + ".123Z"
        context: dict[str, object] = {
            "library": {"name": "analytics-ios" if app else "analytics.js", "version": "4.1.0"},
            "ip": f"203.0.113.{person % 250}",
            "locale": "ja-JP",
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)",
        }
        if app:
            context["device"] = {"id": f"dev-{person}", "model": "iPhone15,2"}
            context["app"] = {"name": "つなぐ", "version": "3.2.1"}
        else:
            context["page"] = {
                "path": f"/p/{i % 500}",
                "url": f"https://shop.example.jp/p/{i % 500}",
            }
        message: dict[str, object] = {
            "anonymousId": f"a-{person}",
            "timestamp": when,
            "context": context,
        }
        if person % 3 == 0:
            message["userId"] = f"M{person:08d}"
        if rng.random() < 0.875:
            message["messageId"] = f"m-{seed}-{i}"
        kind = rng.random()
        sku = f"P{rng.randrange(3000):05d}"
        if kind < 0.55:
            message |= {"type": "track", "event": "Product Viewed",
                        "properties": {"sku": sku, "category": "トップス", "price": 2990}}  # fmt: skip
        elif kind < 0.70:
            message |= {"type": "track", "event": "Product Added",
                        "properties": {"sku": sku, "quantity": 1, "price": 2990}}  # fmt: skip
        elif kind < 0.78:
            items = [{"sku": f"P{rng.randrange(3000):05d}", "quantity": 1, "price": 1990}
                     for _ in range(rng.randint(1, 4))]  # fmt: skip
            message |= {"type": "track", "event": "Order Completed",
                        "properties": {"order_id": f"O{i}", "revenue": 1990 * len(items),
                                       "currency": "JPY", "products": items}}  # fmt: skip
            if rng.random() < 0.3:
                message["properties"]["store_id"] = f"S{rng.randrange(50):03d}"  # type: ignore[index]
        elif kind < 0.93:
            message |= {"type": "screen" if app else "page", "name": "商品一覧",
                        "properties": {"path": f"/c/{i % 40}"}}  # fmt: skip
        else:
            message |= {"type": "identify", "userId": f"M{person:08d}",
                        "traits": {"email": f"u{person}@example.jp", "name": "山田 花子",
                                   "phone": f"090-{person % 10000:04d}-0000"}}  # fmt: skip
        lines.append(orjson.dumps(message))
    return b"\n".join(lines) + b"\n"


def floor(path: Path, work: Path) -> float:
    """Seconds for DuckDB alone to read the file into an events table of tsunagu's definition
    and commit (`_FLOOR`)."""
    with Store(work / "floor" / "tsunagu.duckdb"):
        pass  # the schema, as tsunagu makes it
    return committed_seconds(work / "floor" / "tsunagu.duckdb", _FLOOR.format(path=path))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--file", type=Path, help="import (--lines of) this JSONL file instead")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tsunagu-bench-events-"))
    path = work / "events.jsonl"
    t0 = time.perf_counter()
    if args.file:
        with args.file.open("rb") as src, path.open("wb") as dst:
            dst.writelines(itertools.islice(src, args.lines))
    else:
        path.write_bytes(messages(args.lines))
    lines = sum(1 for _ in path.open("rb"))
    print(
        f"{lines:,} lines ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s"
    )

    imports_beside_floor(
        lambda store: import_events(store=store, path=path),
        data=work / "data",
        unit="lines",
        floor_seconds=floor(path, work),
        floor="DuckDB read_ndjson_objects, columns by JSON path, insert, commit",
    )


if __name__ == "__main__":
    main()
