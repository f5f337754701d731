"""POS import: a till export (one row per line item) becomes one "Order Completed" per receipt.

The whole import runs in DuckDB (read, parse, check, group, build the Segment message) so a
file of millions of line items imports in seconds. Each receipt's event is an ordinary track
message: `context.channel = "store"`, `properties.store_id`, `properties.order_id`, a `products`
array, and the member card in `context.traits.member_card` for identity resolution.

A receipt is imported whole or not at all: when one of its rows is rejected, so are the others,
so that a corrected file imports the complete receipt (a partial one would block it as a
duplicate).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from tsunagu.events.normalize import EARLIEST, FUTURE_SLACK
from tsunagu.exceptions import InvalidInput
from tsunagu.store import Store, columns, count, utcnow
from tsunagu.store.files import (
    Column,
    ImportResult,
    TableSpec,
    fixed_utc_offset,
    record_import,
    rejects_path,
    stage,
    write_rejects,
)
from tsunagu.store.sql import literal as sql_literal

POS_SPEC = TableSpec(
    kind="pos",
    columns=(
        Column(
            "receipt_id",
            required=True,
            may_be_absent=True,
            aliases=(
                "receipt",
                "receipt_no",
                "receipt_number",
                "transaction_id",
                "transaction_no",
                "invoice",
                "invoice_no",
                "invoiceno",
                "order_id",
                "order_no",
                "レシート番号",
                "レシートNo",
                "伝票番号",
                "取引番号",
                "取引ID",
            ),
        ),
        Column(
            "line_no",
            "int",
            aliases=("line", "line_number", "item_no", "行番号", "明細番号", "明細No"),
        ),
        Column(
            "store_id",
            required=True,
            may_be_absent=True,
            aliases=columns.STORE_ID,
        ),
        Column(
            "sold_at",
            "timestamp",
            required=True,
            aliases=(
                "timestamp",
                "datetime",
                "date_time",
                "date",
                "invoice_date",
                "invoicedate",
                "transaction_date",
                "transaction_time",
                "purchased_at",
                "purchase_date",
                "order_date",
                "order_datetime",
                "order_purchase_timestamp",
                "transaction_datetime",
                "日時",
                "取引日時",
                "売上日時",
                "購入日時",
                "売上日",
                "取引日",
            ),
        ),
        Column(
            "member_card",
            aliases=(
                *columns.MEMBER_CARD,
                "customer_id",
                "customerid",
                "customer",
                "customer_unique_id",
                "customer_code",
                "customer_no",
                "customer_number",
                "client_id",
                "buyer_id",
                "household_key",
                "会員ID",
                "顧客ID",
                "顧客番号",
                "顧客コード",
            ),
        ),
        Column(
            "sku",
            required=True,
            may_be_absent=True,
            aliases=columns.SKU,
        ),
        Column("name", aliases=("description", "product_name", "item_name", "商品名")),
        Column(
            "quantity",
            "int",
            required=True,
            may_be_absent=True,
            aliases=("qty", "quantity_sold", "数量", "個数", "点数"),
            check="{v} <> 0",
            check_reason="must not be 0",
        ),
        Column(
            "unit_price",
            "number",
            aliases=("price", "unitprice", "selling_price", "単価", "販売単価", "売価"),
            check="{v} >= 0",
            check_reason="must not be negative",
        ),
        Column(
            "amount",
            "number",
            aliases=(
                "line_total",
                "total",
                "sales",
                "sales_amount",
                "line_amount",
                "total_price",
                "amount_paid",
                "payment_value",
                "revenue",
                "金額",
                "売上金額",
                "小計",
            ),
        ),
        Column(
            "discount",
            "number",
            aliases=("discount_amount", "値引", "値引額", "割引", "割引額"),
            check="{v} >= 0",
            check_reason="must not be negative",
        ),
        Column(
            "payment_method",
            aliases=("payment", "payment_type", "支払方法", "決済方法", "支払区分"),
        ),
        Column("coupon_code", aliases=("coupon", "coupon_id", "クーポン", "クーポンコード")),
    ),
)

_MACROS = """
CREATE OR REPLACE TEMP MACRO money(x) AS
    CASE WHEN x = trunc(x) THEN CAST(CAST(x AS BIGINT) AS JSON) ELSE CAST(x AS JSON) END;
