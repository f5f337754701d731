from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest

from tsunagu.events.normalize import normalize
from tsunagu.events.pos import import_pos
from tsunagu.exceptions import InvalidInput
from tsunagu.store import Store, utcnow

HEADER = "receipt_id,line_no,store_id,sold_at,member_card,sku,quantity,unit_price,discount,payment_method,coupon_code\n"
GOOD = (
    "R1,1,S001,2026-03-01 14:05:09,1234567890123,P001,2,1200,0,cash,\n"
    "R1,2,S001,2026-03-01 14:05:09,1234567890123,P002,1,3300,300,cash,\n"
    "R2,1,S001,2026-03-01 15:00:00,,P001,1,1200,100,credit_card,CP10\n"
)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def events(store: Store) -> list[dict]:
    return [
        orjson.loads(r[0])
        for r in store.query("SELECT raw FROM events ORDER BY timestamp, message_id")
    ]


def test_receipts_become_order_completed_store_events(store: Store, tmp_path: Path) -> None:
    result = import_pos(store=store, path=write(tmp_path / "pos.csv", HEADER + GOOD))
    assert (result.read, result.imported, result.rejected, result.duplicates) == (3, 3, 0, 0)
    orders = [e for e in events(store) if e["event"] == "Order Completed"]
    assert len(orders) == 2
    r1 = next(e for e in orders if e["properties"]["order_id"] == "R1")
    assert r1["context"] == {"channel": "store", "traits": {"member_card": "1234567890123"}}
    assert r1["properties"]["store_id"] == "S001"
    assert r1["properties"]["revenue"] == 2 * 1200 + 3300 - 300
    assert r1["properties"]["currency"] == "JPY"
    assert [p["sku"] for p in r1["properties"]["products"]] == ["P001", "P002"]
    assert r1["properties"]["products"][0]["quantity"] == 2
    # JST 14:05:09 is 05:05:09 UTC.
    assert r1["timestamp"] == "2026-03-01T05:05:09.000Z"
    assert store.query("SELECT channel, store_id FROM events WHERE event = 'Order Completed'")[
        0
    ] == ("store", "S001")


def test_pos_events_are_valid_segment_messages(store: Store, tmp_path: Path) -> None:
    import_pos(store=store, path=write(tmp_path / "pos.csv", HEADER + GOOD))
    for raw in events(store):
        row = normalize(raw, received_at=utcnow(), source="check")
        assert row.channel == "store"


def test_coupon_on_a_receipt_is_also_a_coupon_redeemed_event(store: Store, tmp_path: Path) -> None:
    import_pos(store=store, path=write(tmp_path / "pos.csv", HEADER + GOOD))
    redeemed = [e for e in events(store) if e["event"] == "Coupon Redeemed"]
    assert len(redeemed) == 1
    assert redeemed[0]["properties"]["coupon_id"] == "CP10"
    assert redeemed[0]["properties"]["order_id"] == "R2"


def test_importing_twice_adds_nothing(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "pos.csv", HEADER + GOOD)
    import_pos(store=store, path=path)
    before = store.scalar("SELECT count(*) FROM events")
    again = import_pos(store=store, path=path)
    assert (again.imported, again.duplicates) == (0, 3)
    assert store.scalar("SELECT count(*) FROM events") == before


def test_bad_rows_are_rejected_with_reasons_and_the_rest_imported(
    store: Store, tmp_path: Path
) -> None:
    text = (
        HEADER
        + GOOD
        + (
            "R3,1,S002,2026/03/02 10:00,,P003,abc,1200,0,cash,\n"  # row 5: bad quantity
            "R3,2,S002,2026/03/02 10:00,,P001,1,1200,0,cash,\n"  # row 6: same receipt
            "R4,1,S002,3026-03-02 11:00:00,,P003,1,1200,0,cash,\n"  # row 7: absurd date
            "R5,1,S002,2026-03-02 11:00:00,,,1,1200,0,cash,\n"  # row 8: no sku
            "R6,1,S002,2026-03-02 11:00:00,,P9,1,-5,0,cash,\n"  # row 9: negative price
            "R7,1,S002,2026-03-02 11:00:00,,P9,0,5,0,cash,\n"  # row 10: zero quantity
            "R8,1,S002,not a date,,P9,1,5,0,cash,\n"  # row 11
        )
    )
    path = write(tmp_path / "pos.csv", text)
    result = import_pos(store=store, path=path)
    assert (result.read, result.imported, result.rejected) == (10, 3, 7)
    with open(result.rejects_file or "", encoding="utf-8") as fh:
        rejects = {int(r["row"]): r["reason"] for r in csv.DictReader(fh)}
    assert rejects[5].startswith("quantity: not a whole number")
    assert rejects[6].startswith("receipt_id: another row of this receipt was rejected (row 5)")
    assert rejects[7].startswith("sold_at: outside")
    assert rejects[8] == "sku: required"
    assert rejects[9].startswith("unit_price: must not be negative")
    assert rejects[10].startswith("quantity: must not be 0")
    assert rejects[11].startswith("sold_at: not a date and time")
    assert store.scalar("SELECT count(*) FROM events WHERE event = 'Order Completed'") == 2


