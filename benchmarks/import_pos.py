"""Rows/s for `tsunagu import pos` on a till export of N line items.

Writes a POS CSV (one row per line item, ~3 lines per receipt, JST times, member cards on
about half the receipts, a coupon on some) with DuckDB, imports it into a fresh store, imports
it again (every receipt a duplicate), and prints rows/s for both, beside the floor measured in
the same run: DuckDB alone reading the same file, grouping the line items into receipts with
their products as JSON, writing and committing them (`_FLOOR`).

    .venv/bin/python benchmarks/import_pos.py [--rows 2000000] [--file existing.csv]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb
from timing import committed_seconds, imports_beside_floor

from tsunagu.events.pos import import_pos

_WRITE = """
COPY (
    SELECT 'R' || lpad(CAST(i // 3 AS VARCHAR), 9, '0') AS receipt_id,
           i % 3 + 1 AS line_no,
           'S' || lpad(CAST((i // 3) % 50 + 1 AS VARCHAR), 3, '0') AS store_id,
           strftime(TIMESTAMP '2026-01-01 10:00:00' + to_seconds((i // 3) * 7), '%Y-%m-%d %H:%M:%S') AS sold_at,
           CASE WHEN (i // 3) % 2 = 0 THEN CAST(2000000000000 + (i // 3) % 400000 AS VARCHAR) END AS member_card,
           'P' || lpad(CAST((i * 7919) % 3000 AS VARCHAR), 5, '0') AS sku,
           1 + i % 2 AS quantity,
           (1 + (i * 31) % 40) * 500 AS unit_price,
           CASE WHEN i % 10 = 0 THEN 100 ELSE 0 END AS discount,
           CASE (i // 3) % 4 WHEN 0 THEN 'cash' WHEN 1 THEN 'credit_card' WHEN 2 THEN 'qr' ELSE 'e_money' END AS payment_method,
           CASE WHEN (i // 3) % 25 = 0 THEN 'CP' || ((i // 3) % 7) END AS coupon_code
    FROM range({rows}) t(i)
) TO '{path}' (HEADER, DELIMITER ',')
"""


# The floor: the same file read by DuckDB, line items grouped into receipts with their products
# as JSON, written as events and committed. No checks, no rejects, no dedupe, no identity.
_FLOOR = """
CREATE TABLE events AS
SELECT store_id || ':' || receipt_id AS message_id, 'track' AS type,
       'Order Completed' AS event, 'card:' || any_value(member_card) AS anonymous_id,
       'store' AS channel, store_id, min(sold_at) AS timestamp, json_object(
           'type', 'track', 'event', 'Order Completed', 'timestamp', min(sold_at),
           'properties', json_object(
               'order_id', receipt_id, 'store_id', store_id,
               'revenue', sum(quantity * unit_price - discount),
               'payment_method', any_value(payment_method), 'coupon', any_value(coupon_code),
               'products', to_json(list({{'sku': sku, 'quantity': quantity,
                                          'price': unit_price}} ORDER BY line_no)))
       ) AS raw
FROM read_csv('{path}', header = true)
GROUP BY store_id, receipt_id
"""


def floor(path: Path, work: Path) -> float:
    """Seconds for DuckDB alone to turn the file into committed receipts (`_FLOOR`)."""
    return committed_seconds(work / "floor.duckdb", _FLOOR.format(path=path))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--file", type=Path, help="import this POS file instead of a generated one")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tsunagu-bench-pos-"))
    path = args.file
    if path is None:
        path = work / "pos.csv"
        t0 = time.perf_counter()
        duckdb.sql(_WRITE.format(rows=args.rows, path=path))
        print(
            f"wrote {args.rows:,} line items ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s"
        )

    imports_beside_floor(
        lambda store: import_pos(store=store, path=path),
        data=work / "data",
        unit="rows",
        floor_seconds=floor(path, work),
        floor="DuckDB reads the file, groups receipts with products as JSON, commits",
    )


if __name__ == "__main__":
    main()