CREATE OR REPLACE TEMP MACRO iso_utc(t) AS strftime(t, '%Y-%m-%dT%H:%M:%S.%g') || 'Z';
"""

# Line items that passed the row checks, one receipt per (store, receipt number, business day):
# many tills restart their receipt numbers every day.
_RECEIPTS = """
CREATE OR REPLACE TEMP TABLE _receipts AS
SELECT 'pos:' || store_id || ':' || business_day || ':' || receipt_id AS order_key,
       store_id, receipt_id, business_day,
       count(*) AS lines,
       min(_row) AS first_row,
       min(sold_at) AS sold_at,
       any_value(member_card) AS member_card,
       any_value(payment_method) AS payment_method,
       any_value(coupon_code) AS coupon_code,
       sum(quantity) AS units,
       sum(quantity * price) - sum(line_discount) AS revenue,
       sum(line_discount) AS discount,
       to_json(list(json_object(
           'product_id', sku, 'sku', sku, 'name', name, 'quantity', quantity,
           'price', money(price), 'discount', money(line_discount)
       ) ORDER BY coalesce(line_no, _row))) AS products
FROM (
    SELECT *,
           coalesce(unit_price, amount / quantity) AS price,
           coalesce(discount, 0) AS line_discount,
           strftime({local_sold_at}, '%Y%m%d') AS business_day
    FROM _in WHERE _reason IS NULL
)
GROUP BY store_id, receipt_id, business_day;
"""

# Rows of a receipt that cannot be imported whole are rejected with it.
_RECEIPT_REASONS = """
UPDATE _in SET _reason = r.why
FROM (
    SELECT l.store_id, l.receipt_id, min(l._row) AS bad_row,
           'receipt_id: another row of this receipt was rejected (row ' || min(l._row) || ')' AS why
    FROM _in AS l WHERE l._reason IS NOT NULL AND l.receipt_id IS NOT NULL AND l.store_id IS NOT NULL
    GROUP BY l.store_id, l.receipt_id
) AS r
WHERE _in._reason IS NULL AND _in.store_id = r.store_id AND _in.receipt_id = r.receipt_id;

UPDATE _in SET _reason = 'member_card: rows of this receipt name different member cards'
FROM (SELECT store_id, receipt_id FROM _in WHERE _reason IS NULL
      GROUP BY store_id, receipt_id HAVING count(DISTINCT member_card) > 1) AS r