def test_malformed_csv_lines_are_rejected_with_their_row_number(
    store: Store, tmp_path: Path
) -> None:
    text = (
        HEADER
        + GOOD
        + "R9,1,S001,2026-03-01 16:00:00,,P1,1,100,0,cash,,EXTRA\n"
        + ("R10,1,S001,2026-03-01 16:00:00,,P1,1,100,0,cash,\n")
    )
    result = import_pos(store=store, path=write(tmp_path / "pos.csv", text))
    assert (result.read, result.imported, result.rejected) == (5, 4, 1)
    with open(result.rejects_file or "", encoding="utf-8") as fh:
        (reject,) = list(csv.DictReader(fh))
    assert reject["row"] == "5"
    assert "columns" in reject["reason"]
    assert (
        store.scalar(
            "SELECT count(*) FROM events WHERE json_extract_string(raw, '$.properties.order_id') = 'R10'"
        )
        == 1
    )


def test_shift_jis_export_with_japanese_headers(store: Store, tmp_path: Path) -> None:
    text = (
        "レシート番号,店舗コード,取引日時,会員番号,商品コード,商品名,数量,単価\n"
        "A1,S010,2026/03/05 18:30:00,9990001112223,J1,ウールコート（紺）,1,29800\n"
        "A1,S010,2026/03/05 18:30:00,9990001112223,J2,マフラー,1,4900\n"
    )
    path = write(tmp_path / "sjis.csv", text, encoding="cp932")
    result = import_pos(store=store, path=path)
    assert (result.imported, result.rejected) == (2, 0)
    (order,) = events(store)
    assert order["properties"]["products"][0]["name"] == "ウールコート（紺）"
    assert order["properties"]["revenue"] == 34700
    assert order["timestamp"] == "2026-03-05T09:30:00.000Z"


def test_foreign_purchase_log_columns_and_decimal_prices(store: Store, tmp_path: Path) -> None:
    # Column names of a widely used public online-retail purchase log.
    text = (
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"
        "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom\n"
        "C536379,D,Discount,-1,12/1/2010 9:41,27.5,14527,United Kingdom\n"
    )
    result = import_pos(store=store, path=write(tmp_path / "retail.csv", text), store_id="online")
    assert (result.imported, result.rejected) == (3, 0)
    by_event = {e["event"]: e for e in events(store)}
    assert by_event["Order Completed"]["properties"]["revenue"] == pytest.approx(
        6 * 2.55 + 6 * 3.39
    )
    assert by_event["Order Completed"]["context"]["traits"]["member_card"] == "17850"
    assert by_event["Order Refunded"]["properties"]["order_id"] == "C536379"


def test_marketplace_order_log_columns(store: Store, tmp_path: Path) -> None:
    # Column names of a public marketplace order log: a unique customer id, a purchase
    # timestamp, a payment value.
    text = (
        "order_id,customer_unique_id,order_purchase_timestamp,product_id,payment_value\n"
        "e481f51c,7c396fd4,2017-10-02 10:56:33,87285b34,38.71\n"
        "53cdb2fc,af07308b,2018-07-24 20:41:37,595fac2a,141.46\n"
    )
    result = import_pos(store=store, path=write(tmp_path / "orders.csv", text), store_id="online")
    assert (result.imported, result.rejected) == (2, 0)
    cards = {e["context"]["traits"]["member_card"] for e in events(store)}
    assert cards == {"7c396fd4", "af07308b"}
    revenue = sorted(e["properties"]["revenue"] for e in events(store))
    assert revenue == pytest.approx([38.71, 141.46])


def test_missing_required_column_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        import_pos(store=store, path=write(tmp_path / "p.csv", "receipt_id,sku\nR1,P1\n"))
    assert info.value.field == "sold_at"
    assert "not found" in info.value.message
    with pytest.raises(InvalidInput) as info:
        import_pos(
            store=store, path=write(tmp_path / "q.csv", "receipt_id,sold_at\nR1,2026-03-01\n")
        )
    assert info.value.field == "unit_price"


def test_empty_and_missing_files(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        import_pos(store=store, path=write(tmp_path / "e.csv", ""))
    with pytest.raises(InvalidInput):
        import_pos(store=store, path=tmp_path / "nope.csv")


def test_a_line_exported_twice_is_skipped_as_a_duplicate(store: Store, tmp_path: Path) -> None:
    text = HEADER + GOOD + "R1,2,S001,2026-03-01 14:05:09,1234567890123,P002,1,3300,300,cash,\n"
    result = import_pos(store=store, path=write(tmp_path / "pos.csv", text))
    assert (result.read, result.imported, result.rejected, result.duplicates) == (4, 3, 0, 1)
    revenue = store.scalar(
        "SELECT json_extract(raw, '$.properties.revenue')::INT FROM events "
        "WHERE json_extract_string(raw, '$.properties.order_id') = 'R1' AND event = 'Order Completed'"
    )
    assert revenue == 2 * 1200 + 3300 - 300
    assert result.rejects_file is None


def test_megabyte_cells_and_overlong_lines_are_rejected(store: Store, tmp_path: Path) -> None:
    text = (
        HEADER
        + GOOD
        + (
            "R5,1,S001,2026-03-01 16:00:00,," + "X" * 1_000_000 + ",1,100,0,cash,\n"
            "R6,1,S001,2026-03-01 16:00:00,," + "Y" * 3_000_000 + ",1,100,0,cash,\n"
            "R7,1,S001,2026-03-01 16:00:00,,P7,1,100,0,cash,\n"
        )
    )
    result = import_pos(store=store, path=write(tmp_path / "pos.csv", text))
    assert (result.read, result.imported, result.rejected) == (6, 4, 2)
    with open(result.rejects_file or "", encoding="utf-8") as fh:
        csv.field_size_limit(10_000_000)
        rejects = {int(r["row"]): r["reason"] for r in csv.DictReader(fh)}
    assert rejects[5] == "sku: longer than 1,000 characters"
    assert "line size" in rejects[6]


def test_a_bare_purchase_log_imports_with_stated_assumptions(store: Store, tmp_path: Path) -> None:
    # The shape of the purchase logs of the customer-base literature: who, when, how many, how much.
    text = "customer_id,date,quantity,amount\n00001,19970101,1,11.77\n00002,19970112,1,12.00\n00002,19970112,5,77.00\n00003,19970102,2,20.76\n"
    result = import_pos(store=store, path=write(tmp_path / "cdnow.csv", text))
    assert (result.read, result.imported, result.rejected) == (4, 4, 0)
    assert any("no receipt column" in w for w in result.warnings)
    assert any("store unknown" in w for w in result.warnings)
    orders = [e for e in events(store) if e["event"] == "Order Completed"]
    # Customer 00002's two rows on one day are one purchase.
    assert len(orders) == 3
    by_card = {o["context"]["traits"]["member_card"]: o for o in orders}
    assert by_card["00002"]["properties"]["revenue"] == pytest.approx(89.0)
    assert by_card["00001"]["timestamp"] == "1996-12-31T15:00:00.000Z"
    assert by_card["00003"]["properties"]["store_id"] == "unknown"


def test_gzipped_shift_jis_export_and_spreadsheets(store: Store, tmp_path: Path) -> None:
    import gzip

    text = "レシート番号,店舗コード,取引日時,商品コード,数量,単価\nA1,S010,2026/03/05 18:30:00,J1,1,29800\n"
    path = tmp_path / "pos.csv.gz"
    path.write_bytes(gzip.compress(text.encode("cp932")))
    result = import_pos(store=store, path=path)
    assert (result.imported, result.rejected) == (1, 0)
    xlsx = write(tmp_path / "pos.xlsx", "PK\x03\x04 not really a spreadsheet")
    with pytest.raises(InvalidInput) as info:
        import_pos(store=store, path=xlsx)
    assert "save it as CSV" in info.value.message