WHERE _in._reason IS NULL AND _in.store_id = r.store_id AND _in.receipt_id = r.receipt_id;
"""

# The receipts' messages; a view, so that the INSERT builds each message's JSON as it stores it.
_EVENTS = """
CREATE OR REPLACE TEMP VIEW _pos_events AS
WITH orders AS (
    SELECT order_key AS message_id,
           CASE WHEN units < 0 THEN 'Order Refunded' ELSE 'Order Completed' END AS event,
           CASE WHEN member_card IS NOT NULL THEN 'card:' || member_card
                ELSE 'receipt:' || store_id || ':' || business_day || ':' || receipt_id END AS anonymous_id,
           *
    FROM _receipts
), redemptions AS (
    -- The same id as a redemption reported by the till over the API: stored once (and once
    -- only when a till reuses a receipt number on another day with the same code).
    SELECT 'redeem:' || store_id || ':' || receipt_id || ':' || coupon_code AS message_id, *
    FROM orders WHERE coupon_code IS NOT NULL AND event = 'Order Completed'
    QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY sold_at, first_row) = 1
), messages AS (
    SELECT message_id, event, anonymous_id, store_id, sold_at, first_row, member_card,
           json_object(
               'type', 'track', 'event', event, 'messageId', message_id,
               'anonymousId', anonymous_id, 'timestamp', iso_utc(sold_at),
               'receivedAt', iso_utc({received_at}),
               'context', json_object('channel', 'store', 'traits',
                   CASE WHEN member_card IS NULL THEN json_object()
                        ELSE json_object('member_card', member_card) END),
               'properties', json_object(
                   'order_id', receipt_id, 'store_id', store_id, 'revenue', money(revenue),
                   'total', money(revenue), 'discount', money(discount), 'currency', 'JPY',
                   'payment_method', payment_method, 'coupon', coupon_code,
                   'products', products)
           ) AS raw
    FROM orders
    UNION ALL
    SELECT message_id, 'Coupon Redeemed', anonymous_id, store_id, sold_at, first_row, member_card,
           json_object(
               'type', 'track', 'event', 'Coupon Redeemed', 'messageId', message_id,
               'anonymousId', anonymous_id, 'timestamp', iso_utc(sold_at),
               'receivedAt', iso_utc({received_at}),
               'context', json_object('channel', 'store', 'traits',
                   CASE WHEN member_card IS NULL THEN json_object()
                        ELSE json_object('member_card', member_card) END),
               'properties', json_object(
                   'coupon_id', coupon_code, 'code', coupon_code, 'order_id', receipt_id,
                   'store_id', store_id,
                   'discount', money(discount), 'currency', 'JPY')
           )
    FROM redemptions
)
SELECT message_id, 'track' AS type, event, CAST(NULL AS VARCHAR) AS user_id, anonymous_id,
       'store' AS channel, store_id, sold_at AS timestamp,
       {received_at} AS received_at, {source} AS source,
       CAST(NULL AS VARCHAR) AS device_id, CAST(NULL AS VARCHAR) AS email,
       CAST(NULL AS VARCHAR) AS phone, CAST(NULL AS VARCHAR) AS line_user_id, member_card,
       CAST(NULL AS VARCHAR) AS previous_id, raw
FROM messages ORDER BY timestamp, first_row;
"""


UNKNOWN_STORE = "unknown"
"""The store of receipts from an export with no store column and no --store-id."""


def _fill_absent_columns(
    cur: duckdb.DuckDBPyConnection, mapping: dict[str, str], store_id: str | None
) -> list[str]:
    """Purchase logs often lack POS columns; say what was assumed for each one missing."""
    if "unit_price" not in mapping and "amount" not in mapping:
        raise InvalidInput(
            "header: no unit_price column (nor an amount column with the line total)",
            field="unit_price",
        )
    notes = []
    if "store_id" not in mapping:
        notes.append(
            f"no store column: every receipt is assigned to store {store_id or UNKNOWN_STORE}"
            + ("" if store_id else " (name one with --store-id)")
        )
    if "quantity" not in mapping:
        notes.append("no quantity column: every row counts as 1 item")
    if "sku" not in mapping:
        notes.append("no product column: orders carry no SKUs")
    if "receipt_id" not in mapping:
        # One receipt per customer (or anonymous row), store and moment of sale.
        cur.execute(
            "UPDATE _in SET receipt_id = 'auto-' || CASE WHEN member_card IS NULL "
            "THEN 'row' || _row ELSE member_card END || '-' || strftime(sold_at, '%Y%m%d%H%M%S') "
            "WHERE sold_at IS NOT NULL"
        )
        notes.append("no receipt column: rows of one member card at the same time form one receipt")
    return notes


def import_pos(
    *,
    store: Store,
    path: Path,
    encoding: str | None = None,
    timezone: str = "Asia/Tokyo",
    store_id: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImportResult:
    """Import a POS export (see docs/data-formats.md); rejected rows go to `FILE.rejects.csv`.

    `store_id` fills in the store for exports that have no store column (one file per store).
    Importing the same file twice adds nothing: a receipt's message id is derived from its store,
    business day and receipt number. `progress` hears which step the import is at.
    """
    step = progress or (lambda _: None)
    step(f"reading {path.name}")
    started = utcnow()
    result = ImportResult(kind="pos", file=str(path))
    received_at = utcnow()
    received_sql = f"TIMESTAMP '{received_at.isoformat(sep=' ')}'"
    earliest = EARLIEST.replace(tzinfo=None).isoformat(sep=" ")
    latest = (received_at + FUTURE_SLACK).isoformat(sep=" ")
    with store.transaction() as cur:
        cur.execute(_MACROS)
        staged = stage(
            cur,
            path,
            POS_SPEC,
            encoding=encoding,
            timezone=timezone,
            workdir=store.path.parent / "tmp",
            defaults={"store_id": store_id or UNKNOWN_STORE, "quantity": "1"},
            extra_reasons=lambda mapping: [
                (
                    "unit_price IS NULL AND amount IS NULL",
                    "unit_price: required (or an amount column with the line total)",
                ),
                (
                    f"sold_at < TIMESTAMP '{earliest}' OR sold_at > TIMESTAMP '{latest}'",
                    "sold_at: outside 1990-01-01 .. now + 1 day",
                ),
            ],
        )
        result.warnings.extend(_fill_absent_columns(cur, staged.mapping, store_id))
        cur.execute(_RECEIPT_REASONS)
        # A line number repeated within a receipt is the same line exported twice: skip it.
        cur.execute(
            "UPDATE _in SET _reason = '~duplicate' WHERE _row IN (SELECT _row FROM ("
            "  SELECT _row, row_number() OVER (PARTITION BY store_id, receipt_id, line_no ORDER BY _row) AS n"
            "  FROM _in WHERE _reason IS NULL AND line_no IS NOT NULL) WHERE n > 1)"
        )
        repeated_lines = count(cur, "SELECT count(*) FROM _in WHERE _reason = '~duplicate'")
        step("grouping line items into receipts")
        offset = fixed_utc_offset(timezone)
        local_sold_at = (
            f"sold_at + INTERVAL {int(offset.total_seconds())} SECOND"
            if offset is not None
            else f"(sold_at AT TIME ZONE 'UTC') AT TIME ZONE {sql_literal(timezone)}"
        )
        cur.execute(_RECEIPTS.format(local_sold_at=local_sold_at))
        cur.execute(
            _EVENTS.format(received_at=received_sql, source=sql_literal(f"import:{path.name}"))
        )
        # Receipts stored by an earlier import: their rows are duplicates, not imports.
        stored = store.stored_among(cur, "_pos_events")
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _seen AS SELECT unnest(?::VARCHAR[]) AS message_id",
            [stored],
        )
        result.duplicates = repeated_lines + count(
            cur,
            "SELECT sum(lines) FROM _receipts WHERE order_key IN (SELECT message_id FROM _seen)",
        )
        step("storing events")
        # All stored before (a file imported again)? Then no message's JSON needs building.
        if len(stored) < count(cur, "SELECT count(*) FROM _pos_events"):
            store.insert_new_events(cur, "_pos_events", stored, as_sent=False)
        result.read = staged.rows + len(staged.malformed)
        result.rejected = write_rejects(
            cur,
            rejects_path(path),
            malformed=staged.malformed,
            where="_reason IS NOT NULL AND _reason <> '~duplicate'",
            columns={c: staged.raw_refs[c] for c in staged.mapping},
        )
        result.imported = result.read - result.rejected - result.duplicates
        result.rejects_file = str(rejects_path(path)) if result.rejected else None
        from tsunagu.activation.coupons import link_receipts

        linked, conflicts = link_receipts(cur, "_receipts")
        if linked:
            result.warnings.append(f"redeemed {linked:,} of tsunagu's coupons by their receipts")
        if conflicts:
            result.warnings.append(
                f"{conflicts:,} receipts carry a coupon redeemed before on another receipt "
                "(left as it was)"
            )
        cur.execute("DROP VIEW _pos_events")
        for table in ("_in", "_receipts", "_seen"):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        record_import(cur, result, started)
    if staged.temp_file is not None:
        staged.temp_file.unlink(missing_ok=True)
    return result
